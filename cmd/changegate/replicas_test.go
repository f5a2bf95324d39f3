package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/changegate/changegate/internal/blob/s3"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/testenv"
)

// TestReplicaKillSuite runs three replicas of the real binary on one
// PostgreSQL database and one S3 bucket (versitygw), behind a "load
// balancer": each delivery goes to the next replica, and to another one
// when that one does not acknowledge it. Deliveries evaluate pull
// requests, add repositories, and push directly to main (each push is a
// record, so the replicas append to the ledger all along). Mid-run one
// replica is killed with SIGKILL and restarted, and later another one is
// killed while it holds the ledger's writer lock. At the end every
// acknowledged delivery is stored once and processed exactly once, every
// check is right, every push is one record, and the ledger verifies.
//
// CI runs 900 deliveries; more with CHANGEGATE_REPLICA_DELIVERIES.
func TestReplicaKillSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped in -short mode")
	}
	t.Parallel()
	dbURL, evidenceURL := testenv.PostgresDatabase(t), testenv.S3Evidence(t)
	total := envInt("CHANGEGATE_REPLICA_DELIVERIES", 900)
	gh, jf := newFakes(t, "Approved")
	a := &app{gh: gh, jf: jf}
	const prs = 12
	heads := map[int]string{}
	for i := range prs {
		n, sha := 500+i, fmt.Sprintf("%040x", 0xd000+i)
		heads[n] = sha
		if i%2 == 0 {
			a.compliantPR(n, sha)
		} else {
			a.unreviewedPR(n, sha)
		}
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	env := append(fakesEnv(t, dir, gh, jf), "CHANGEGATE_JIRA_WEBHOOK_SECRET="+jiraSecret, "CHANGEGATE_RECONCILE_GRACE=0")
	// Every replica signs with the one ledger key, as a Kubernetes Secret
	// would give them.
	signingKey := filepath.Join(dir, "signing-key.pem")
	key, _, err := evidence.LoadOrCreateKey(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := evidence.NewSigner(key)

	start := func(r int) *binServer {
		u, _ := url.Parse(dbURL)
		q := u.Query()
		q.Set("application_name", fmt.Sprintf("replica-%d", r))
		u.RawQuery = q.Encode()
		return startBinary(t, bin, filepath.Join(dir, fmt.Sprintf("data-%d", r)), []byte(ghSecret), append(slices.Clip(env),
			"CHANGEGATE_DATABASE_URL="+u.String(), "CHANGEGATE_EVIDENCE_URL="+evidenceURL, "CHANGEGATE_SIGNING_KEY_FILE="+signingKey)...)
	}
	var replicas [3]atomic.Pointer[binServer]
	for r := range replicas {
		replicas[r].Store(start(r))
	}

	pushes := 0
	body := func(i int) (string, []byte) {
		switch i % 8 {
		case 0:
			n := 500 + (i/8)%prs
			return "pull_request", []byte(strings.ReplaceAll(strings.ReplaceAll(prEvent("synchronize", 51), sha1, heads[n]), `"number":51`, fmt.Sprintf(`"number":%d`, n)))
		case 4:
			sha := fmt.Sprintf("%040x", 0xe00000+i)
			return "push", fmt.Appendf(nil, `{"ref":"refs/heads/main","before":"%040d","after":%q,"commits":[{"id":%q}],`+
				`"pusher":{"name":"mallory"},"repository":{"full_name":"acme/api","default_branch":"main"},"installation":{"id":42}}`, i, sha, sha)
		}
		return "installation_repositories", repoAddedBody(42, int64(200000+i), fmt.Sprintf("acme/s%05d", i))
	}
	for i := range total {
		if i%8 == 4 {
			pushes++
		}
	}
	var acked atomic.Int64
	began := time.Now()
	wait := resender(t, total, 12, "rep", body, func(i, attempt int) string { return replicas[(i+attempt)%len(replicas)].Load().base }, &acked)
	kill := func(r int, why string) {
		s := replicas[r].Load()
		if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.wait()
		t.Logf("SIGKILL replica %d %s, after %d acknowledged deliveries", r, why, acked.Load())
		replicas[r].Store(start(r))
	}
	waitAcked := func(n int64) {
		for acked.Load() < n && time.Since(began) < 10*time.Minute {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAcked(int64(total) / 3)
	kill(0, "mid-run")
	waitAcked(int64(total) / 2)
	holder := lockHolder(t, dbURL, 0, 30*time.Second)
	kill(holder, "while it holds the ledger lock")
	wait()
	t.Logf("%d deliveries acknowledged by 3 replicas, 2 killed, in %s", acked.Load(), time.Since(began).Round(time.Millisecond))

	pg := openPG(t, dbURL)
	// A killed replica's running jobs are rescued once it is seen dead
	// (30 s), so this waits longer than the single-node suite.
	waitIdlePG(t, pg, 3*time.Minute)
	ds, err := pg.Deliveries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, d := range ds {
		if strings.HasPrefix(d.ID, "rep-") {
			stored++
		}
		if d.Processed != d.Jobs || d.Jobs != 1 {
			t.Errorf("delivery %s: %d of %d jobs processed, want 1 of 1", d.ID, d.Processed, d.Jobs)
		}
	}
	if stored != total {
		t.Errorf("%d deliveries stored, want %d", stored, total)
	}
	for n, sha := range heads {
		want := "success"
		if (n-500)%2 == 1 {
			want = "failure"
		}
		if w := a.conclusionsOn(sha); len(w) == 0 || w[len(w)-1] != want {
			t.Errorf("#%d: checks written %v, want the last %s", n, w, want)
		}
	}
	blobs, err := s3.Open(t.Context(), evidenceURL, s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evidence.Verify(ledger.Source(t.Context(), blobs, pg.Ledger().Rows), signer.Public(), LedgerOrigin(signer.Public()))
	if err != nil {
		t.Fatalf("the ledger does not verify: %v", err)
	}
	if rep.Records != int64(pushes) {
		t.Errorf("the ledger holds %d records, want one per push: %d", rep.Records, pushes)
	}
	t.Logf("ledger: %d records in %d checkpoints, verified", rep.Records, rep.Checkpoints)
}

// lockHolder waits until a replica other than not holds the ledger's
// writer lock and returns which, from the application name of the session
// that holds it.
func lockHolder(t *testing.T, dbURL string, not int, within time.Duration) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var name string
		err := conn.QueryRow(t.Context(), `
			SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2`,
			uint32(postgres.LedgerLockKey>>32), uint32(postgres.LedgerLockKey&0xffffffff)).Scan(&name)
		var r int
		if err == nil {
			if _, err := fmt.Sscanf(name, "replica-%d", &r); err == nil && r != not {
				return r
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no replica took the ledger lock within %s", within)
	return 0
}
