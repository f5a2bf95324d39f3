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
