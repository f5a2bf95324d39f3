// Package chromium gives browser tests a headless Chromium: the binary
// that CHANGEGATE_TEST_CHROMIUM names, which .ci/run installs.
package chromium

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Tab starts a headless Chromium for one test and returns its first tab,
// or skips the test when CHANGEGATE_TEST_CHROMIUM does not name one.
func Tab(t testing.TB) context.Context {
	t.Helper()
	bin := os.Getenv("CHANGEGATE_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("CHANGEGATE_TEST_CHROMIUM is not set (the path of a Chromium binary): skipping the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Screenshot saves the page as NAME.png under $CHANGEGATE_SCREENSHOTS,
// when that is set, for a person to look at.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CHANGEGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
