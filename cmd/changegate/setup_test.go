package main

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/jira/jirafake"
	"github.com/changegate/changegate/internal/testenv/chromium"
)

// TestSetupRegistersTheApp: a fresh server without credentials serves
// /setup; the manifest flow stores the App and the server runs as it
// without a restart; a delivery queued before is processed after; /setup
// then answers 404. A wrong state stores nothing.
func TestSetupRegistersTheApp(t *testing.T) {
	t.Parallel()
	gh, jf := newFakes(t, "Approved")
	dataDir := filepath.Join(t.TempDir(), "data")
	srv := serveInProcess(t, map[string]string{"CHANGEGATE_DATA_DIR": dataDir, "CHANGEGATE_LISTEN": "127.0.0.1:0",
		"CHANGEGATE_GITHUB_API_URL": gh.URL(), "CHANGEGATE_JIRA_URL": jf.URL(), "CHANGEGATE_JIRA_USER": jf.User(), "CHANGEGATE_JIRA_TOKEN": jf.Token()})
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string) {
		// Registration restarts the server's wiring on the same socket: a
		// request that meets the old round's shutdown is sent again.
		resp, err := client.Get(srv.base + path)
		for i := 0; err != nil && i < 3; i++ {
			t.Logf("GET %s: %v; again", path, err)
			time.Sleep(200 * time.Millisecond)
			resp, err = client.Get(srv.base + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/setup"); code != http.StatusOK || !strings.Contains(body, "merge_queues") {
		t.Fatalf("GET /setup: %d", code)
	}
	resp, err := client.PostForm(srv.base+"/setup", url.Values{"account": {"organization"}, "org": {"acme"},
		"github": {"https://github.example"}, "public": {srv.base}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`action="https://github.example/organizations/acme/settings/apps/new\?state=([0-9a-f]+)"`).FindStringSubmatch(string(page))
	if m == nil || !strings.Contains(string(page), `name="manifest"`) || !strings.Contains(string(page), "/webhooks/github") {
		t.Fatalf("the manifest page:\n%s", page)
	}
	if code, _ := get("/setup/callback?code=c0de&state=forged"); code != http.StatusBadRequest {
		t.Errorf("a forged state: %d, want 400", code)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "github-app")); err == nil {
		t.Fatal("a forged state stored credentials")
	}

	a, sha := sendEarlyDelivery(t, srv, gh, jf, dataDir)

	gh.AddManifestCode("c0de")
	if code, body := get("/setup/callback?code=c0de&state=" + m[1]); code != http.StatusOK || !strings.Contains(body, "installations/new") {
		t.Fatalf("callback: %d\n%s", code, body)
	}
	if code, _ := get("/setup/callback?code=c0de&state=" + m[1]); code != http.StatusNotFound && code != http.StatusBadRequest {
		t.Errorf("a replayed callback: %d", code)
	}
	eventually(t, "serving as the App", 30*time.Second, func() bool {
		return strings.Contains(srv.logs.String(), `"github_app":true`)
	})
	if code, _ := get("/setup"); code != http.StatusNotFound {
		t.Errorf("/setup after registration: %d, want 404", code)
	}
	eventually(t, "the early delivery's check, as the registered App", 30*time.Second, func() bool { return len(a.conclusionsOn(sha)) > 0 })
	// New deliveries are signed with the App's webhook secret.
	status, err := sendWebhook(t.Context(), a.client, srv.base, []byte(ghfake.ManifestWebhookSecret), "pull_request", "late-1",
		[]byte(strings.ReplaceAll(prEvent("synchronize", 61), sha1, sha)))
	if err != nil || status != http.StatusAccepted {
		t.Errorf("a delivery signed with the App's secret: %d %v", status, err)
	}
	for _, f := range []string{"app-id", "private-key.pem", "webhook-secret"} {
		st, err := os.Stat(filepath.Join(dataDir, "github-app", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
}

// sendEarlyDelivery sends a delivery before the App exists, signed with
// the secret the server generated, and waits until its job waits for the
// credentials. It returns the harness and the pull request's head.
func sendEarlyDelivery(t *testing.T, srv *served, gh *ghfake.Server, jf *jirafake.Server, dataDir string) (*app, string) {
	t.Helper()
	a := &app{gh: gh, jf: jf, base: srv.base, dataDir: dataDir, client: &http.Client{Timeout: 10 * time.Second}, logs: srv.logs}
	sha := strings.Repeat("a", 40)
	a.compliantPR(61, sha)
	early, err := os.ReadFile(filepath.Join(dataDir, "webhook-secret"))
	if err != nil {
		t.Fatal(err)
	}
	status, err := sendWebhook(t.Context(), a.client, srv.base, []byte(strings.TrimSpace(string(early))), "pull_request", "early-1",
		[]byte(strings.ReplaceAll(prEvent("opened", 61), sha1, sha)))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("the early delivery: %d %v", status, err)
	}
	eventually(t, "the early job to wait", 30*time.Second, func() bool { return strings.Contains(srv.logs.String(), "job waits") })
	return a, sha
}

// TestSetupInTheBrowser registers the App as an admin does, in a real
// Chromium: the /setup form, GitHub's confirmation page (the fake's), and
// back to the callback. The server then runs as the App, the delivery
// that came before is processed, and /setup answers 404.
func TestSetupInTheBrowser(t *testing.T) {
	t.Parallel()
	ctx := chromium.Tab(t)
	gh, jf := newFakes(t, "Approved")
	dataDir := filepath.Join(t.TempDir(), "data")
	srv := serveInProcess(t, map[string]string{"CHANGEGATE_DATA_DIR": dataDir, "CHANGEGATE_LISTEN": "127.0.0.1:0",
		"CHANGEGATE_GITHUB_API_URL": gh.URL(), "CHANGEGATE_JIRA_URL": jf.URL(), "CHANGEGATE_JIRA_USER": jf.User(), "CHANGEGATE_JIRA_TOKEN": jf.Token()})
	a, sha := sendEarlyDelivery(t, srv, gh, jf, dataDir)
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	do("open /setup", chromedp.Navigate(srv.base+"/setup"), chromedp.WaitVisible(chromedp.ID("github")))
	chromium.Screenshot(t, ctx, "setup-form")
	do("fill in the form", chromedp.SendKeys(chromedp.CSS(`input[name="org"]`), "acme"),
		chromedp.SetValue(chromedp.ID("github"), strings.TrimSuffix(gh.URL(), "/")),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)), chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "Create the App on GitHub")]`)))
	do("post the manifest to GitHub", chromedp.Click(chromedp.CSS(`button[type="submit"]`)), chromedp.WaitVisible(chromedp.ID("create")))
	hook, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("hook-url")))
	if err != nil || hook != srv.base+"/webhooks/github" {
		t.Errorf("GitHub shows the hook URL %q (%v), want %s/webhooks/github", hook, err, srv.base)
	}
	do("confirm on GitHub", chromedp.Click(chromedp.ID("create")), chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "changegate is registered")]`)))
	chromium.Screenshot(t, ctx, "setup-done")
	link, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.Search(`//a[contains(., "install the App")]`), "href"))
	if err != nil || !strings.HasSuffix(link.Value, "/installations/new") {
		t.Errorf("install link %q (%v)", link.Value, err)
	}
	if apps := gh.CreatedApps(); len(apps) != 1 || apps[0].Org != "acme" || apps[0].Manifest.Permissions["checks"] != "write" {
		t.Errorf("apps created on GitHub: %+v", apps)
	}
	eventually(t, "serving as the App", 30*time.Second, func() bool { return strings.Contains(srv.logs.String(), `"github_app":true`) })
	eventually(t, "the early delivery's check, as the registered App", 30*time.Second, func() bool { return len(a.conclusionsOn(sha)) > 0 })
	if code, _ := getBody(t, srv.base+"/setup"); code != http.StatusNotFound {
		t.Errorf("/setup after registration: %d, want 404", code)
	}
}

// TestServeRefusesAnExposedStoredApp: a data dir whose stored App key is
// readable by others stops the server at start-up, naming the file.
func TestServeRefusesAnExposedStoredApp(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := config.StoreApp(dataDir, 42, string(ghfake.New(t).PrivateKeyPEM()), "s3cret"); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dataDir, config.StoredAppDir, "private-key.pem")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	var errs bytes.Buffer
	env := envMap(map[string]string{"CHANGEGATE_DATA_DIR": dataDir, "CHANGEGATE_LISTEN": "127.0.0.1:0"})
	if code := run(t.Context(), []string{"serve"}, env, &bytes.Buffer{}, &errs); code == 0 || !strings.Contains(errs.String(), key) {
		t.Errorf("serve with an exposed stored key: exit %d: %s", code, errs.String())
	}
}
