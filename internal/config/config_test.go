package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", envOf(nil), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.DataDir != "./data" || cfg.Queue.Workers != 8 {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if cfg.WebhookSecret != nil {
		t.Errorf("no secret should be set before EnsureWebhookSecret")
	}
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	writeFile(t, path, "listen: 127.0.0.1:9000\ndata_dir: /from/file\nqueue:\n  workers: 3\n  job_timeout: 45s\n")
	cfg, err := Load(path, envOf(map[string]string{
		"CHANGEGATE_DATA_DIR":       "/from/env",
		"CHANGEGATE_WEBHOOK_SECRET": "s3cret",
	}), Overrides{Listen: "127.0.0.1:9001"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9001" {
		t.Errorf("flag should win: listen = %q", cfg.Listen)
	}
	if cfg.DataDir != "/from/env" {
		t.Errorf("env should override file: data_dir = %q", cfg.DataDir)
	}
	if cfg.Queue.Workers != 3 || cfg.Queue.JobTimeout.D() != 45*time.Second {
		t.Errorf("file values lost: %+v", cfg.Queue)
	}
	if string(cfg.WebhookSecret) != "s3cret" || cfg.WebhookSecretSource != "CHANGEGATE_WEBHOOK_SECRET" {
		t.Errorf("secret = %q from %q", cfg.WebhookSecret, cfg.WebhookSecretSource)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	writeFile(t, path, "listen: nonsense\nlog_level: loud\nqueue:\n  workers: 0\n  max_attempts: 1000\n")
	_, err := Load(path, envOf(map[string]string{
		"CHANGEGATE_WEBHOOK_SECRET": "",
		"CHANGEGATE_GITHUB_APP_ID":  "abc",
	}), Overrides{})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"listen:", "log_level:", "queue.workers:", "queue.max_attempts:", "CHANGEGATE_WEBHOOK_SECRET: set but empty", "CHANGEGATE_GITHUB_APP_ID:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestLoadRejectsUnknownKeysAndSecretsInFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	writeFile(t, path, "listen: :8080\nwebhook_secret: oops\n")
	_, err := Load(path, envOf(nil), Overrides{})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "webhook_secret") {
		t.Fatalf("want unknown key error with line, got %v", err)
	}
}

func TestSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")
	if _, err := Load("", envOf(map[string]string{"CHANGEGATE_WEBHOOK_SECRET_FILE": empty}), Overrides{}); err == nil || !strings.Contains(err.Error(), "github.webhook_secret_file") {
		t.Errorf("empty secret file accepted: %v", err)
	}
	good := filepath.Join(dir, "good")
	writeFile(t, good, "abc\n")
	cfg, err := Load("", envOf(map[string]string{"CHANGEGATE_WEBHOOK_SECRET_FILE": good}), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.WebhookSecret) != "abc" {
		t.Errorf("secret = %q", cfg.WebhookSecret)
	}
}

func TestEnsureWebhookSecretGeneratesOnce(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.DataDir = t.TempDir()
	if err := cfg.EnsureWebhookSecret(); err != nil {
		t.Fatal(err)
	}
	if !cfg.WebhookSecretGenerated || len(cfg.WebhookSecret) != 64 {
		t.Fatalf("generated = %v, secret length %d", cfg.WebhookSecretGenerated, len(cfg.WebhookSecret))
	}
	fi, err := os.Stat(cfg.WebhookSecretSource)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	again := Default()
	again.DataDir = cfg.DataDir
	if err := again.EnsureWebhookSecret(); err != nil {
		t.Fatal(err)
	}
	if again.WebhookSecretGenerated || string(again.WebhookSecret) != string(cfg.WebhookSecret) {
		t.Errorf("second start must reuse the generated secret")
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "config", "changegate.example.yaml")
	if _, err := Load(path, envOf(nil), Overrides{}); err != nil {
		t.Errorf("example config does not load: %v", err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDatabaseURL: the PostgreSQL store needs what replicas share (the
// evidence in S3, one signing key, one webhook secret), and a URL that
// does not parse is named with its password masked.
func TestDatabaseURL(t *testing.T) {
	t.Parallel()
	_, err := Load("", envOf(map[string]string{"CHANGEGATE_DATABASE_URL": "postgres://cg:hunter2@db:5432/cg"}), Overrides{})
	for _, want := range []string{"evidence_url: required with CHANGEGATE_DATABASE_URL", "signing_key_file: required", "CHANGEGATE_WEBHOOK_SECRET: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	_, err = Load("", envOf(map[string]string{"CHANGEGATE_DATABASE_URL": "mysql://cg:hunter2@db/cg"}), Overrides{})
	if err == nil || !strings.Contains(err.Error(), "CHANGEGATE_DATABASE_URL") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a URL of another database: %v", err)
	}
	cfg, err := Load("", envOf(map[string]string{"CHANGEGATE_DATABASE_URL": "postgres://cg:hunter2@db:5432/cg",
		"CHANGEGATE_EVIDENCE_URL": "s3://b/p?retention=1d", "CHANGEGATE_SIGNING_KEY_FILE": "/secrets/k.pem", "CHANGEGATE_WEBHOOK_SECRET": "s"}), Overrides{})
	if err != nil || cfg.DatabaseURL == "" {
		t.Errorf("a complete scale-out configuration: %v", err)
	}
}
