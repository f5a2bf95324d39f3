package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
)

func TestSaturationAndAge(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	release := make(chan struct{})
	q := startQueue(t, openStore(t, t.TempDir()), queue.Config{Workers: 1, Saturation: 3},
		func(context.Context, *slog.Logger, testJob) (jobs.Apply, error) {
			<-release
			return nil, nil
		})
	defer func() {
		close(release)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q.Stop(sctx)
	}()
	if sat, n, err := q.Saturated(ctx); err != nil || sat || n != 0 {
		t.Fatalf("empty queue: saturated=%v n=%d err=%v", sat, n, err)
	}
	for i := range 5 {
		if _, err := q.Enqueue(ctx, testJob{DeliveryID: fmt.Sprintf("s-%d", i)}.delivery()); err != nil {
			t.Fatal(err)
		}
	}
	// One job runs (blocked), four wait.
	waitFor(t, "four waiting", func() bool {
		n, _, err := q.Waiting(ctx)
		return err == nil && n == 4
	})
	time.Sleep(50 * time.Millisecond)
	_, age, err := q.Waiting(ctx)
	if err != nil || age <= 0 || age > time.Minute {
		t.Errorf("oldest waiting age = %v (%v), want a small positive duration", age, err)
	}
	if sat, n, err := q.Saturated(ctx); err != nil || !sat || n != 4 {
		t.Errorf("saturated=%v n=%d err=%v, want saturated with 4", sat, n, err)
	}
}
