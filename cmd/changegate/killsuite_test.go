package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestKillNineSuite sends signed deliveries to the real binary from many
// clients and kills it with SIGKILL at random moments, restarting it each
// time; a delivery that was not acknowledged is sent again, as GitHub's
// redelivery (or changegate's sweep) would. At the end every acknowledged
// delivery was processed exactly once, every check is right against the
// fake, and the ledger verifies. CI runs it with
// CHANGEGATE_KILL_DELIVERIES=2000 and CHANGEGATE_KILL_COUNT=3 (the
// defaults); the full run is 10,000 and 10:
//
//	CHANGEGATE_KILL_DELIVERIES=10000 CHANGEGATE_KILL_COUNT=10 go test ./cmd/changegate -run TestKillNineSuite -v -timeout 30m
func TestKillNineSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped in -short mode")
	}
	t.Parallel()
	total, kills := envInt("CHANGEGATE_KILL_DELIVERIES", 2000), envInt("CHANGEGATE_KILL_COUNT", 3)
	gh, jf := newFakes(t, "Approved")
	a := &app{gh: gh, jf: jf}
	const prs = 20
	heads := map[int]string{}
	for i := range prs {
		n, sha := 300+i, fmt.Sprintf("%040x", 0xc000+i)
		heads[n] = sha
		if i%2 == 0 {
			a.compliantPR(n, sha)
			continue
		}
		a.unreviewedPR(n, sha)
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	dataDir := filepath.Join(dir, "data")
	env := append(fakesEnv(t, dir, gh, jf), "CHANGEGATE_JIRA_WEBHOOK_SECRET="+jiraSecret, "CHANGEGATE_RECONCILE_GRACE=0")
	start := func() *binServer { return startBinary(t, bin, dataDir, []byte(ghSecret), env...) }
	var srv atomic.Pointer[binServer]
	srv.Store(start())

	body := func(i int) (string, []byte) {
		if i%8 == 0 {
			n := 300 + (i/8)%prs
			return "pull_request", []byte(strings.ReplaceAll(strings.ReplaceAll(prEvent("synchronize", 51), sha1, heads[n]), `"number":51`, fmt.Sprintf(`"number":%d`, n)))
		}
		return "installation_repositories", repoAddedBody(42, int64(100000+i), fmt.Sprintf("acme/r%05d", i))
	}
	var acked atomic.Int64
	began := time.Now()
	wait := resender(t, total, 16, "kill", body, func(int, int) string { return srv.Load().base }, &acked)
	// The killer: SIGKILL after a random share of each stretch of
	// deliveries, then restart on the same data dir.
	for k := 1; k <= kills; k++ {
		at := int64(total) * int64(k) / int64(kills+1)
		at += rand.Int64N(int64(total)/int64(4*(kills+1)) + 1)
		for acked.Load() < at {
			time.Sleep(5 * time.Millisecond)
		}
		s := srv.Load()
		if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.wait()
		t.Logf("kill %d: SIGKILL after %d acknowledged deliveries", k, acked.Load())
		srv.Store(start())
	}
	wait()
	t.Logf("%d deliveries acknowledged across %d kills in %s", acked.Load(), kills, time.Since(began).Round(time.Millisecond))

	db := openReadOnly(t, dataDir)
	eventually(t, "every delivery processed", 5*time.Minute, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE processed < jobs OR dispatched = 0`) == 0
	})
	if n := queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE id LIKE 'kill-%'`); n != total {
		t.Errorf("%d deliveries stored, want %d", n, total)
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE processed != jobs OR jobs != 1`); n != 0 {
		t.Errorf("%d deliveries not processed exactly once", n)
	}
	for n, sha := range heads {
		want := "success"
		if (n-300)%2 == 1 {
			want = "failure"
		}
		if w := a.conclusionsOn(sha); len(w) == 0 || w[len(w)-1] != want {
			t.Errorf("#%d: checks written %v, want the last %s", n, w, want)
		}
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM repositories WHERE installation_id = 42 AND full_name LIKE 'acme/r%'`); n != total-(total+7)/8 {
		t.Errorf("%d repositories added, want %d", n, total-(total+7)/8)
	}
	var verify strings.Builder
	if code := run(t.Context(), []string{"audit", "verify", "--data-dir", dataDir}, envMap(nil), &verify, &verify); code != 0 {
		t.Errorf("audit verify: %s", verify.String())
	}
}

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
