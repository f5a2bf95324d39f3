package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
