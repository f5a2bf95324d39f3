package main

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/webhook"
)

// TestNoSecretsInLogs runs a pull request's whole life at debug level
// (evaluations, a Jira transition, the merge and its record, the Jira
// write-back, a production deployment, a forged delivery, the audit API)
// and holds every log line free of the secrets the server handles: the
// webhook secrets, the Jira token and its Basic credentials, the App's
// private key, installation tokens, the App's JWTs, webhook signature
// values and auditor tokens.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	auditor, tokens := auditorTokens(t, "auditor")
	a := startAppWith(t, map[string]string{"CHANGEGATE_LOG_LEVEL": "debug", "CHANGEGATE_JIRA_WRITE_BACK": "true",
		"CHANGEGATE_PUBLIC_URL": "https://changegate.example", "CHANGEGATE_AUDITOR_TOKENS_FILE": tokens})
	db := openReadOnly(t, a.dataDir)
	head := strings.Repeat("a", 40)
	a.compliantPR(7, head)
	opened := strings.ReplaceAll(prEvent("opened", 7), sha1, head)
	a.github(t, "pull_request", opened)
	a.jf.SetStatus("PAY-123", "Approved")
	a.jira(t, "PAY-123")
	eventually(t, "the check passes", 30*time.Second, func() bool {
		c := a.conclusionsOn(head)
		return len(c) > 0 && c[len(c)-1] == "success"
	})
	merge := strings.Repeat("1", 40)
	a.gh.MergePullRequest("acme", "api", 7, merge, "alice")
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 7), sha1, merge))
	eventually(t, "the merge's record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) == 1
	})
	// A forged delivery: its signature value must not be echoed.
	forged := webhook.Sign([]byte("not the secret"), []byte(opened))
	if status, err := sendRaw(t, a, "pull_request", "forged-1", []byte(opened), forged); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("forged delivery: %d %v", status, err)
	}
	req, _ := http.NewRequest(http.MethodGet, a.base+"/api/v1/coverage", nil)
	req.Header.Set("Authorization", "Bearer "+auditor)
	if resp, err := a.client.Do(req); err == nil {
		resp.Body.Close()
	}
	eventually(t, "the write-back", 30*time.Second, func() bool { return strings.Contains(a.logs.String(), "jira_write_back") })
	waitIdle(t, a)

	logs := a.logs.String()
	if !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Fatal("no debug lines: the test did not run at debug level")
	}
	secrets := map[string]string{
		"GitHub webhook secret": ghSecret, "Jira webhook secret": jiraSecret, "Jira API token": a.jf.Token(),
		"Jira Basic credentials": base64.StdEncoding.EncodeToString([]byte(a.jf.User() + ":" + a.jf.Token())),
		"auditor token":          auditor, "forged signature": forged,
	}
	for _, l := range strings.Split(string(a.gh.PrivateKeyPEM()), "\n") {
		if len(l) > 40 && !strings.HasPrefix(l, "-----") {
			secrets["private key line"] = l
			break
		}
	}
	for name, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the logs hold the %s", name)
		}
	}
	for name, re := range map[string]*regexp.Regexp{
		"an installation token":  regexp.MustCompile(`ghs_[A-Za-z0-9]{8,}`),
		"a JWT":                  regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ`),
		"a signature value":      regexp.MustCompile(`sha256=[0-9a-f]{64}`),
		"a PEM block":            regexp.MustCompile(`-----BEGIN`),
		"an Authorization value": regexp.MustCompile(`(?i)(bearer|basic|token) [A-Za-z0-9+/=_-]{16,}`),
	} {
		if m := re.FindString(logs); m != "" {
			t.Errorf("the logs hold %s: %q", name, m)
		}
	}
	t.Logf("%d log lines checked, %d at debug", strings.Count(logs, "\n"), strings.Count(logs, `"level":"DEBUG"`))
}

// sendRaw posts a GitHub delivery with a given signature header.
func sendRaw(t *testing.T, a *app, event, id string, body []byte, sig string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.base+"/webhooks/github", strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
