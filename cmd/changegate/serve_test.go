package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/inventory"
	"github.com/changegate/changegate/internal/queue"
)

// TestServeEndToEnd runs the real wiring against the fake GitHub: start-up
// sync, installation webhooks, health, readiness, metrics, clean shutdown,
// and no secret in the logs.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(t)
	inst := gh.AddInstallation(ghfake.Installation{ID: 42, Account: "acme", AccountType: "Organization"})
	gh.AddRepo(inst.ID, ghfake.Repo{ID: 1001, Owner: "acme", Name: "api"})
	gh.AddRepo(inst.ID, ghfake.Repo{ID: 1002, Owner: "acme", Name: "web"})
	gone := gh.AddInstallation(ghfake.Installation{ID: 43, Account: "other", AccountType: "User"})
	gh.AddRepo(gone.ID, ghfake.Repo{ID: 2001, Owner: "other", Name: "site"})

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	secret := "e2e-webhook-secret-value"
	srv := serveInProcess(t, map[string]string{
		"CHANGEGATE_WEBHOOK_SECRET":          secret,
		"CHANGEGATE_GITHUB_APP_ID":           itoa(gh.AppID()),
		"CHANGEGATE_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"CHANGEGATE_GITHUB_API_URL":          gh.URL(),
		"CHANGEGATE_DATA_DIR":                dataDir,
		"CHANGEGATE_LISTEN":                  "127.0.0.1:0",
	})
	ctx, base, logs := t.Context(), srv.base, srv.logs
	db := openReadOnly(t, dataDir)

	eventually(t, "start-up sync", 20*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM repositories WHERE installation_id = 42`) == 2
	})
	// The installation GitHub lists is recorded; a webhook for another
	// installation adds a repository to it.
	client := &http.Client{Timeout: 10 * time.Second}
	status, err := sendWebhook(ctx, client, base, []byte(secret), "installation_repositories", "d-1", repoAddedBody(42, 1003, "acme/cli"))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("webhook: %d %v", status, err)
	}
	eventually(t, "repository added", 20*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM repositories WHERE full_name = 'acme/cli'`) == 1
	})
	deleted := []byte(`{"action":"deleted","installation":{"id":43,"account":{"login":"other","type":"User"}},"repositories":[]}`)
	if status, err := sendWebhook(ctx, client, base, []byte(secret), "installation", "d-2", deleted); err != nil || status != http.StatusAccepted {
		t.Fatalf("webhook: %d %v", status, err)
	}
	eventually(t, "installation deleted", 20*time.Second, func() bool {
		return queryInt(t, db, `SELECT deleted FROM installations WHERE id = 43`) == 1 &&
			queryInt(t, db, `SELECT COUNT(*) FROM repositories WHERE installation_id = 43`) == 0
	})

	if code, body := getBody(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d %s", code, body)
	}
	if code, body := getBody(t, base+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"store":"ok"`) {
		t.Errorf("readyz: %d %s", code, body)
	}
	// Job metrics follow job events asynchronously.
	eventually(t, "job metrics", 10*time.Second, func() bool {
		_, m := getBody(t, base+"/metrics")
		return strings.Contains(m, `changegate_job_duration_seconds_bucket{kind="installation_event"`)
	})
	code, metrics := getBody(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	mustContain(t, metrics,
		`changegate_webhook_deliveries_total{event="installation_repositories",outcome="accepted",source="github"} 1`,
		`changegate_jobs_total{kind="installation_sync",outcome="completed"} 1`,
		`changegate_queue_jobs{state="available"}`,
		`changegate_queue_oldest_waiting_seconds`,
		`changegate_job_duration_seconds_bucket{kind="installation_event"`,
		`changegate_github_requests_total{method="GET",route="/app/installations",status="200"} 1`,
		`changegate_github_rate_limit_remaining{resource="core"}`,
	)
	if n := gh.CountCalls("POST", "/app/installations/{installation_id}/access_tokens"); n != 2 {
		t.Errorf("access token requests = %d, want one per installation", n)
	}

	if code := srv.stop(); code != 0 {
		t.Errorf("exit code %d; log:\n%s", code, logs.String())
	}
	out := logs.String()
	mustContain(t, out, `"msg":"stopped cleanly"`, `"delivery_id":"d-1"`, `"installation_id":42`)
	key := string(gh.PrivateKeyPEM())
	for _, leak := range []string{secret, key[40:80], "ghs_", `"repository_selection":"selected"`} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %q", leak)
		}
	}
}

func TestServeGeneratesWebhookSecretOnFirstStart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	srv := serveInProcess(t, map[string]string{"CHANGEGATE_DATA_DIR": dataDir, "CHANGEGATE_LISTEN": "127.0.0.1:0"})
	ctx, base, logs := t.Context(), srv.base, srv.logs
	secret, err := os.ReadFile(filepath.Join(dataDir, "webhook-secret"))
	if err != nil {
		t.Fatal(err)
	}
	body := repoAddedBody(9, 1, "a/b")
	status, err := sendWebhook(ctx, http.DefaultClient, base, bytes.TrimSpace(secret), "installation_repositories", "g-1", body)
	if err != nil || status != http.StatusAccepted {
		t.Errorf("signed with the generated secret: %d %v", status, err)
	}
	if code := srv.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	mustContain(t, logs.String(), "generated one into "+filepath.Join(dataDir, "webhook-secret"))
}

func TestServeRefusesEmptySecret(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	env := envMap(map[string]string{"CHANGEGATE_WEBHOOK_SECRET": "", "CHANGEGATE_DATA_DIR": t.TempDir()})
	if code := run(t.Context(), []string{"serve"}, env, &bytes.Buffer{}, &stderr); code == 0 {
		t.Fatal("started with an empty secret")
	}
	mustContain(t, stderr.String(), "CHANGEGATE_WEBHOOK_SECRET: set but empty")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if code := run(t.Context(), []string{"version"}, envMap(nil), &stdout, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(stdout.String(), "changegate ") {
		t.Errorf("version output %q", stdout.String())
	}
}

// TestEveryCredentialKindHasAWorker: each job kind that needs App
// credentials has a handler when they are configured, and a waiting one
// when they are not; a kind without either would fail its jobs.
func TestEveryCredentialKindHasAWorker(t *testing.T) {
	t.Parallel()
	unconfigured := queue.NewWorkers()
	addNotConfigured(unconfigured)
	configured := queue.NewWorkers()
	addAssessor(configured, &assess.Assessor{})
	queue.Add(configured, inventory.SyncHandler(nil, nil, time.Now))
	for name, w := range map[string]*queue.Workers{"unconfigured": unconfigured, "configured": configured} {
		for _, k := range credentialKinds {
			if !slices.Contains(w.Kinds(), k) {
				t.Errorf("%s: no worker for %s", name, k)
			}
		}
	}
}
