package queue_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
)

func openStore(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	store, err := sqlite.Open(t.Context(), dir, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func startQueue(t *testing.T, store *sqlite.DB, cfg queue.Config, h jobs.Handler[testJob]) *queue.Queue {
	t.Helper()
	w := queue.NewWorkers()
	queue.Add(w, h)
	q, err := queue.New(queue.NewBackend(riversqlite.New(store.SQL()), store), w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return q
}

func TestStopDrainsRunningJobs(t *testing.T) {
	t.Parallel()
	store := openStore(t, t.TempDir())
	entered := make(chan struct{}, 1)
	q := startQueue(t, store, queue.Config{Workers: 1}, func(ctx context.Context, _ *slog.Logger, _ testJob) (jobs.Apply, error) {
		entered <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return nil, nil
	})
	if _, err := q.Enqueue(t.Context(), testJob{DeliveryID: "drain-1"}.delivery()); err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ds, err := store.Deliveries(t.Context())
	if err != nil || len(ds) != 1 || ds[0].Processed != 1 {
		t.Errorf("after a drained stop: %+v %v, want the running job finished", ds, err)
	}
}

func TestStopTimeoutCancelsAndKeepsTheAttempt(t *testing.T) {
	t.Parallel()
	store := openStore(t, t.TempDir())
	entered := make(chan struct{}, 1)
	// One attempt only: if the cancelled run spent it, the job would be
	// discarded instead of running again.
	cfg := queue.Config{Workers: 1, MaxAttempts: 1,
		// Like ghapp.RetryDelay: a cancelled caller's context is not a
		// reason to retry a GitHub call.
		Classify: func(err error, _ time.Time) (time.Duration, bool) { return 0, !errors.Is(err, context.Canceled) },
	}
	q := startQueue(t, store, cfg, func(ctx context.Context, _ *slog.Logger, _ testJob) (jobs.Apply, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if _, err := q.Enqueue(t.Context(), testJob{DeliveryID: "slow-1"}.delivery()); err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	q.Stop(ctx) // reports the drain timeout; the job is cancelled
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("stop took %v", waited)
	}
	var state string
	var attempt int
	if err := store.SQL().QueryRow(`SELECT state, attempt FROM river_job`).Scan(&state, &attempt); err != nil {
		t.Fatal(err)
	}
	if state != "available" || attempt != 0 {
		t.Errorf("after a cancelling stop: state %s, attempt %d; want available with the attempt given back", state, attempt)
	}
	var runs atomic.Int64
	q2 := startQueue(t, store, cfg, func(context.Context, *slog.Logger, testJob) (jobs.Apply, error) {
		runs.Add(1)
		return nil, nil
	})
	defer q2.Stop(context.Background())
	waitFor(t, "the cancelled job to run after restart", func() bool {
		ds, err := store.Deliveries(t.Context())
		return err == nil && len(ds) == 1 && ds[0].Processed == 1
	})
	if n := runs.Load(); n != 1 {
		t.Errorf("runs after restart = %d, want 1", n)
	}
}
