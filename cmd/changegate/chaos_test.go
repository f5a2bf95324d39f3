package main

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/testenv/chaos"
)

// TestChaos runs three compliant and three non-compliant pull requests
// while the
// fake GitHub and the fake Jira inject one kind of fault into 15% of
// their answers: server errors, secondary limits, 429s, primary limits,
// 2 s latency, connection resets, truncated JSON. Under each, both checks
// end right; the non-compliant one is never success and the compliant one
// never failure (every write is recorded); and the requests stay within a
// small multiple of the fault-free run (no retry storm).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lifecycle under seven kinds of fault; skipped in -short mode")
	}
	t.Parallel()
	base := chaosRun(t, chaos.Config{})
	for _, kind := range chaos.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			got := chaosRun(t, chaos.Config{Kind: kind, Fraction: 0.15, Seed: 7})
			t.Logf("%s: %d GitHub and %d Jira requests (fault-free: %d and %d), %d faults injected, %s to the right checks",
				kind, got.github, got.jira, base.github, base.jira, got.injected, got.took.Round(time.Millisecond))
			if got.github > 6*base.github+20 || got.jira > 6*base.jira+20 {
				t.Errorf("%s: %d GitHub and %d Jira requests against %d and %d without faults: a retry storm", kind, got.github, got.jira, base.github, base.jira)
			}
		})
	}
}

type chaosResult struct {
	github, jira, injected int
	took                   time.Duration
}

// chaosRun is one lifecycle of two pull requests under c.
func chaosRun(t *testing.T, c chaos.Config) chaosResult {
	t.Helper()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	var good, bad []string
	for i := range 3 {
		g, b := fmt.Sprintf("%040x", 0x6000+i), fmt.Sprintf("%040x", 0x7000+i)
		a.compliantPR(61+i, g)
		a.unreviewedPR(71+i, b)
		good, bad = append(good, g), append(bad, b)
	}
	a.gh.SetChaos(c)
	a.jf.SetChaos(c)
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(a.logs.String(), "\n") {
				if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
					t.Log(l)
				}
			}
		}
	})
	for i := range 3 {
		for n, sha := range map[int]string{61 + i: good[i], 71 + i: bad[i]} {
			a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, sha), `"number":51`, fmt.Sprintf(`"number":%d`, n)))
		}
	}
	last := func(sha string) string {
		w := a.conclusionsOn(sha)
		if len(w) == 0 {
			return ""
		}
		return w[len(w)-1]
	}
	eventually(t, fmt.Sprintf("%s: the right checks", cmp.Or(string(c.Kind), "no fault")), 240*time.Second, func() bool {
		for i := range 3 {
			if last(good[i]) != "success" || last(bad[i]) != "failure" {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	waitIdle(t, a)
	for i := range 3 {
		if w := a.conclusionsOn(bad[i]); slices.Contains(w, "success") {
			t.Errorf("%s: a non-compliant pull request was written success: %v", c.Kind, w)
		}
		if w := a.conclusionsOn(good[i]); slices.Contains(w, "failure") {
			t.Errorf("%s: a compliant pull request was written failure: %v", c.Kind, w)
		}
	}
	return chaosResult{github: len(a.gh.Calls()), jira: len(a.jf.Calls()), injected: a.gh.ChaosInjected() + a.jf.ChaosInjected(), took: took}
}

// TestSecondaryLimitSurvivesRestart: a secondary rate limit longer than
// the in-passing wait snoozes the evaluation in the queue until its
// Retry-After; a restart in between does not bring the request forward,
// and the check is written once the wait is over.
func TestSecondaryLimitSurvivesRestart(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	sha := strings.Repeat("9", 40)
	a.compliantPR(91, sha)
	pr := ghfake.MatchRoute("GET /repos/{owner}/{repo}/pulls/{pull_number}")
	const wait = 8 * time.Second
	a.gh.FailNext(pr, 1, http.StatusForbidden, http.Header{"Retry-After": {"8"}}, ghfake.SecondaryRateLimitBody)
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, sha), `"number":51`, `"number":91`))
	route := "/repos/{owner}/{repo}/pulls/{pull_number}"
	eventually(t, "the limited read", 30*time.Second, func() bool { return a.gh.CountCalls("GET", route) >= 1 })
	limited := time.Now()
	// Stop once the wait is in the queue: a stop while the job still
	// handles the answer cancels it, and it runs again at the next start.
	eventually(t, "the job to wait", 30*time.Second, func() bool { return strings.Contains(a.logs.String(), `"msg":"job waits"`) })
	if code := a.stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	again := serveInProcess(t, a.env)
	eventually(t, "the check after the wait", 60*time.Second, func() bool {
		w := a.conclusionsOn(sha)
		return len(w) > 0 && w[len(w)-1] == "success"
	})
	if n := a.gh.CountCalls("GET", route); n != 2 {
		t.Errorf("%d reads of the pull request, want the limited one and one after the wait", n)
	}
	if waited := time.Since(limited); waited < wait-time.Second {
		t.Errorf("the check was written %s after the limit, before its Retry-After of %s", waited, wait)
	}
	if t.Failed() {
		t.Log(a.logs.String())
		t.Log(again.logs.String())
	}
}
