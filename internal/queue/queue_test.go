package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/testenv"
)

// testJob drives the queue through its failure modes.
type testJob struct {
	DeliveryID string `json:"delivery_id"`
	Mode       string `json:"mode"`
}

func (testJob) Kind() string               { return "test_job" }
func (j testJob) DeliveryRef() string      { return j.DeliveryID }
func (j testJob) LogAttrs() []slog.Attr    { return []slog.Attr{slog.String("mode", j.Mode)} }
func (j testJob) job() jobs.Job            { return j }
func (j testJob) delivery() *jobs.Delivery { return deliveryOf(j.DeliveryID, j) }

func deliveryOf(id string, js ...jobs.Job) *jobs.Delivery {
	return &jobs.Delivery{ID: id, Event: "test", ReceivedAt: time.Now(), Jobs: js}
}

type errRetryable struct{ delay time.Duration }

func (e errRetryable) Error() string { return fmt.Sprintf("rate limited for %v", e.delay) }

var errPermanent = errors.New("permanent")

type harness struct {
	store  harnessStore
	q      *queue.Queue
	reg    *prometheus.Registry
	mu     sync.Mutex
	runs   map[string]int
	writes atomic.Int64
}

// harnessStore is a store as the tests read it back.
type harnessStore interface {
	queue.Store
	Deliveries(ctx context.Context) ([]store.Delivery, error)
	Close() error
}

// backends are the stores the queue runs on: each test runs on both (on
// PostgreSQL when CHANGEGATE_TEST_DATABASE_URL names a server).
var backends = []string{"sqlite", "postgres"}

func eachBackend(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range backends {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			test(t, kind)
		})
	}
}

// openBackend opens an empty store of kind and River's driver on it.
func openBackend(t *testing.T, kind string) (harnessStore, *queue.Backend) {
	t.Helper()
	if kind == "postgres" {
		pg, err := postgres.Open(t.Context(), testenv.PostgresDatabase(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return pg, queue.NewBackend(riverpgxv5.New(pg.Pool()), pg)
	}
	s, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	return s, queue.NewBackend(riversqlite.New(s.SQL()), s)
}

func newHarness(t *testing.T, kind string, cfg queue.Config) *harness {
	t.Helper()
	ctx := t.Context()
	store, backend := openBackend(t, kind)
	h := &harness{store: store, reg: prometheus.NewRegistry(), runs: map[string]int{}}
	w := queue.NewWorkers()
	queue.Add(w, jobs.Handler[testJob](func(ctx context.Context, log *slog.Logger, j testJob) (jobs.Apply, error) {
		h.mu.Lock()
		h.runs[j.DeliveryID]++
		n := h.runs[j.DeliveryID]
		h.mu.Unlock()
		switch j.Mode {
		case "panic-once":
			if n == 1 {
				panic("boom")
			}
		case "fail-always":
			return nil, errors.New("GitHub said 502")
		case "permanent":
			return nil, errPermanent
		case "ratelimit-once":
			if n == 1 {
				return nil, errRetryable{delay: 500 * time.Millisecond}
			}
		}
		return func(ctx context.Context, tx jobs.Tx) error {
			if j.Mode == "commit-fails-once" && n == 1 {
				// An error Classify calls permanent, from the commit: a
				// deadlock, say. It must not cancel the job.
				return errPermanent
			}
			h.writes.Add(1)
			return nil
		}, nil
	}))
	cfg.Registerer = h.reg
	cfg.Classify = func(err error, _ time.Time) (time.Duration, bool) {
		var rl errRetryable
		if errors.As(err, &rl) {
			return rl.delay, true
		}
		return 0, !errors.Is(err, errPermanent)
	}
	q, err := queue.New(backend, w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h.q = q
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(sctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		store.Close()
	})
	return h
}

func (h *harness) deliveries(t *testing.T) map[string]store.Delivery {
	t.Helper()
	ds, err := h.store.Deliveries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Delivery{}
	for _, d := range ds {
		out[d.ID] = d
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDuplicateDeliveryProcessedOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, kind string) {
		h := newHarness(t, kind, queue.Config{Workers: 4})
		d := testJob{DeliveryID: "dup-1", Mode: "ok"}
		var dups int
		for range 5 {
			dup, err := h.q.Enqueue(t.Context(), d.delivery())
			if err != nil {
				t.Fatal(err)
			}
			if dup {
				dups++
			}
		}
		if dups != 4 {
			t.Errorf("duplicates = %d, want 4", dups)
		}
		waitFor(t, "processing", func() bool { return h.deliveries(t)["dup-1"].Processed == 1 })
		// Give a second run the chance to happen, then check it did not.
		time.Sleep(300 * time.Millisecond)
		if got := h.deliveries(t)["dup-1"]; got.Processed != 1 || got.Jobs != 1 {
			t.Errorf("delivery = %+v, want one job processed once", got)
		}
		if got := h.writes.Load(); got != 1 {
			t.Errorf("effects applied %d times, want 1", got)
		}
	})
}

func TestConcurrentEnqueueGroupCommits(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, kind string) {
		h := newHarness(t, kind, queue.Config{Workers: 4})
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				// Every delivery twice, concurrently: each must be stored once.
				j := testJob{DeliveryID: fmt.Sprintf("c-%d", i%(n/2)), Mode: "ok"}
				if _, err := h.q.Enqueue(t.Context(), j.delivery()); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		waitFor(t, "all processed", func() bool {
			ds := h.deliveries(t)
			if len(ds) != n/2 {
				return false
			}
			for _, d := range ds {
				if d.Processed != 1 {
					return false
				}
			}
			return true
		})
		if got := h.writes.Load(); got != n/2 {
			t.Errorf("effects applied %d times, want %d", got, n/2)
		}
		if c := testutil.CollectAndCount(h.reg, "changegate_intake_batch_size"); c != 1 {
			t.Errorf("batch size histogram missing")
		}
	})
}

// TestFailedCommitIsRetried: an error from the job's commit, which rolled
// back, retries the job whatever Classify would call it.
func TestFailedCommitIsRetried(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, kind string) {
		h := newHarness(t, kind, queue.Config{Workers: 2, MaxAttempts: 3})
		if _, err := h.q.Enqueue(t.Context(), testJob{DeliveryID: "c-1", Mode: "commit-fails-once"}.delivery()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the retry after a failed commit", func() bool { return h.deliveries(t)["c-1"].Processed == 1 })
	})
}

func TestPanicIsRecoveredAndRetried(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, kind string) {
		h := newHarness(t, kind, queue.Config{Workers: 2, MaxAttempts: 3})
		if _, err := h.q.Enqueue(t.Context(), testJob{DeliveryID: "p-1", Mode: "panic-once"}.delivery()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "retry after panic", func() bool { return h.deliveries(t)["p-1"].Processed == 1 })
	})
}

func TestRateLimitSnoozesWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, kind string) {
		h := newHarness(t, kind, queue.Config{Workers: 2, MaxAttempts: 1})
		if _, err := h.q.Enqueue(t.Context(), testJob{DeliveryID: "r-1", Mode: "ratelimit-once"}.delivery()); err != nil {
			t.Fatal(err)
		}
		// With one attempt allowed, only a snooze (not a failed attempt) lets
		// the job run a second time and succeed.
		waitFor(t, "run after the rate limit", func() bool { return h.deliveries(t)["r-1"].Processed == 1 })
		if got := outcomes(t, h.reg)["snoozed"]; got != 1 {
			t.Errorf("snoozed = %v, want 1", got)
		}
	})
}

func TestFailuresAreBoundedAndKept(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, kind string) {
		h := newHarness(t, kind, queue.Config{Workers: 2, MaxAttempts: 2})
		for _, j := range []testJob{{DeliveryID: "f-1", Mode: "fail-always"}, {DeliveryID: "f-2", Mode: "permanent"}} {
			if _, err := h.q.Enqueue(t.Context(), j.delivery()); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "failures recorded", func() bool {
			return outcomes(t, h.reg)["discarded"] == 1 &&
				outcomes(t, h.reg)["cancelled"] == 1
		})
		h.mu.Lock()
		runs := map[string]int{"f-1": h.runs["f-1"], "f-2": h.runs["f-2"]}
		h.mu.Unlock()
		if runs["f-1"] != 2 || runs["f-2"] != 1 {
			t.Errorf("runs = %v, want f-1 twice (max attempts) and f-2 once (permanent)", runs)
		}
		for id, d := range h.deliveries(t) {
			if d.Processed != 0 {
				t.Errorf("%s processed = %d, want 0", id, d.Processed)
			}
		}
		// Failed jobs stay in the queue tables, and are counted.
		states, err := h.store.JobStates(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if states["discarded"] != 1 || states["cancelled"] != 1 {
			t.Errorf("failed jobs kept: %v, want one discarded and one cancelled", states)
		}
	})
}

func outcomes(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	return testenv.CounterBy(t, reg, "changegate_jobs_total", "outcome")
}

func TestEnqueueAfterStopFails(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, kind string) {
		h := newHarness(t, kind, queue.Config{})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := h.q.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := h.q.Enqueue(t.Context(), testJob{DeliveryID: "late"}.delivery()); !errors.Is(err, queue.ErrStopped) {
			t.Errorf("err = %v, want ErrStopped", err)
		}
	})
}

// startReplica opens the PostgreSQL store at url and starts a queue of
// the workers w on it, as a replica does; both stop with the test.
func startReplica(t *testing.T, url string, w *queue.Workers, cfg queue.Config) (*postgres.DB, *queue.Queue) {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	q, err := queue.New(queue.NewBackend(riverpgxv5.New(s.Pool()), s), w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q.Stop(ctx)
	})
	return s, q
}

// TestReplicasShareTheQueue: three queues on one PostgreSQL database, as
// three replicas behind a load balancer. Deliveries (each sent twice, to
// different replicas, as GitHub may redeliver) land anywhere; every one is
// stored once and processed exactly once, by whichever replica takes it.
func TestReplicasShareTheQueue(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDatabase(t)
	const replicas, n = 3, 150
	var mu sync.Mutex
	ran := map[string]int{}
	var qs []*queue.Queue
	var pg *postgres.DB
	for range replicas {
		w := queue.NewWorkers()
		queue.Add(w, jobs.Handler[testJob](func(ctx context.Context, log *slog.Logger, j testJob) (jobs.Apply, error) {
			return func(ctx context.Context, tx jobs.Tx) error {
				mu.Lock()
				ran[j.DeliveryID]++
				mu.Unlock()
				return nil
			}, nil
		}))
		var q *queue.Queue
		pg, q = startReplica(t, url, w, queue.Config{Workers: 4})
		qs = append(qs, q)
	}
	var wg sync.WaitGroup
	for i := range n {
		for k := range 2 {
			wg.Go(func() {
				q := qs[(i+k)%replicas]
				if _, err := q.Enqueue(t.Context(), testJob{DeliveryID: fmt.Sprintf("r-%03d", i)}.delivery()); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	waitFor(t, "every delivery processed", func() bool {
		ds, err := pg.Deliveries(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range ds {
			if d.Processed == 1 {
				done++
			}
		}
		return len(ds) == n && done == n
	})
	time.Sleep(200 * time.Millisecond) // a second run would show by now
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != n {
		t.Errorf("%d deliveries' jobs ran, want %d", len(ran), n)
	}
	for id, k := range ran {
		if k != 1 {
			t.Errorf("%s ran %d times", id, k)
		}
	}
}

// tickJob is a periodic job.
type tickJob struct{}

func (tickJob) Kind() string          { return "tick" }
func (tickJob) LogAttrs() []slog.Attr { return nil }
func (tickJob) DeliveryRef() string   { return "" }

// TestPeriodicJobsRunOnTheLeader: replicas sharing a database queue a
// periodic job once, on River's elected leader, not once each: the
// first replica's run is done before the others start, and they add
// none.
func TestPeriodicJobsRunOnTheLeader(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDatabase(t)
	var ticks atomic.Int64
	var pg *postgres.DB
	start := func(id string) {
		w := queue.NewWorkers()
		queue.Add(w, jobs.Handler[tickJob](func(context.Context, *slog.Logger, tickJob) (jobs.Apply, error) {
			ticks.Add(1)
			return nil, nil
		}))
		pg, _ = startReplica(t, url, w, queue.Config{Workers: 2, ClientID: id,
			Periodic: []queue.Periodic{{Every: time.Hour, Args: tickJob{}}}})
	}
	start("replica-0")
	waitFor(t, "the leader's tick", func() bool { return ticks.Load() == 1 })
	start("replica-1")
	start("replica-2")
	// The others have started and run their elections: a follower that
	// queued the periodic job at start would have run it by now.
	time.Sleep(3 * time.Second)
	var queued int
	if err := pg.Pool().QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE kind = 'tick'`).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if n := ticks.Load(); n != 1 || queued != 1 {
		t.Errorf("the periodic job ran %d times and was queued %d times on 3 replicas, want once", n, queued)
	}
}
