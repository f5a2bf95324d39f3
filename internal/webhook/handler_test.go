package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/inventory"
	"github.com/changegate/changegate/internal/jira"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/testenv"
	"github.com/changegate/changegate/internal/webhook"
)

var (
	secret     = []byte("test-secret")
	jiraSecret = []byte("jira-secret")
)

// stack is the real intake: echo handler, SQLite store, River queue and the
// installation worker.
type stack struct {
	url     string
	jiraURL string
	store   *sqlite.DB
}

func newStack(tb testing.TB, synchronous string) *stack {
	tb.Helper()
	return newStackWith(tb, synchronous, nil)
}

// newStackWith is newStack with more job handlers.
func newStackWith(tb testing.TB, synchronous string, more func(*queue.Workers)) *stack {
	tb.Helper()
	ctx := tb.Context()
	log := slog.New(slog.DiscardHandler)
	store, err := sqlite.Open(ctx, tb.TempDir(), sqlite.Options{Synchronous: synchronous})
	if err != nil {
		tb.Fatal(err)
	}
	w := queue.NewWorkers()
	queue.Add(w, inventory.EventHandler(store, time.Now, nil))
	if more != nil {
		more(w)
	}
	q, err := queue.New(queue.NewBackend(riversqlite.New(store.SQL()), store), w, queue.Config{Workers: 8, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	h, err := webhook.NewGitHub(webhook.Options{Secret: secret, MaxBody: config.MaxWebhookBody, Enqueuer: q,
		Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		tb.Fatal(err)
	}
	jh, err := webhook.NewJira(h, jiraSecret, jira.ParseWebhook)
	if err != nil {
		tb.Fatal(err)
	}
	e := echo.New()
	e.POST("/webhooks/github", h.Handle)
	e.POST("/webhooks/jira", jh.Handle)
	srv := httptest.NewServer(e)
	tb.Cleanup(func() {
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(sctx); err != nil {
			tb.Errorf("stop queue: %v", err)
		}
		store.Close()
	})
	return &stack{url: srv.URL + "/webhooks/github", jiraURL: srv.URL + "/webhooks/jira", store: store}
}

func (s *stack) send(t *testing.T, event, id string, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *stack) rows(t *testing.T) (deliveries, jobs int) {
	t.Helper()
	db := s.store.SQL()
	if err := db.QueryRow(`SELECT COUNT(*) FROM deliveries`).Scan(&deliveries); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM river_job`).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	return deliveries, jobs
}

const installBody = `{"action":"added","installation":{"id":7,"account":{"login":"acme","type":"Organization"}},"repositories_added":[{"id":3,"full_name":"acme/new"}],"repositories_removed":[]}`

func TestRejectedDeliveriesWriteNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, "NORMAL")
	body := []byte(installBody)
	huge := append([]byte(`{"pad":"`), bytes.Repeat([]byte("a"), config.MaxWebhookBody)...)
	huge = append(huge, `"}`...)
	tests := []struct {
		name string
		body []byte
		sig  string
		want int
	}{
		{"bad signature", body, webhook.Sign([]byte("wrong"), body), http.StatusUnauthorized},
		{"missing signature", body, "", http.StatusUnauthorized},
		{"over 25 MB", huge, webhook.Sign(secret, huge), http.StatusRequestEntityTooLarge},
		{"malformed json", []byte(`{"action":`), webhook.Sign(secret, []byte(`{"action":`)), http.StatusBadRequest},
		{"installation without account", []byte(`{"action":"added","installation":{"id":1}}`),
			webhook.Sign(secret, []byte(`{"action":"added","installation":{"id":1}}`)), http.StatusBadRequest},
	}
	for i, tc := range tests {
		if got := s.send(t, "installation_repositories", fmt.Sprintf("bad-%d", i), tc.body, tc.sig); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if d, j := s.rows(t); d != 0 || j != 0 {
		t.Errorf("rows written: %d deliveries, %d jobs; want none", d, j)
	}
}

func TestChunkedOversizedBodyIs413(t *testing.T) {
	t.Parallel()
	s := newStack(t, "NORMAL")
	// No Content-Length: the limit must hold while reading.
	r := io.MultiReader(strings.NewReader(`{"pad":"`), io.LimitReader(zeros{}, config.MaxWebhookBody+1))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "chunked")
	req.Header.Set("X-Hub-Signature-256", "sha256=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestSameDeliveryFiveTimesProcessedOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, "NORMAL")
	body := []byte(installBody)
	for range 5 {
		if got := s.send(t, "installation_repositories", "same-guid", body, webhook.Sign(secret, body)); got != http.StatusAccepted {
			t.Fatalf("status %d, want 202", got)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, err := s.store.Deliveries(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Processed == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v, want one processed once", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, j := s.rows(t); j != 1 {
		t.Errorf("jobs = %d, want exactly 1", j)
	}
	repos, err := s.store.Repositories(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 1 || repos[0].FullName != "acme/new" {
		t.Errorf("repositories = %+v", repos)
	}
}

// TestGitHubExamplesAccepted sends every documented payload, signed, through
// the real handler.
func TestGitHubExamplesAccepted(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testenv.RequireSharedTestdata(t), "webhooks", "examples")
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples under %s: %v", dir, err)
	}
	s := newStack(t, "NORMAL")
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		event := filepath.Base(filepath.Dir(f))
		got := s.send(t, event, fmt.Sprintf("example-%d", i), body, webhook.Sign(secret, body))
		if got < 200 || got > 299 {
			t.Errorf("%s: status %d", f, got)
		}
	}
}

func (s *stack) sendJira(t *testing.T, id string, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.jiraURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if id != "" {
		req.Header.Set("X-Atlassian-Webhook-Identifier", id)
	}
	if sig != "" {
		req.Header.Set("X-Hub-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestJiraWebhook(t *testing.T) {
	t.Parallel()
	s := newStack(t, "NORMAL")
	updated := []byte(`{"timestamp":1700000000000,"webhookEvent":"jira:issue_updated","issue":{"id":"10001","key":"PAY-123","fields":{"status":{"name":"Approved"}}},"changelog":{"items":[{"field":"status","fromString":"To Do","toString":"Approved"}]}}`)
	tests := []struct {
		name string
		id   string
		body []byte
		sig  string
		want int
	}{
		{"GitHub's secret is not Jira's", "j-1", updated, webhook.Sign(secret, updated), http.StatusUnauthorized},
		{"unsigned", "j-1", updated, "", http.StatusUnauthorized},
		{"malformed", "j-2", []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"not a key"}}`),
			webhook.Sign(jiraSecret, []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"not a key"}}`)), http.StatusBadRequest},
	}
	for _, tc := range tests {
		if got := s.sendJira(t, tc.id, tc.body, tc.sig); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if d, j := s.rows(t); d != 0 || j != 0 {
		t.Fatalf("rejected Jira deliveries wrote %d deliveries, %d jobs", d, j)
	}
	for range 3 { // Jira retries keep the identifier
		if got := s.sendJira(t, "j-3", updated, webhook.Sign(jiraSecret, updated)); got != http.StatusAccepted {
			t.Fatalf("status %d, want 202", got)
		}
	}
	ignored := []byte(`{"webhookEvent":"project_created"}`)
	if got := s.sendJira(t, "j-4", ignored, webhook.Sign(jiraSecret, ignored)); got != http.StatusAccepted {
		t.Errorf("irrelevant Jira event: status %d, want 202", got)
	}
	ds, err := s.store.Deliveries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != "jira:j-3" || ds[0].Source != "jira" || ds[0].Jobs != 1 {
		t.Errorf("deliveries = %+v, want the one issue update", ds)
	}
	// A moved issue re-evaluates pull requests naming either key.
	moved := []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"CHG-42"},"changelog":{"items":[{"field":"Key","fieldtype":"jira","fromString":"PAY-123","toString":"CHG-42"}]}}`)
	if got := s.sendJira(t, "j-5", moved, webhook.Sign(jiraSecret, moved)); got != http.StatusAccepted {
		t.Fatalf("status %d", got)
	}
	ds, _ = s.store.Deliveries(t.Context())
	if len(ds) != 2 || ds[1].Jobs != 2 {
		t.Errorf("moved issue: deliveries = %+v, want 2 jobs for the old and new key", ds)
	}
}

// TestDeliveryIDDefects: a GitHub delivery id shaped like Jira's namespace
// and a Jira delivery with the rest of it are two deliveries, not one; ids
// that are not plain ASCII are refused (GitHub) or hashed losslessly
// (Jira), so that every stored delivery can be counted processed; a
// negative installation id and an unbounded Jira key are refused.
func TestDeliveryIDDefects(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, "NORMAL", func(w *queue.Workers) {
		queue.Add(w, jobs.Handler[jobs.JiraIssue](func(context.Context, *slog.Logger, jobs.JiraIssue) (jobs.Apply, error) { return nil, nil }))
	})
	issue := []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"PAY-1"}}`)
	if got := s.sendJira(t, "x", issue, webhook.Sign(jiraSecret, issue)); got != http.StatusAccepted {
		t.Fatalf("jira: status %d", got)
	}
	body := []byte(installBody)
	if got := s.send(t, "installation_repositories", "jira-x", body, webhook.Sign(secret, body)); got != http.StatusAccepted {
		t.Fatalf("github jira-x: status %d", got)
	}
	for name, id := range map[string]string{"the Jira namespace": "jira:x", "not UTF-8": "d\xff\xfe", "a space": "a b", "too long": strings.Repeat("a", 129)} {
		if got := s.send(t, "installation_repositories", id, body, webhook.Sign(secret, body)); got != http.StatusBadRequest {
			t.Errorf("GitHub delivery id with %s: status %d, want 400", name, got)
		}
	}
	odd := "j\xff\xfe"
	if got := s.sendJira(t, odd, issue, webhook.Sign(jiraSecret, issue)); got != http.StatusAccepted {
		t.Fatalf("jira with a non-UTF-8 identifier: status %d", got)
	}
	negative := []byte(`{"action":"added","installation":{"id":-7,"account":{"login":"acme","type":"Organization"}},"repositories_added":[]}`)
	if got := s.send(t, "installation_repositories", "neg", negative, webhook.Sign(secret, negative)); got != http.StatusBadRequest {
		t.Errorf("negative installation id: status %d, want 400", got)
	}
	long := []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"` + strings.Repeat("A", 10000) + `-1"}}`)
	if got := s.sendJira(t, "long", long, webhook.Sign(jiraSecret, long)); got != http.StatusBadRequest {
		t.Errorf("a 10,000-character Jira key: status %d, want 400", got)
	}
	ds, err := s.store.Deliveries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, d := range ds {
		ids[d.ID] = true
		if !utf8.ValidString(d.ID) {
			t.Errorf("stored delivery id %q is not UTF-8", d.ID)
		}
	}
	if len(ds) != 3 || !ids["jira:x"] || !ids["jira-x"] {
		t.Errorf("deliveries %v, want jira:x, jira-x and the hashed Jira identifier", ids)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, _ = s.store.Deliveries(t.Context())
		done := 0
		for _, d := range ds {
			if d.Processed == d.Jobs {
				done++
			}
		}
		if done == len(ds) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries never all processed: %+v", ds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FuzzTranslateJira: any Jira body, under any identifier, never panics
// translation; what it accepts keeps its namespaced id, and every job
// names a bounded key.
//
//	go test ./internal/webhook -run '^$' -fuzz FuzzTranslateJira -fuzztime 60s
func FuzzTranslateJira(f *testing.F) {
	f.Add("abc", []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"PAY-1"}}`))
	f.Add("", []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"CHG-42"},"changelog":{"items":[{"field":"Key","fieldtype":"jira","fromString":"PAY-123","toString":"CHG-42"}]}}`))
	f.Add("j\xff", []byte(`{"webhookEvent":"project_created"}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		id := webhook.JiraDeliveryID(header, body)
		if !strings.HasPrefix(id, "jira:") || !utf8.ValidString(id) || len(id) > 133 {
			t.Fatalf("Jira delivery id %q for identifier %q", id, header)
		}
		d, err := webhook.TranslateJira(id, body, time.Unix(0, 0), jira.ParseWebhook)
		if err != nil {
			return
		}
		for _, j := range d.Jobs {
			ji, ok := j.(jobs.JiraIssue)
			if !ok || ji.DeliveryID != id || len(ji.Key) > change.MaxTicketKey {
				t.Fatalf("job %+v", j)
			}
		}
	})
}
