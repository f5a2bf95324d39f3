package web

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/testenv/chromium"
)

// TestBrowser walks the auditor's path in a real browser: sign in, filter
// the population, open a record, draw a sample and verify its package.
func TestBrowser(t *testing.T) {
	t.Parallel()
	ctx := chromium.Tab(t)
	f := newFixture(t, nil)
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	do("open the dashboard", chromedp.Navigate(f.srv.URL+"/audit/"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/audit/login") {
		t.Fatalf("without a session the dashboard went to %s", loc)
	}
	chromium.Screenshot(t, ctx, "login")
	do("sign in", chromedp.SendKeys(chromedp.ID("token"), f.tokens["alice@audit-firm.example"]),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.CSS(".stat")))
	if s := text(".who"); !strings.Contains(s, "alice@audit-firm.example") {
		t.Fatalf("signed in as %q", s)
	}
	chromium.Screenshot(t, ctx, "dashboard")

	do("filter the population", chromedp.Navigate(f.srv.URL+"/audit/changes"), chromedp.WaitVisible(chromedp.ID("filter")),
		chromedp.SetValue(chromedp.ID("from"), "2026-02-01"), chromedp.SetValue(chromedp.ID("to"), "2026-03-01"),
		chromedp.Click(chromedp.CSS(`input[value="bypass"]`)), chromedp.Click(chromedp.ID("filter")),
		chromedp.WaitVisible(chromedp.Search(`//span[contains(., "Records 1–1 of 1")]`)))
	if s := text("#population tbody"); !strings.Contains(s, "acme/web #104") {
		t.Fatalf("filtered population: %q", s)
	}
	chromium.Screenshot(t, ctx, "population")

	do("open the record", chromedp.Click(chromedp.CSS("a.rec")), chromedp.WaitVisible(chromedp.CSS(".cg-record")))
	if s := text(".cg-record"); !strings.Contains(s, "PAY-104") || !strings.Contains(s, "bypass") {
		t.Fatalf("record page: %q", s)
	}
	chromium.Screenshot(t, ctx, "record")

	zip := drawSample(t, ctx, f, do)
	report, err := audit.VerifyPackage(bytes.NewReader(zip), int64(len(zip)), audit.TrustedKey{Public: f.pub})
	if err != nil {
		t.Fatalf("the downloaded package does not verify: %v", err)
	}
	if report.Records < 3 || report.Checkpoint.Size != 8 {
		t.Errorf("package report %+v", report)
	}
}

// drawSample fills the sample form and returns the package the browser
// downloaded.
func drawSample(t *testing.T, ctx context.Context, f *fixture, do func(string, ...chromedp.Action[chromedp.Void])) []byte {
	t.Helper()
	dir := t.TempDir()
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &on}); err != nil {
		t.Fatalf("download behaviour: %v", err)
	}
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	do("fill the sample form", chromedp.Navigate(f.srv.URL+"/audit/sample"), chromedp.WaitVisible(chromedp.ID("draw")),
		chromedp.SetValue(chromedp.ID("from"), "2026-01-01"), chromedp.SetValue(chromedp.ID("to"), "2026-04-01"),
		chromedp.SendKeys(chromedp.ID("size"), "3"), chromedp.SendKeys(chromedp.ID("seed"), "fy2026"),
		chromedp.Click(chromedp.ID("exceptions")))
	chromium.Screenshot(t, ctx, "sample")
	do("draw the sample", chromedp.Click(chromedp.ID("draw")))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCanceled:
			t.Fatal("the download was canceled")
		case browser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatal("no download")
	return nil
}
