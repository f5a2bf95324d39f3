package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// BenchmarkProcess measures how fast queued deliveries are worked off:
// dispatch into River, fetch, run, and the transactional completion, with
// synchronous=FULL. Intake is done before the timer starts.
//
//	go test ./internal/queue -run '^$' -bench Process -benchtime 5000x
func BenchmarkProcess(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	var done atomic.Int64
	w := queue.NewWorkers()
	started := make(chan struct{})
	queue.Add(w, jobs.Handler[testJob](func(context.Context, *slog.Logger, testJob) (jobs.Apply, error) {
		<-started
		return func(context.Context, jobs.Tx) error { done.Add(1); return nil }, nil
	}))
	q := startBenchQueue(b, store, w)
	for i := range b.N {
		if _, err := q.Enqueue(ctx, testJob{DeliveryID: fmt.Sprintf("b-%d", i)}.delivery()); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	close(started)
	for done.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkEnqueue measures the durable step of intake alone: 32 callers
// at once group-committing deliveries with synchronous=FULL, while the
// dispatcher and 8 workers take their jobs, with no HTTP and no
// translation. It is the floor under BenchmarkIntake's durable figure.
//
//	go test ./internal/queue -run '^$' -bench Enqueue -benchtime 20000x
func BenchmarkEnqueue(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	w := queue.NewWorkers()
	queue.Add(w, jobs.Handler[testJob](func(context.Context, *slog.Logger, testJob) (jobs.Apply, error) { return nil, nil }))
	q := startBenchQueue(b, store, w)
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Enqueue(ctx, testJob{DeliveryID: fmt.Sprintf("e-%d", seq.Add(1))}.delivery()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acks/s")
}

// startBenchQueue starts a queue of 8 workers on store, stopped at the
// benchmark's end.
func startBenchQueue(b *testing.B, store *sqlite.DB, w *queue.Workers) *queue.Queue {
	b.Helper()
	q, err := queue.New(queue.NewBackend(riversqlite.New(store.SQL()), store), w, queue.Config{Workers: 8})
	if err != nil {
		b.Fatal(err)
	}
	if err := q.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Stop(context.Background()) })
	return q
}
