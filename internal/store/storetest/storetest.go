// Package storetest is the conformance suite every store adapter passes:
// the embedded SQLite store and the PostgreSQL one run the same tests,
// so the rest of changegate cannot tell them apart.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Store is what the suite drives: the methods every store provides.
type Store interface {
	store.Deliveries
	store.Inventory
	store.PullRequests
	CheckWritable(ctx context.Context, now time.Time) error
}

// Run runs the suite; open returns an empty store, closed when the test
// ends.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("deliveries", func(t *testing.T) { t.Parallel(); testDeliveries(t, open(t)) })
	t.Run("dedupe", func(t *testing.T) { t.Parallel(); testDedupe(t, open(t)) })
	t.Run("rollback", func(t *testing.T) { t.Parallel(); testRollback(t, open(t)) })
	t.Run("concurrent dispatchers", func(t *testing.T) { t.Parallel(); testDispatchers(t, open(t)) })
	t.Run("inventory", func(t *testing.T) { t.Parallel(); testInventory(t, open(t)) })
	t.Run("pull request index", func(t *testing.T) { t.Parallel(); testPRIndex(t, open(t)) })
	t.Run("check runs", func(t *testing.T) { t.Parallel(); testCheckRuns(t, open(t)) })
}

// t0 has whole microseconds: PostgreSQL keeps no finer.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC)

func tx(t *testing.T, s Store, fn func(tx jobs.Tx) error) {
	t.Helper()
	if err := s.InTx(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func delivery(id string, jobs int) store.Delivery {
	return store.Delivery{ID: id, Source: "github", Event: "pull_request", Action: "opened", InstallationID: 42,
		Repo: "acme/api", ReceivedAt: t0, Jobs: jobs, JobArgs: json.RawMessage(fmt.Sprintf(`[{"kind":"evaluate_pr","args":{"n":%q}}]`, id))}
}

func testDeliveries(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.CheckWritable(ctx, t0); err != nil {
		t.Fatal(err)
	}
	tx(t, s, func(tx jobs.Tx) error {
		ins, err := s.InsertDeliveries(ctx, tx, []store.Delivery{delivery("d1", 1), delivery("d2", 2), delivery("d3", 1)})
		if err == nil && !slices.Equal(ins, []bool{true, true, true}) {
			err = fmt.Errorf("inserted %v", ins)
		}
		return err
	})
	var got []store.Delivery
	tx(t, s, func(tx jobs.Tx) error {
		var err error
		got, err = s.Undispatched(ctx, tx, 2)
		return err
	})
	if len(got) != 2 || got[0].ID != "d1" || got[1].ID != "d2" {
		t.Fatalf("undispatched, limit 2: %+v, want d1 and d2 in order", got)
	}
	var args []map[string]any
	if err := json.Unmarshal(got[1].JobArgs, &args); err != nil || len(args) != 1 || args[0]["kind"] != "evaluate_pr" {
		t.Errorf("job args of d2: %s (%v)", got[1].JobArgs, err)
	}
	tx(t, s, func(tx jobs.Tx) error { return s.MarkDispatched(ctx, tx, []string{"d1", "d2"}) })
	tx(t, s, func(tx jobs.Tx) error {
		rest, err := s.Undispatched(ctx, tx, 10)
		if err == nil && (len(rest) != 1 || rest[0].ID != "d3") {
			err = fmt.Errorf("undispatched after marking: %+v, want d3", rest)
		}
		return err
	})
	tx(t, s, func(tx jobs.Tx) error { return s.MarkProcessed(ctx, tx, "d2", t0) })
	tx(t, s, func(tx jobs.Tx) error { return s.MarkProcessed(ctx, tx, "d2", t0) })
	all, err := s.Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Delivery{delivery("d1", 1), delivery("d2", 2), delivery("d3", 1)}
	want[1].Processed = 2
	for i := range want {
		want[i].JobArgs = nil
	}
	if len(all) != 3 {
		t.Fatalf("deliveries: %+v", all)
	}
	for i := range all {
		if !all[i].ReceivedAt.Equal(want[i].ReceivedAt) {
			t.Errorf("delivery %d received at %v, want %v", i, all[i].ReceivedAt, want[i].ReceivedAt)
		}
		all[i].ReceivedAt, all[i].JobArgs = want[i].ReceivedAt, nil
		if fmt.Sprint(all[i]) != fmt.Sprint(want[i]) {
			t.Errorf("delivery %d: %+v, want %+v", i, all[i], want[i])
		}
	}
}

// A delivery id is recorded once: a redelivery, in the same batch or a
// later one, inserts nothing and changes nothing.
func testDedupe(t *testing.T, s Store) {
	ctx := t.Context()
	tx(t, s, func(tx jobs.Tx) error {
		ins, err := s.InsertDeliveries(ctx, tx, []store.Delivery{delivery("a", 1), delivery("a", 5)})
		if err == nil && !slices.Equal(ins, []bool{true, false}) {
			err = fmt.Errorf("a batch holding one id twice: inserted %v, want [true false]", ins)
		}
		return err
	})
	tx(t, s, func(tx jobs.Tx) error {
		ins, err := s.InsertDeliveries(ctx, tx, []store.Delivery{delivery("b", 1), delivery("a", 3)})
		if err == nil && !slices.Equal(ins, []bool{true, false}) {
			err = fmt.Errorf("a redelivery: inserted %v, want [true false]", ins)
		}
		return err
	})
	all, err := s.Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "a" || all[0].Jobs != 1 || all[1].ID != "b" {
		t.Errorf("deliveries: %+v, want a (1 job) then b", all)
	}
}

// A transaction that fails writes nothing.
func testRollback(t *testing.T, s Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx jobs.Tx) error {
		if _, err := s.InsertDeliveries(ctx, tx, []store.Delivery{delivery("lost", 1)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want the function's error", err)
	}
	if all, err := s.Deliveries(ctx); err != nil || len(all) != 0 {
		t.Errorf("after a failed transaction: %+v, %v", all, err)
	}
}

// Dispatchers on several replicas take disjoint deliveries: each is moved
// into the queue exactly once.
func testDispatchers(t *testing.T, s Store) {
	ctx := t.Context()
	const n, dispatchers = 60, 4
	var ds []store.Delivery
	for i := range n {
		ds = append(ds, delivery(fmt.Sprintf("c-%02d", i), 1))
	}
	tx(t, s, func(tx jobs.Tx) error { _, err := s.InsertDeliveries(ctx, tx, ds); return err })
	var mu sync.Mutex
	taken := map[string]int{}
	var wg sync.WaitGroup
	for range dispatchers {
		wg.Go(func() {
			for {
				var got []store.Delivery
				err := s.InTx(ctx, func(tx jobs.Tx) error {
					var err error
					if got, err = s.Undispatched(ctx, tx, 4); err != nil || len(got) == 0 {
						return err
					}
					ids := make([]string, len(got))
					for i, d := range got {
						ids[i] = d.ID
					}
					return s.MarkDispatched(ctx, tx, ids)
				})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					taken[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(taken) != n {
		t.Errorf("%d deliveries dispatched, want %d", len(taken), n)
	}
	for id, k := range taken {
		if k != 1 {
			t.Errorf("%s dispatched %d times", id, k)
		}
	}
}
