package queue

import (
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/changegate/changegate/internal/store/sqlite"
)

// TestOnlyBurstsDeferProcessing: single deliveries, however frequent, never
// hold back dispatch or jobs; a batch that shows deliveries queueing does.
func TestOnlyBurstsDeferProcessing(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	q, err := New(NewBackend(riversqlite.New(store.SQL()), store), NewWorkers(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(n int) []*pending {
		out := make([]*pending, n)
		for i := range out {
			id := fmt.Sprintf("p-%d-%d", n, i)
			out[i] = &pending{row: sqlite.Delivery{ID: id, Source: "github", Event: "e", ReceivedAt: time.Now(), JobArgs: []byte(`[]`)}, done: make(chan result, 1)}
		}
		return out
	}
	for range 20 {
		q.writeBatch(batch(1))
		if q.intakePressed() {
			t.Fatal("a one-delivery batch marked intake as pressed")
		}
	}
	before := time.Now()
	q.writeBatch(batch(pressureBatch))
	if !q.pressedAt(before) {
		t.Fatal("a full batch did not mark intake as pressed")
	}
}
