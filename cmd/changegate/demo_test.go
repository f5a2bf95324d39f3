package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/testenv"
)

// TestDemo runs `changegate demo` as a newcomer does: every scene plays,
// the audit UI serves the records with the printed token until Ctrl-C,
// the exit code is 0, and the data dir it leaves passes audit verify.
func TestDemo(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "demo")
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	var out, errOut testenv.SyncBuffer
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, []string{"demo", "--data-dir", dataDir}, envMap(nil), &out, &errOut) }()
	select {
	case code := <-exit:
		t.Fatalf("demo exited %d before serving:\n%s\n%s", code, out.String(), errOut.String())
	case <-waitFor(func() bool { return strings.Contains(out.String(), "until Ctrl-C") }, 2*time.Minute):
	}
	text := out.String()
	t.Logf("demo output:\n%s", text)
	mustContain(t, text,
		"check on #1: ✗ 0 of 4 controls met: ticket, review, staging and manager approval missing",
		"check on #1: ✓ 4 of 4 controls met",
		"erin approved but authored commit",
		"check on #2: ✗ 2 of 4 controls met: staging and manager approval missing",
		"bypass #3, not compliant, exception bypass (open)",
		"check on #4: ✓ Emergency change: ticket and review met; manager approval due within 48h",
		"emergency #4, compliant, exception emergency (closed)",
		"direct_push, not compliant, exception direct_push (open)",
		"gate: approved: changegate approves deploying",
		"gate: rejected: changegate rejects deploying",
		"deployment to production, compliant",
		"ok: 6 records")

	ui := regexp.MustCompile(`audit UI: +(http://\S+)/audit/`).FindStringSubmatch(text)
	token := regexp.MustCompile(`auditor token: (cgat_\S+)`).FindStringSubmatch(text)
	if ui == nil || token == nil {
		t.Fatalf("no audit UI URL or token printed")
	}
	signIn(t, ui[1], token[1])

	interrupt() // Ctrl-C
	if code := <-exit; code != 0 {
		t.Fatalf("demo exit code %d: %s", code, errOut.String())
	}
	var verify bytes.Buffer
	if code := run(t.Context(), []string{"audit", "verify", "--data-dir", dataDir}, envMap(nil), &verify, &verify); code != 0 ||
		!strings.HasPrefix(verify.String(), "ok: 6 records") {
		t.Errorf("audit verify of the demo's data dir: exit %d: %s", code, verify.String())
	}
}

// signIn signs in to the audit UI with token and opens the population.
func signIn(t *testing.T, base, token string) {
	t.Helper()
	day := time.Now().UTC()
	page := uiPage(t, base, token, "/audit/changes?from="+day.Format(time.DateOnly)+"&to="+day.AddDate(0, 0, 1).Format(time.DateOnly))
	if !strings.Contains(page, "acme/payments #3") {
		t.Errorf("the population page:\n%.2000s", page)
	}
}

func waitFor(cond func() bool, timeout time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		deadline := time.Now().Add(timeout)
		for !cond() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}

// TestDemoRefusesAUsedDataDir: a data dir that holds anything is refused
// with exit 2, and nothing is written into it.
func TestDemoRefusesAUsedDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(t.Context(), []string{"demo", "--exit", "--data-dir", dir}, envMap(nil), &out, &out); code != 2 ||
		!strings.Contains(out.String(), "is not empty") {
		t.Errorf("exit %d: %s", code, out.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the demo wrote into a used data dir: %v", entries)
	}
	if code := run(t.Context(), []string{"demo", "--bogus"}, envMap(nil), &out, &out); code != 2 {
		t.Errorf("a bad flag: exit %d", code)
	}
}
