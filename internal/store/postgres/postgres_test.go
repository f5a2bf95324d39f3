package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/store/storetest"
	"github.com/changegate/changegate/internal/testenv"
)

// open opens the store on a fresh database of the test server.
func open(t *testing.T) *postgres.DB {
	t.Helper()
	return open0(t, testenv.PostgresDatabase(t), postgres.Options{})
}

// TestConformance runs the store conformance suite on PostgreSQL.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}

// TestMigrationsRace: replicas starting together migrate one at a time,
// under the advisory lock, and all come up.
func TestMigrationsRace(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), url, postgres.Options{})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}

// TestOpenRefusesBadURLs: a URL that does not parse, or names a server
// that does not answer, is refused, with the password masked.
func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://cg:s3cr3t-pw@127.0.0.1:1/changegate?sslmode=disable&connect_timeout=2",
		"postgres://cg:s3cr3t-pw@127.0.0.1:notaport/changegate",
		"postgres://cg:s3cr3t-pw@127.0.0.1/changegate?pool_max_conns=lots",
	} {
		ctx, cancel := context.WithCancel(t.Context())
		_, err := postgres.Open(ctx, url, postgres.Options{})
		cancel()
		if err == nil {
			t.Errorf("%s: opened", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "database") {
			t.Errorf("the error does not say what failed: %v", err)
		}
	}
}

// TestLedgerConformance runs the ledger index and audit query suite on
// PostgreSQL.
func TestLedgerConformance(t *testing.T) {
	t.Parallel()
	storetest.RunLedger(t, func(t *testing.T) (storetest.LedgerIndex, storetest.LedgerReader) {
		s := open(t)
		return s.Ledger(), s.LedgerReader()
	})
}

// TestCompletenessConformance runs the suite of the rest of the store.
func TestCompletenessConformance(t *testing.T) {
	t.Parallel()
	storetest.RunCompleteness(t, func(t *testing.T) storetest.Completeness { return open(t) })
}

type orphanArgs struct{ N int }

func (orphanArgs) Kind() string { return "orphan" }

// TestRescueAbandonedJobs: a job left running by a replica that stopped
// saying it is alive is made available again; one a live replica runs is
// left alone.
func TestRescueAbandonedJobs(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	client, err := river.NewClient(riverpgxv5.New(s.Pool()), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 2 {
		if _, err := client.Insert(ctx, orphanArgs{N: n}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The first runs on a replica that died, the second on a live one.
	if _, err := s.Pool().Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1,
		attempted_by = CASE WHEN (args->>'N')::int = 0 THEN ARRAY['dead'] ELSE ARRAY['dead', 'live'] END`); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dead", "live"} {
		if err := s.Heartbeat(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.RescueAbandonedJobs(ctx, "other", 30*time.Second); err != nil || n != 0 {
		t.Fatalf("with both alive: rescued %d, %v", n, err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE replicas SET seen_at = now() - interval '1 minute' WHERE id = 'dead'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RescueAbandonedJobs(ctx, "dead", 30*time.Second); err != nil || n != 0 {
		t.Fatalf("the dead replica itself rescued %d, %v; a replica never rescues its own", n, err)
	}
	if n, err := s.RescueAbandonedJobs(ctx, "other", 30*time.Second); err != nil || n != 1 {
		t.Fatalf("rescued %d, %v; want the dead replica's one job", n, err)
	}
	states, err := s.JobStates(ctx)
	if err != nil || states["available"] != 1 || states["running"] != 1 {
		t.Errorf("states after the rescue: %v %v", states, err)
	}

	// The live replica's job: while its workers run it, or while it is
	// young, it stays; once neither, the replica itself rescues it (its
	// end was not recorded, say in an outage).
	var id int64
	if err := s.Pool().QueryRow(ctx, `UPDATE river_job SET attempted_at = now() - interval '1 minute' WHERE state = 'running' RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RescueOwnJobs(ctx, "live", []int64{id}, 30*time.Second); err != nil || n != 0 {
		t.Errorf("a job its workers run: rescued %d, %v", n, err)
	}
	if n, err := s.RescueOwnJobs(ctx, "live", nil, 2*time.Minute); err != nil || n != 0 {
		t.Errorf("a job younger than the bound: rescued %d, %v", n, err)
	}
	if n, err := s.RescueOwnJobs(ctx, "live", nil, 30*time.Second); err != nil || n != 1 {
		t.Errorf("a job the database shows running and nobody runs: rescued %d, %v, want 1", n, err)
	}
}

// TestReadOnlyOpen: an auditor's read-only opener refuses a database no
// server has migrated, reads one that is, with a role that may only
// SELECT, and writes nothing.
func TestReadOnlyOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.PostgresDatabase(t)
	if _, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "no changegate schema") {
		t.Fatalf("read-only open of an empty database: %v, want it refused as holding no schema", err)
	}
	s := open0(t, url, postgres.Options{})
	role := "auditor_" + strings.TrimPrefix(strings.Split(url[strings.LastIndex(url, "/")+1:], "?")[0], "cg_test_")
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + role,
	} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		s.Pool().Exec(context.Background(), "DROP OWNED BY "+role)
		s.Pool().Exec(context.Background(), "DROP ROLE "+role)
	})
	auditorURL := strings.Replace(url, "://postgres@", "://"+role+"@", 1)
	if auditorURL == url {
		t.Skipf("the test server's URL %s does not name the postgres user", url)
	}
	ro := open0(t, auditorURL, postgres.Options{ReadOnly: true})
	if n, err := ro.LedgerReader().Size(ctx); err != nil || n != 0 {
		t.Fatalf("read the ledger size: %d, %v", n, err)
	}
	if _, err := ro.Pool().Exec(ctx, `DELETE FROM deliveries`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write through the read-only opener: %v, want it refused as read-only", err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE goose_db_version SET is_applied = false WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "schema is at version") {
		t.Errorf("read-only open of an older schema: %v, want it refused naming the versions", err)
	}
}

// open0 opens url with o, closed with the test.
func open0(t *testing.T, url string, o postgres.Options) *postgres.DB {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLiveReplicas: a replica that beats is alive until it retires.
func TestLiveReplicas(t *testing.T) {
	t.Parallel()
	s, ctx := open(t), t.Context()
	for _, id := range []string{"b", "a"} {
		if err := s.Heartbeat(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Retire(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	live, err := s.LiveReplicas(ctx, time.Minute)
	if err != nil || strings.Join(live, ",") != "b" {
		t.Errorf("live replicas %v, %v; want b", live, err)
	}
	if live, _ := s.LiveReplicas(ctx, 0); len(live) != 0 {
		t.Errorf("replicas seen within no time: %v", live)
	}
}

// TestSerial: a key's lock, held by one replica, makes another wait until
// it is released; other keys do not wait; a wait given up leaves no lock
// behind.
func TestSerial(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDatabase(t)
	a, b := open0(t, url, postgres.Options{}), open0(t, url, postgres.Options{})
	ctx := t.Context()
	unlockA, err := a.Serial().Lock(ctx, "acme/api#1")
	if err != nil {
		t.Fatal(err)
	}
	waiting := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var w int
			if err := a.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&w); err != nil {
				t.Fatal(err)
			}
			if w == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions wait for an advisory lock, want %d", w, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	got := make(chan func(), 1)
	go func() {
		unlock, err := b.Serial().Lock(ctx, "acme/api#1")
		if err != nil {
			t.Error(err)
			unlock = func() {}
		}
		got <- unlock
	}()
	waiting(1)
	if unlock2, err := b.Serial().Lock(ctx, "acme/api#2"); err != nil {
		t.Fatalf("another key: %v", err)
	} else {
		unlock2()
	}
	select {
	case <-got:
		t.Fatal("the second replica took the lock the first holds")
	default:
	}
	unlockA()
	unlockB := <-got

	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := a.Serial().Lock(cctx, "acme/api#1")
		gaveUp <- err
	}()
	waiting(1)
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("a cancelled wait took the lock")
	}
	unlockB()
	tctx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	unlock, err := b.Serial().Lock(tctx, "acme/api#1")
	if err != nil {
		t.Fatalf("the lock after a cancelled wait: %v (left held?)", err)
	}
	unlock()
}
