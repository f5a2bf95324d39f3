// Package config loads the server configuration: a YAML file, then the
// CHANGEGATE_* environment variables, then command-line flags, validated all
// at once. Secrets come only from the environment or from files.
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxWebhookBody is GitHub's cap on webhook payloads (25 MB). Intake refuses
// anything larger with 413. The binary unit is used so that a payload GitHub
// accepts is never refused.
const MaxWebhookBody = 25 << 20

// Config is the validated server configuration.
type Config struct {
	Listen string `yaml:"listen"`
	// PublicURL is where people reach this server (links to record pages).
	PublicURL       string   `yaml:"public_url"`
	DataDir         string   `yaml:"data_dir"`
	LogLevel        string   `yaml:"log_level"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	GitHub GitHub `yaml:"github"`
	Jira   Jira   `yaml:"jira"`
	Queue  Queue  `yaml:"queue"`
	Policy Policy `yaml:"policy"`
	// Completeness tunes the jobs that find what webhooks missed.
	Completeness Completeness `yaml:"completeness"`

	// Evidence and audit settings used by later parts of the server; they are
	// parsed and validated now so that a config file stays valid over time.
	EvidenceURL       string `yaml:"evidence_url"`
	SigningKeyFile    string `yaml:"signing_key_file"`
	AuditorTokensFile string `yaml:"auditor_tokens_file"`

	// DatabaseURL holds credentials, so it comes only from CHANGEGATE_DATABASE_URL.
	DatabaseURL string `yaml:"-"`

	// WebhookSecret is the GitHub webhook secret. WebhookSecretSource says
	// where it came from (an env variable name or a file path), for messages.
	WebhookSecret       []byte `yaml:"-"`
	WebhookSecretSource string `yaml:"-"`
	// WebhookSecretGenerated is true when the secret was generated into the
	// data dir on this start.
	WebhookSecretGenerated bool `yaml:"-"`
}

// Completeness tunes the periodic jobs that find what webhooks missed.
type Completeness struct {
	// RedeliveryInterval is how often the redelivery sweep pages GitHub's
	// delivery log; 0 turns it off.
	RedeliveryInterval Duration `yaml:"redelivery_interval"`
	// ReconcileInterval is how often every production branch is walked for
	// commits no change record covers; 0 turns it off.
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// BackfillPeriod is how far back a branch is backfilled the first time
	// it is reconciled: on installation, or on the first start.
	BackfillPeriod Duration `yaml:"backfill_period"`
	// ReconcileGrace is how old a commit must be before reconciliation
	// judges it: its webhook may still be on the way.
	ReconcileGrace Duration `yaml:"reconcile_grace"`
}

// Policy holds the operator's policy settings.
type Policy struct {
	// FloorFile is a policy file that organisation and repository files may
	// only tighten.
	FloorFile string `yaml:"floor_file"`
}

// GitHub holds the App's identity and the API location.
type GitHub struct {
	APIURL            string `yaml:"api_url"`
	AppID             int64  `yaml:"app_id"`
	PrivateKeyFile    string `yaml:"private_key_file"`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
}

// Configured reports whether App credentials are present.
func (g GitHub) Configured() bool { return g.AppID != 0 || g.PrivateKeyFile != "" }

// Jira holds the Jira location and account. The token and webhook secret are
// secrets and come only from the environment.
type Jira struct {
	URL  string `yaml:"url"`
	User string `yaml:"user"`
	// WriteBack adds, on merge and production deploy, a remote link to the
	// change record's page and a verdict comment on each ticket. It needs
	// public_url.
	WriteBack     bool   `yaml:"write_back"`
	Token         string `yaml:"-"`
	WebhookSecret []byte `yaml:"-"`
}

// Queue tunes the durable job queue.
type Queue struct {
	// Workers bounds how many jobs run at once.
	Workers int `yaml:"workers"`
	// MaxAttempts bounds retries; a job that fails this many times is kept,
	// discarded, with its errors.
	MaxAttempts int `yaml:"max_attempts"`
	// JobTimeout bounds one attempt of a job.
	JobTimeout Duration `yaml:"job_timeout"`
	// MaxBackoff caps the exponential delay between attempts.
	MaxBackoff Duration `yaml:"max_backoff"`
	// Saturation is the number of waiting jobs at which /readyz reports the
	// queue saturated.
	Saturation int `yaml:"saturation"`
	// Retention is how long finished jobs, failed ones included, are kept.
	Retention Duration `yaml:"retention"`
}

// Duration is a time.Duration written as "30s" or "2m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 5m", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:          ":8080",
		DataDir:         "./data",
		LogLevel:        "info",
		ShutdownTimeout: Duration(30 * time.Second),
		GitHub:          GitHub{APIURL: "https://api.github.com/"},
		Completeness: Completeness{RedeliveryInterval: Duration(10 * time.Minute), ReconcileInterval: Duration(time.Hour), BackfillPeriod: Duration(30 * 24 * time.Hour),
			ReconcileGrace: Duration(5 * time.Minute)},
		Queue: Queue{
			Workers:     8,
			MaxAttempts: 10,
			JobTimeout:  Duration(2 * time.Minute),
			MaxBackoff:  Duration(10 * time.Minute),
			Saturation:  10000,
			Retention:   Duration(30 * 24 * time.Hour),
		},
	}
}

// LookupEnv reads one environment variable and reports whether it is set;
// os.LookupEnv fits. Set-but-empty must be told apart from unset, because an
// empty secret is refused while an absent one is generated.
type LookupEnv func(key string) (string, bool)

// Overrides are command-line values; empty fields are not set.
type Overrides struct {
	Listen  string
	DataDir string
}

// Load reads the YAML file at path (if path is not empty), applies the
// environment and the overrides, and validates the result. Every problem is
// reported at once.
func Load(path string, env LookupEnv, o Overrides) (Config, error) {
	cfg := Default()
	if path != "" {
		if err := decodeFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	var errs []error
	applyEnv(&cfg, env, &errs)
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}
	if o.DataDir != "" {
		cfg.DataDir = o.DataDir
	}
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}

func decodeFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func applyEnv(cfg *Config, env LookupEnv, errs *[]error) {
	str := func(key string, dst *string) {
		if v, ok := env(key); ok {
			*dst = v
		}
	}
	str("CHANGEGATE_LISTEN", &cfg.Listen)
	str("CHANGEGATE_PUBLIC_URL", &cfg.PublicURL)
	if v, ok := env("CHANGEGATE_JIRA_WRITE_BACK"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("CHANGEGATE_JIRA_WRITE_BACK: %q is not true or false", v))
		}
		cfg.Jira.WriteBack = b
	}
	str("CHANGEGATE_DATA_DIR", &cfg.DataDir)
	str("CHANGEGATE_LOG_LEVEL", &cfg.LogLevel)
	str("CHANGEGATE_GITHUB_API_URL", &cfg.GitHub.APIURL)
	str("CHANGEGATE_GITHUB_PRIVATE_KEY_FILE", &cfg.GitHub.PrivateKeyFile)
	str("CHANGEGATE_WEBHOOK_SECRET_FILE", &cfg.GitHub.WebhookSecretFile)
	str("CHANGEGATE_JIRA_URL", &cfg.Jira.URL)
	str("CHANGEGATE_JIRA_USER", &cfg.Jira.User)
	str("CHANGEGATE_JIRA_TOKEN", &cfg.Jira.Token)
	str("CHANGEGATE_DATABASE_URL", &cfg.DatabaseURL)
	str("CHANGEGATE_EVIDENCE_URL", &cfg.EvidenceURL)
	str("CHANGEGATE_SIGNING_KEY_FILE", &cfg.SigningKeyFile)
	str("CHANGEGATE_AUDITOR_TOKENS_FILE", &cfg.AuditorTokensFile)
	str("CHANGEGATE_POLICY_FLOOR_FILE", &cfg.Policy.FloorFile)
	if v, ok := env("CHANGEGATE_GITHUB_APP_ID"); ok && v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("CHANGEGATE_GITHUB_APP_ID: %q is not a number", v))
		}
		cfg.GitHub.AppID = id
	}
	interval := func(key string, dst *Duration) {
		if v, ok := env(key); ok && v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				*errs = append(*errs, fmt.Errorf("%s: %q is not a duration like 10m (0 turns it off)", key, v))
			}
			*dst = Duration(d)
		}
	}
	interval("CHANGEGATE_REDELIVERY_INTERVAL", &cfg.Completeness.RedeliveryInterval)
	interval("CHANGEGATE_RECONCILE_INTERVAL", &cfg.Completeness.ReconcileInterval)
	interval("CHANGEGATE_BACKFILL_PERIOD", &cfg.Completeness.BackfillPeriod)
	interval("CHANGEGATE_RECONCILE_GRACE", &cfg.Completeness.ReconcileGrace)
	if v, ok := env("CHANGEGATE_QUEUE_WORKERS"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("CHANGEGATE_QUEUE_WORKERS: %q is not a number", v))
		}
		cfg.Queue.Workers = n
	}
	if v, ok := env("CHANGEGATE_JIRA_WEBHOOK_SECRET"); ok {
		if v == "" {
			*errs = append(*errs, errors.New("CHANGEGATE_JIRA_WEBHOOK_SECRET: set but empty; unset it or give a secret"))
		}
		cfg.Jira.WebhookSecret = []byte(v)
	}
	if v, ok := env("CHANGEGATE_WEBHOOK_SECRET"); ok {
		if v == "" {
			*errs = append(*errs, errors.New("CHANGEGATE_WEBHOOK_SECRET: set but empty; an empty secret would accept unsigned payloads"))
		}
		cfg.WebhookSecret = []byte(v)
		cfg.WebhookSecretSource = "CHANGEGATE_WEBHOOK_SECRET"
	}
}

// problems collects what is wrong with a configuration, key by key.
type problems []error

func (ps *problems) bad(key, format string, args ...any) {
	*ps = append(*ps, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// httpURL checks that a set key is an http(s) URL.
func (ps *problems) httpURL(key, value string) {
	if u, err := url.Parse(value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		ps.bad(key, "%q is not an http(s) URL", value)
	}
}

// validate checks each section in turn.
func (c *Config) validate() []error {
	var ps problems
	c.validateServer(&ps)
	c.validateGitHub(&ps)
	c.validateJira(&ps)
	c.validateStores(&ps)
	c.Queue.validate(&ps)
	return ps
}

func (c *Config) validateServer(ps *problems) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		ps.bad("listen", "%q is not host:port (%v)", c.Listen, err)
	}
	if c.DataDir == "" {
		ps.bad("data_dir", "must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		ps.bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.ShutdownTimeout.D() <= 0 {
		ps.bad("shutdown_timeout", "must be positive")
	}
	if c.PublicURL != "" {
		ps.httpURL("public_url", c.PublicURL)
	}
}

func (c *Config) validateGitHub(ps *problems) {
	ps.httpURL("github.api_url", c.GitHub.APIURL)
	if c.GitHub.AppID < 0 {
		ps.bad("github.app_id", "must be positive")
	}
	if c.GitHub.Configured() {
		if c.GitHub.AppID == 0 {
			ps.bad("github.app_id", "required when github.private_key_file is set")
		}
		if c.GitHub.PrivateKeyFile == "" {
			ps.bad("github.private_key_file", "required when github.app_id is set")
		} else if _, err := os.Stat(c.GitHub.PrivateKeyFile); err != nil {
			ps.bad("github.private_key_file", "%v", err)
		}
	}
	if c.WebhookSecretSource == "" && c.GitHub.WebhookSecretFile != "" {
		if err := c.readSecretFile(c.GitHub.WebhookSecretFile); err != nil {
			ps.bad("github.webhook_secret_file", "%v", err)
		}
	}
}

func (c *Config) validateJira(ps *problems) {
	if c.Jira.WriteBack && (c.PublicURL == "" || c.Jira.URL == "") {
		ps.bad("jira.write_back", "needs jira.url, and public_url for the links to the change records")
	}
	if c.Jira.URL == "" {
		return
	}
	ps.httpURL("jira.url", c.Jira.URL)
	if c.Jira.Token == "" {
		ps.bad("CHANGEGATE_JIRA_TOKEN", "required when jira.url is set")
	}
}

func (c *Config) validateStores(ps *problems) {
	if c.EvidenceURL != "" && !strings.HasPrefix(c.EvidenceURL, "s3://") {
		ps.bad("evidence_url", "%q must be an s3:// URL", c.EvidenceURL)
	}
	if c.DatabaseURL == "" {
		return
	}
	u, err := url.Parse(c.DatabaseURL)
	switch {
	case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "":
		ps.bad("CHANGEGATE_DATABASE_URL", "want postgres://USER:PASSWORD@HOST:PORT/DATABASE (got %s)", redactURL(c.DatabaseURL))
	case c.EvidenceURL == "":
		// Replicas must share the evidence, and a local directory is
		// each replica's own.
		ps.bad("evidence_url", "required with CHANGEGATE_DATABASE_URL: the records must be in S3 with Object Lock (CHANGEGATE_EVIDENCE_URL=s3://…), which every replica shares")
	}
	// What a single server would generate into its data dir, replicas
	// must share instead.
	if c.SigningKeyFile == "" {
		ps.bad("signing_key_file", "required with CHANGEGATE_DATABASE_URL: every replica must sign with the one ledger key (CHANGEGATE_SIGNING_KEY_FILE, from a Secret); each would otherwise make its own")
	}
	if len(c.WebhookSecret) == 0 && c.GitHub.WebhookSecretFile == "" {
		ps.bad("CHANGEGATE_WEBHOOK_SECRET", "required with CHANGEGATE_DATABASE_URL (or github.webhook_secret_file): each replica would otherwise generate its own")
	}
}

func (q Queue) validate(ps *problems) {
	if q.Workers < 1 || q.Workers > 1000 {
		ps.bad("queue.workers", "%d is outside 1..1000", q.Workers)
	}
	if q.MaxAttempts < 1 || q.MaxAttempts > 100 {
		ps.bad("queue.max_attempts", "%d is outside 1..100", q.MaxAttempts)
	}
	if q.JobTimeout.D() < time.Second {
		ps.bad("queue.job_timeout", "must be at least 1s")
	}
	if q.MaxBackoff.D() < time.Second {
		ps.bad("queue.max_backoff", "must be at least 1s")
	}
	if q.Saturation < 1 {
		ps.bad("queue.saturation", "must be positive")
	}
	if q.Retention.D() < time.Hour {
		ps.bad("queue.retention", "must be at least 1h")
	}
}

func (c *Config) readSecretFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return fmt.Errorf("%s is empty; an empty secret would accept unsigned payloads", path)
	}
	c.WebhookSecret = []byte(s)
	c.WebhookSecretSource = path
	return nil
}

// webhookSecretFile is where a generated secret lives in the data dir.
const webhookSecretFile = "webhook-secret"

// EnsureWebhookSecret fills in the webhook secret when none was configured:
// it reads the one generated into the data dir earlier, or generates a random
// one there (mode 0600). Call it after the data dir exists.
func (c *Config) EnsureWebhookSecret() error {
	if len(c.WebhookSecret) > 0 {
		return nil
	}
	path := filepath.Join(c.DataDir, webhookSecretFile)
	err := c.readSecretFile(path)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("webhook secret: %w", err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("generate webhook secret: %w", err)
	}
	secret := hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write webhook secret: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write webhook secret: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write webhook secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write webhook secret: %w", err)
	}
	c.WebhookSecret = []byte(secret)
	c.WebhookSecretSource = path
	c.WebhookSecretGenerated = true
	return nil
}

// redactURL is a URL with its password masked, or a placeholder when it
// does not parse (it may still hold one).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "a value that does not parse as a URL"
	}
	return u.Redacted()
}
