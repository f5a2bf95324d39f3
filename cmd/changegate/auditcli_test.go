package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/web"
)

// auditDataDir is a data dir holding n records of January 2026
// (benchRecord: one merge every 30 s, a bypass among them).
func auditDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	key, _, err := evidence.LoadOrCreateKey(filepath.Join(dir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	blobs, err := fs.Open(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(t.Context(), blobs, store.Ledger(), signer, LedgerOrigin(signer.Public()))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range n {
		if _, err := l.Append(t.Context(), benchRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// cli runs the changegate command line and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(t.Context(), args, envMap(nil), &out, &errs)
	return code, out.String() + errs.String()
}

// TestAuditCLIAgainstServer: the audit commands give byte-identical
// packages and populations from a data dir and from a server's API, and
// the package verifies offline with the published key.
func TestAuditCLIAgainstServer(t *testing.T) {
	t.Parallel()
	dir := auditDataDir(t, 40)
	token, tokens := auditorTokens(t, "auditor-1")
	srv := serveInProcess(t, map[string]string{
		"CHANGEGATE_DATA_DIR":            dir,
		"CHANGEGATE_LISTEN":              "127.0.0.1:0",
		"CHANGEGATE_WEBHOOK_SECRET":      "s3cret",
		"CHANGEGATE_AUDITOR_TOKENS_FILE": tokens,
	})
	out := t.TempDir()
	period := []string{"--from", "2026-01-01", "--to", "2026-01-02"}
	local := []string{"--data-dir", dir}
	remote := []string{"--server", srv.base, "--token", token}
	for _, cmd := range [][]string{
		append([]string{"audit", "sample", "--size", "5", "--seed", "s1", "--include-exceptions"}, period...),
		append([]string{"audit", "population", "--format", "csv"}, period...),
		{"audit", "export", "--id", benchID(3) + "," + benchID(7)},
	} {
		a, b := filepath.Join(out, "local-"+cmd[1]), filepath.Join(out, "remote-"+cmd[1])
		if code, msg := cli(t, append(append(cmd, local...), "--out", a)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", cmd, code, msg)
		}
		if code, msg := cli(t, append(append(cmd, remote...), "--out", b)...); code != 0 {
			t.Fatalf("%v --server: exit %d: %s", cmd, code, msg)
		}
		if !sameFile(t, a, b) {
			t.Errorf("%v: the data dir and the server gave different bytes", cmd)
		}
	}
	if !sameFile(t, filepath.Join(out, "local-population.manifest.json"), filepath.Join(out, "remote-population.manifest.json")) {
		t.Error("population manifests differ")
	}
	pub := filepath.Join(out, "changegate.pub")
	code, msg := cli(t, "audit", "pubkey", "--data-dir", dir)
	if code != 0 {
		t.Fatal(msg)
	}
	pem, _, _ := strings.Cut(msg, "fingerprint:")
	os.WriteFile(pub, []byte(pem), 0o600)
	for _, pkg := range []string{"remote-sample", "remote-export"} {
		if code, msg := cli(t, "audit", "verify", filepath.Join(out, pkg), "--pubkey", pub); code != 0 || !strings.HasPrefix(msg, "ok:") {
			t.Errorf("verify %s: exit %d: %s", pkg, code, msg)
		}
	}
	if code, msg := cli(t, append(append([]string{"audit", "exceptions"}, period...), local...)...); code != 0 || !strings.Contains(msg, "bypass") {
		t.Errorf("exceptions: exit %d: %s", code, msg)
	}
	if code, _ := cli(t, append(append([]string{"audit", "population"}, period...), "--server", srv.base, "--token", "wrong")...); code == 0 {
		t.Error("a wrong token was accepted")
	}
}

func benchID(i int) string {
	r := benchRecord(i)
	return evidence.RecordID(r.Repo.String(), r.Subject.SHA(), r.ChangeType, "")
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(x, y)
}

// TestAuditBadFlags: each bad input gets exit code 2, names the flag, and
// writes no file.
func TestAuditBadFlags(t *testing.T) {
	t.Parallel()
	dir := auditDataDir(t, 10)
	out := filepath.Join(t.TempDir(), "out.zip")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"sample", "--from", "2026-13-01", "--to", "2026-02-01", "--size", "1", "--seed", "s"}, "--from"},
		{[]string{"sample", "--from", "2026-02-01", "--to", "2026-01-01", "--size", "1", "--seed", "s"}, "--from"},
		{[]string{"sample", "--from", "2026-01-01", "--to", "2026-02-01", "--size", "0", "--seed", "s"}, "--size"},
		{[]string{"sample", "--from", "2026-01-01", "--to", "2026-02-01", "--size", "-3", "--seed", "s"}, "--size"},
		{[]string{"sample", "--from", "2026-01-01", "--to", "2026-02-01", "--size", "11", "--seed", "s"}, "--size"},
		{[]string{"sample", "--from", "2026-01-01", "--to", "2026-02-01", "--size", "1", "--seed", "s", "--type", "yolo"}, "--type"},
		{[]string{"population", "--from", "2026-01-01", "--to", "2026-02-01", "--format", "pdf"}, "--format"},
		{[]string{"export", "--id", "0123"}, "0123"},
		{[]string{"sample", "--bogus"}, "--bogus"},
	} {
		args := append(append([]string{"audit"}, tc.args...), "--data-dir", dir, "--out", out)
		code, msg := cli(t, args...)
		if code != 2 || !strings.Contains(msg, tc.flag) {
			t.Errorf("%v: exit %d, %q; want 2 naming %s", tc.args, code, msg, tc.flag)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v wrote %s", tc.args, out)
		}
	}
}

// TestFirstStartMakesTheLedger: a first start without App credentials
// still makes the signing key and the ledger, so audit pubkey works.
func TestFirstStartMakesTheLedger(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv := serveInProcess(t, map[string]string{
		"CHANGEGATE_DATA_DIR":       dir,
		"CHANGEGATE_LISTEN":         "127.0.0.1:0",
		"CHANGEGATE_WEBHOOK_SECRET": "s3cret",
	})
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	code, out := cli(t, "audit", "pubkey", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "BEGIN PUBLIC KEY") || !strings.Contains(out, "fingerprint: SHA256:") {
		t.Errorf("audit pubkey after a first start: exit %d: %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "evidence")); err != nil {
		t.Errorf("no evidence directory: %v", err)
	}
}

// TestServeRefusesABadTokensFile: a tokens file that is set but cannot be
// read or parsed stops the server at start-up.
func TestServeRefusesABadTokensFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokens")
	if err := os.WriteFile(bad, []byte("auditor not-a-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"malformed": bad, "unreadable": filepath.Join(dir, "missing")} {
		var errs bytes.Buffer
		env := envMap(map[string]string{
			"CHANGEGATE_DATA_DIR":            filepath.Join(dir, name),
			"CHANGEGATE_LISTEN":              "127.0.0.1:0",
			"CHANGEGATE_WEBHOOK_SECRET":      "s3cret",
			"CHANGEGATE_AUDITOR_TOKENS_FILE": path,
		})
		if code := run(t.Context(), []string{"serve"}, env, &bytes.Buffer{}, &errs); code == 0 || !strings.Contains(errs.String(), "auditor tokens") {
			t.Errorf("%s tokens file: exit %d: %s", name, code, errs.String())
		}
	}
}

// TestVerifyPopulation: a population export verifies against its signed
// manifest, and an edited row or a foreign key fails.
func TestVerifyPopulation(t *testing.T) {
	t.Parallel()
	dir := auditDataDir(t, 12)
	out := filepath.Join(t.TempDir(), "jan.csv")
	if code, msg := cli(t, "audit", "population", "--data-dir", dir, "--from", "2026-01-01", "--to", "2026-02-01", "--out", out); code != 0 {
		t.Fatal(msg)
	}
	if code, msg := cli(t, "audit", "verify", out); code != 0 || !strings.Contains(msg, "ok: population of 12 rows") {
		t.Fatalf("verify: exit %d: %s", code, msg)
	}
	data, _ := os.ReadFile(out)
	os.WriteFile(out, bytes.Replace(data, []byte("alice"), []byte("alicf"), 1), 0o600)
	if code, msg := cli(t, "audit", "verify", out); code == 0 || !strings.Contains(msg, "population file") {
		t.Errorf("an edited population verified: exit %d: %s", code, msg)
	}
	os.WriteFile(out, data, 0o600)
	if code, msg := cli(t, "audit", "verify", out, "--pubkey", strings.Repeat("ab", 32)); code == 0 || !strings.Contains(msg, "names a key") {
		t.Errorf("a foreign fingerprint verified: exit %d: %s", code, msg)
	}
}

// auditorTokens makes an auditor token named name and a tokens file that
// holds it, for CHANGEGATE_AUDITOR_TOKENS_FILE.
func auditorTokens(t *testing.T, name string) (token, file string) {
	t.Helper()
	token, line, err := web.NewToken(name)
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return token, file
}
