package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvidenceCommands: keygen writes a key once and never replaces it;
// create-bucket and healthcheck refuse bad input with exit 2, and a
// server that does not answer is not healthy.
func TestEvidenceCommands(t *testing.T) {
	t.Parallel()
	cli := func(env map[string]string, args ...string) (int, string) {
		var out bytes.Buffer
		code := run(t.Context(), args, envMap(env), &out, &out)
		return code, out.String()
	}
	key := filepath.Join(t.TempDir(), "signing-key.pem")
	if code, out := cli(nil, "evidence", "keygen", "--out", key); code != 0 || !strings.Contains(out, "BEGIN PUBLIC KEY") || !strings.Contains(out, "fingerprint: SHA256:") {
		t.Fatalf("keygen: exit %d: %s", code, out)
	}
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the key: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	before, _ := os.ReadFile(key)
	if code, out := cli(nil, "evidence", "keygen", "--out", key); code != 2 || !strings.Contains(out, "never replaces") {
		t.Errorf("keygen over a key: exit %d: %s", code, out)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Error("keygen replaced a key")
	}
	for _, bad := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"evidence", "keygen"}, "--out"},
		{nil, []string{"evidence", "create-bucket"}, "CHANGEGATE_EVIDENCE_URL"},
		{map[string]string{"CHANGEGATE_EVIDENCE_URL": "s3://bucket/p"}, []string{"evidence", "create-bucket"}, "retention"},
		{nil, []string{"evidence", "create-bucket", "--evidence-url", "file:///tmp"}, "scheme"},
		{map[string]string{"CHANGEGATE_LISTEN": "nonsense"}, []string{"healthcheck"}, "CHANGEGATE_LISTEN"},
	} {
		if code, out := cli(bad.env, bad.args...); code != 2 || !strings.Contains(out, bad.want) {
			t.Errorf("%v: exit %d, want 2 naming %s: %s", bad.args, code, bad.want, out)
		}
	}
	if code, out := cli(map[string]string{"CHANGEGATE_LISTEN": "127.0.0.1:1"}, "healthcheck"); code != 1 || !strings.Contains(out, "not ready") {
		t.Errorf("healthcheck of no server: exit %d: %s", code, out)
	}
}
