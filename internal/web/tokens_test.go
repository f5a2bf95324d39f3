package web

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	t.Parallel()
	tok, line, err := NewToken("carol@firm.example")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "cgat_") || len(tok) != len("cgat_")+43 {
		t.Errorf("token %q: want cgat_ and 43 base64url characters", tok)
	}
	sum := sha256.Sum256([]byte(tok))
	if want := "carol@firm.example sha256:" + hex.EncodeToString(sum[:]); line != want {
		t.Errorf("line %q, want %q", line, want)
	}
	if strings.Contains(line, tok) {
		t.Error("the line holds the token")
	}
	if other, _, _ := NewToken("carol@firm.example"); other == tok {
		t.Error("two tokens are equal")
	}
	if _, _, err := NewToken("carol smith"); err == nil {
		t.Error("a name with a space was accepted")
	}
}

func TestLoadTokens(t *testing.T) {
	t.Parallel()
	h := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		content string
		want    []string // names, or
		err     string   // a part of the error
	}{
		{"comments and blanks", "# auditors\n\nalice sha256:" + h + "  # FY2026\n  bob.b-c_d@x sha256:" + strings.ToUpper(h) + "\n", []string{"alice", "bob.b-c_d@x"}, ""},
		{"empty", "", nil, ""},
		{"token instead of hash", "alice cgat_abc\n", nil, "line 1: name alice: hash must start with sha256:"},
		{"short hash", "# x\nalice sha256:abcd\n", nil, "line 2: name alice: hash is not 64 hex digits"},
		{"not hex", "alice sha256:" + strings.Repeat("zz", 32), nil, "line 1: name alice: hash is not 64 hex digits"},
		{"bad name", "al/ice sha256:" + h, nil, `line 1: name "al/ice"`},
		{"one field", "alice\n", nil, `line 1: want "NAME sha256:HEX"`},
		{"three fields", "alice sha256:" + h + " extra\n", nil, "line 1: want"},
		{"duplicate", "alice sha256:" + h + "\n\nalice sha256:" + strings.Repeat("cd", 32) + "\n", nil, `line 3: name "alice" already used on line 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "tokens")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			tokens, err := LoadTokens(path, slog.New(slog.DiscardHandler))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range tokens.entries {
				names = append(names, e.name)
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("names %v, want %v", names, tc.want)
			}
		})
	}
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "missing"), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a missing file was accepted")
	}
}

// TestAPITokens: no token, a wrong one, the right one, a revoked one, and
// a token file that breaks while the server runs.
func TestAPITokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	alice, bob := f.tokens["alice@audit-firm.example"], f.tokens["bob"]
	check := func(name, token string, want int) response {
		t.Helper()
		r := f.do(t, request{path: "/api/v1/checkpoint", token: token})
		if r.code != want {
			t.Errorf("%s: status %d (%s), want %d", name, r.code, r.body, want)
		}
		return r
	}
	r := check("no token", "", http.StatusUnauthorized)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	check("wrong token", alice+"x", http.StatusUnauthorized)
	if r := f.do(t, request{path: "/api/v1/checkpoint", header: http.Header{"Authorization": {"Basic " + alice}}}); r.code != http.StatusUnauthorized {
		t.Errorf("basic auth: status %d", r.code)
	}
	check("alice", alice, http.StatusOK)
	check("bob", bob, http.StatusOK)

	// Revoke bob by deleting his line: no restart.
	lines := strings.Split(readFile(t, f.tokenFile), "\n")
	var kept []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "bob ") {
			kept = append(kept, l)
		}
	}
	f.writeTokens(t, strings.Join(kept, "\n"))
	check("revoked bob", bob, http.StatusUnauthorized)
	check("alice after bob's revocation", alice, http.StatusOK)

	// A broken file fails closed, for everyone, until it is fixed.
	f.writeTokens(t, strings.Join(kept, "\n")+"\nnot a token line\n")
	r = check("broken file", alice, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "auditor token file unreadable") {
		t.Errorf("broken file: body %s", r.body)
	}
	f.writeTokens(t, strings.Join(kept, "\n"))
	check("fixed file", alice, http.StatusOK)
	if err := os.Remove(f.tokenFile); err != nil {
		t.Fatal(err)
	}
	check("deleted file", alice, http.StatusServiceUnavailable)

	logs := f.logs.String()
	for _, tok := range []string{alice, bob} {
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[5:]) {
			t.Error("a token was logged")
		}
	}
	for _, want := range []string{`"auditor":"alice@audit-firm.example","method":"GET","path":"/api/v1/checkpoint","status":200`,
		`"auditor":"","method":"GET","path":"/api/v1/checkpoint","status":401`, "auditor token file unreadable"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNoWriteRoute: the API has no route that changes anything.
func TestNoWriteRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	token := f.tokens["bob"]
	paths := []string{"/api/v1/changes", "/api/v1/changes/" + f.ids[0], "/api/v1/samples", "/api/v1/exceptions",
		"/api/v1/checkpoint", "/api/v1/proof/inclusion", "/api/v1/proof/consistency", "/api/v1/tokens", "/api/v1/changes/" + f.ids[0] + "/approve"}
	for _, p := range paths {
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodPost} {
			if m == http.MethodPost && p == "/api/v1/samples" {
				continue // computes a sample id; tested with the samples
			}
			r := f.do(t, request{method: m, path: p, token: token, body: "{}"})
			if r.code < 400 {
				t.Errorf("%s %s: status %d, want an error", m, p, r.code)
			}
			if e := decodeJSON[apiError](t, r); !strings.Contains(e.Error, "read-only") {
				t.Errorf("%s %s: error %q", m, p, e.Error)
			}
		}
	}
}
