package queue_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// TestJobRunningAtCrashRunsOnceAfterRestart snapshots the database while a
// job is running, which is exactly what a crash at that moment leaves on
// disk, and starts a new queue on the snapshot.
func TestJobRunningAtCrashRunsOnceAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	live := t.TempDir()
	store := openStore(t, live)
	entered, release := make(chan struct{}), make(chan struct{})
	q := startQueue(t, store, queue.Config{Workers: 1}, func(context.Context, *slog.Logger, testJob) (jobs.Apply, error) {
		close(entered)
		<-release
		return nil, nil
	})
	if _, err := q.Enqueue(ctx, testJob{DeliveryID: "orphan-1", Mode: "ok"}.delivery()); err != nil {
		t.Fatal(err)
	}
	<-entered

	crashed := t.TempDir()
	reader, err := sql.Open("sqlite", "file:"+filepath.Join(live, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Exec(`VACUUM INTO ?`, filepath.Join(crashed, sqlite.FileName)); err != nil {
		t.Fatal(err)
	}
	reader.Close()
	close(release)
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	store.Close()

	// Second life, on what the crash left.
	store2 := openStore(t, crashed)
	var state string
	if err := store2.SQL().QueryRow(`SELECT state FROM river_job`).Scan(&state); err != nil || state != "running" {
		t.Fatalf("snapshot job state = %q (%v), want running", state, err)
	}
	var runs atomic.Int64
	q2 := startQueue(t, store2, queue.Config{Workers: 1}, func(context.Context, *slog.Logger, testJob) (jobs.Apply, error) {
		runs.Add(1)
		return nil, nil
	})
	defer q2.Stop(context.Background())
	waitFor(t, "rescued job", func() bool {
		ds, err := store2.Deliveries(ctx)
		return err == nil && len(ds) == 1 && ds[0].Processed == 1
	})
	time.Sleep(200 * time.Millisecond)
	if n := runs.Load(); n != 1 {
		t.Errorf("rescued job ran %d times, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(crashed, sqlite.FileName)); err != nil {
		t.Fatal(err)
	}
}
