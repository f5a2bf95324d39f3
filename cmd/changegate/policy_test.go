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
