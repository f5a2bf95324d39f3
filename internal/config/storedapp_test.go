package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoredApp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var c Config
	c.DataDir = dir
	if err := c.UseStoredApp(); err != nil || c.GitHub.Configured() {
		t.Fatalf("no stored App: %v, configured %v", err, c.GitHub.Configured())
	}
	if err := StoreApp(dir, 42, "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := c.UseStoredApp(); err != nil {
		t.Fatal(err)
	}
	if c.GitHub.AppID != 42 || string(c.WebhookSecret) != "s3cret" || !strings.HasSuffix(c.GitHub.PrivateKeyFile, "private-key.pem") {
		t.Errorf("stored App: %+v %q", c.GitHub, c.WebhookSecret)
	}
	if err := os.Chmod(filepath.Join(dir, StoredAppDir, "private-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	var d Config
	d.DataDir = dir
	if err := d.UseStoredApp(); err == nil || !strings.Contains(err.Error(), "private-key.pem") {
		t.Errorf("a readable key: %v", err)
	}
}

// TestStoredAppUnreadable: a stored App whose id is not a number, or whose
// key is gone, is refused, naming the file.
func TestStoredAppUnreadable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		damage func(dir string) error
		want   string
	}{
		"an id that is not a number": {func(dir string) error { return os.WriteFile(filepath.Join(dir, "app-id"), []byte("forty-two"), 0o600) }, "app-id"},
		"a missing key":              {func(dir string) error { return os.Remove(filepath.Join(dir, "private-key.pem")) }, "private-key.pem"},
		"a missing webhook secret":   {func(dir string) error { return os.Remove(filepath.Join(dir, "webhook-secret")) }, "webhook-secret"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := StoreApp(dir, 42, "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n", "s3cret"); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(filepath.Join(dir, StoredAppDir)); err != nil {
				t.Fatal(err)
			}
			c := Config{DataDir: dir}
			if err := c.UseStoredApp(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error naming %s", err, tc.want)
			}
		})
	}
}
