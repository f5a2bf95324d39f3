package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"policy", "check", "../../config/policy.default.yml"}, envMap(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("the shipped default policy is invalid (exit %d): %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "valid") {
		t.Errorf("stdout = %q", stdout.String())
	}

	bad := filepath.Join(t.TempDir(), "changegate.yml")
	if err := os.WriteFile(bad, []byte("version: 1\nreview:\n  required: 2\nreveiw:\n  required: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), []string{"policy", "check", bad}, envMap(nil), &stdout, &stderr); code == 0 {
		t.Fatal("an unknown key was accepted")
	}
	if want := bad + ":4:"; !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), `"reveiw"`) {
		t.Errorf("stderr = %q, want the file, line 4 and the key", stderr.String())
	}
}

// TestPolicyCheckLayers: policy check gives the server's verdict. Files a
// team plausibly writes are valid over the built-in default; a weakened
// control is refused at its line; an organisation file below the floor is
// refused; --print shows the effective policy.
func TestPolicyCheckLayers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	branches := file("branches.yml", "version: 1\nproduction:\n  branches: [main]\n")
	statuses := file("statuses.yml", "version: 1\nticket:\n  statuses: [\"Ready for Release\"]\n")
	gitops := file("gitops.yml", "version: 1\nproduction:\n  paths: [overlays/production/**]\n")
	noReview := file("noreview.yml", "version: 1\nreview:\n  required: 0\n")
	stale := file("stale.yml", "version: 1\nreview:\n  keep_on_push: true\n")
	floor := file("floor.yml", "version: 1\nreview:\n  required: 2\n")
	org := file("org.yml", "version: 1\nreview:\n  required: 1\n")
	for _, tc := range []struct {
		args []string
		ok   bool
		want string
	}{
		{[]string{branches}, true, "valid"},
		{[]string{statuses}, true, "valid"},
		{[]string{gitops, "--print"}, true, "overlays/production/**"},
		{[]string{noReview}, false, noReview + ":3:"},
		{[]string{stale}, false, stale + ":3:"},
		{[]string{org, "--floor", floor}, false, org + ":3:"},
		{[]string{statuses, "--baseline", file("strict.yml", "version: 1\nticket:\n  statuses: [Approved]\n")}, false, "Ready for Release"},
	} {
		code, out := cli(t, append([]string{"policy", "check"}, tc.args...)...)
		if (code == 0) != tc.ok || !strings.Contains(out, tc.want) {
			t.Errorf("policy check %v: exit %d, %q; want ok=%v and %q", tc.args, code, out, tc.ok, tc.want)
		}
	}
}

// TestServeRefusesABadFloor: a floor file that does not parse stops the
// server at start-up.
func TestServeRefusesABadFloor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	floor := filepath.Join(dir, "floor.yml")
	if err := os.WriteFile(floor, []byte("version: 1\nreview:\n  reqired: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var errs bytes.Buffer
	env := envMap(map[string]string{"CHANGEGATE_DATA_DIR": filepath.Join(dir, "data"), "CHANGEGATE_LISTEN": "127.0.0.1:0",
		"CHANGEGATE_WEBHOOK_SECRET": "s3cret", "CHANGEGATE_POLICY_FLOOR_FILE": floor})
	if code := run(t.Context(), []string{"serve"}, env, &bytes.Buffer{}, &errs); code == 0 || !strings.Contains(errs.String(), "policy floor") || !strings.Contains(errs.String(), ":3:") {
		t.Errorf("serve with a bad floor: exit %d: %s", code, errs.String())
	}
}

// TestPolicyCheckAgreesWithTheServer: for each policy file of the layer
// tests, `policy check` and the server's check give the same verdict, and
// an invalid file is quoted at the same line. The organisation's file is
// checked over an operator floor, as the server applies it.
func TestPolicyCheckAgreesWithTheServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	floor := filepath.Join(dir, "floor.yml")
	if err := os.WriteFile(floor, []byte("version: 1\nreview:\n  required: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppWith(t, map[string]string{"CHANGEGATE_POLICY_FLOOR_FILE": floor})
	a.jf.SetStatus("PAY-123", "Approved")
	a.gh.AddRepo(42, ghfake.Repo{ID: 1002, Owner: "acme", Name: ".github"})
	n := 200
	// serverVerdict evaluates a new pull request and returns whether the
	// policy was refused, and the line it quotes.
	serverVerdict := func() (bool, string) {
		t.Helper()
		n++
		sha := fmt.Sprintf("%040x", n)
		a.compliantPR(n, sha)
		a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, sha), `"number":51`, fmt.Sprintf(`"number":%d`, n)))
		eventually(t, fmt.Sprintf("the check of #%d", n), 30*time.Second, func() bool { return len(a.conclusionsOn(sha)) > 0 })
		w := a.latest(t)
		return strings.HasPrefix(w.Title, "Invalid policy"), lineQuoted(w.Summary)
	}
	cliVerdict := func(args ...string) (bool, string) {
		t.Helper()
		code, out := cli(t, append([]string{"policy", "check"}, args...)...)
		return code != 0, lineQuoted(out)
	}
	compare := func(name string, server, cli func() (bool, string)) {
		t.Helper()
		sInvalid, sLine := server()
		cInvalid, cLine := cli()
		t.Logf("%s: server invalid=%v line %q; policy check invalid=%v line %q", name, sInvalid, sLine, cInvalid, cLine)
		if sInvalid != cInvalid || sLine != cLine {
			t.Errorf("%s: server invalid=%v at %q, policy check invalid=%v at %q", name, sInvalid, sLine, cInvalid, cLine)
		}
	}

	orgFile := func(body string) string {
		a.gh.SetContent("acme", ".github", "main", "changegate.yml", []byte(body))
		// A push to the organisation's .github repository refreshes its baseline.
		a.github(t, "push", fmt.Sprintf(`{"ref":"refs/heads/main","before":"%040d","after":"%040x","commits":[],"pusher":{"name":"alice"},`+
			`"repository":{"full_name":"acme/.github","default_branch":"main"},"installation":{"id":42}}`, 0, n))
		time.Sleep(300 * time.Millisecond)
		p := filepath.Join(dir, "org.yml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	org := orgFile("version: 1\nreview:\n  required: 1\n")
	compare("an organisation file below the floor", serverVerdict, func() (bool, string) { return cliVerdict(org, "--floor", floor) })
	if invalid, line := serverVerdict(); !invalid || line != "3" {
		t.Errorf("an organisation file below the floor: invalid=%v at line %q, want refused at 3", invalid, line)
	}
	org = orgFile("version: 1\nreview:\n  required: 2\n")

	for _, body := range []string{
		"version: 1\nproduction:\n  branches: [main]\n",
		"version: 1\nticket:\n  statuses: [\"Ready for Release\"]\n",
		"version: 1\nproduction:\n  paths: [overlays/production/**]\n",
		"version: 1\nreview:\n  required: 0\n",
		"version: 1\nreview:\n  keep_on_push: true\n",
		"version: 1\nreview:\n  required: 3\n",
	} {
		repo := filepath.Join(dir, "repo.yml")
		if err := os.WriteFile(repo, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		a.gh.SetContent("acme", "api", "main", ".github/changegate.yml", []byte(body))
		compare(strings.ReplaceAll(body, "\n", " "), serverVerdict, func() (bool, string) { return cliVerdict(repo, "--baseline", org, "--floor", floor) })
	}
}

// lineQuoted is the first line number quoted as FILE.yml:N: or
// FILE.yml@REF:N:, or "".
func lineQuoted(s string) string {
	m := regexp.MustCompile(`\.yml(?:@[\w./-]+)?:(\d+):`).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}
