package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestOpenTakesTheDataDir(t *testing.T) {
	t.Parallel()
	_, dir := open(t)
	_, err := Open(t.Context(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another changegate process") {
		t.Fatalf("second Open on the same dir: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, s, Delivery{ID: "a", Event: "e", JobArgs: json.RawMessage(`[]`), Jobs: 0})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), dir, Options{})
	if err != nil {
		t.Fatalf("reopen (migrations must be idempotent): %v", err)
	}
	defer s.Close()
	ds, err := s.Deliveries(t.Context())
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries after reopen = %v, %v", ds, err)
	}
}

func insert(t *testing.T, s *DB, ds ...Delivery) []bool {
	t.Helper()
	tx, err := s.SQL().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range ds {
		if ds[i].Source == "" {
			ds[i].Source = "github"
		}
		if ds[i].ReceivedAt.IsZero() {
			ds[i].ReceivedAt = time.Now()
		}
	}
	ok, err := s.InsertDeliveries(t.Context(), tx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestDeliveriesDedupeAndDispatch(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	args := json.RawMessage(`[{"kind":"k","args":{}}]`)
	got := insert(t, s,
		Delivery{ID: "1", Event: "e", JobArgs: args, Jobs: 1},
		Delivery{ID: "2", Event: "e", JobArgs: args, Jobs: 1},
		Delivery{ID: "1", Event: "e", JobArgs: args, Jobs: 1},
	)
	if fmt.Sprint(got) != "[true true false]" {
		t.Errorf("inserted = %v, want the repeat refused", got)
	}
	if got := insert(t, s, Delivery{ID: "2", Event: "e", JobArgs: args, Jobs: 1}); got[0] {
		t.Error("a redelivery in a later transaction was inserted")
	}
	ctx := t.Context()
	tx, err := s.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := s.Undispatched(ctx, tx, 10)
	if err != nil || len(pending) != 2 || pending[0].ID != "1" || string(pending[1].JobArgs) != string(args) {
		t.Fatalf("undispatched = %+v, %v", pending, err)
	}
	if err := s.MarkDispatched(ctx, tx, []string{"1"}); err != nil {
		t.Fatal(err)
	}
	pending, err = s.Undispatched(ctx, tx, 10)
	if err != nil || len(pending) != 1 || pending[0].ID != "2" {
		t.Fatalf("after dispatch = %+v, %v", pending, err)
	}
	tx.Rollback()
}

func TestStatementCache(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	db := s.SQL()
	if _, err := db.Exec(`CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)`); err != nil {
		t.Fatalf("a multi-statement script must run whole: %v", err)
	}
	count := func() int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
	// The same query again, reused from the cache, sees new data.
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO t VALUES (?)`, 10+i); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 5 {
		t.Fatalf("rows = %d, want 5", n)
	}
	// The same query while its cached statement has open rows.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT n FROM t ORDER BY n`
	outer, err := tx.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() {
		var n int
		if err := outer.Scan(&n); err != nil {
			t.Fatal(err)
		}
		inner, err := tx.Query(q)
		if err != nil {
			t.Fatalf("nested use of a busy statement: %v", err)
		}
		k := 0
		for inner.Next() {
			k++
		}
		inner.Close()
		if k != 5 {
			t.Fatalf("inner rows = %d, want 5", k)
		}
		got = append(got, n)
	}
	outer.Close()
	if fmt.Sprint(got) != "[1 2 10 11 12]" {
		t.Errorf("outer rows = %v", got)
	}
	tx.Rollback()
	// More distinct queries than the cache holds.
	for i := range stmtCacheSize + 10 {
		var n int
		if err := db.QueryRow(fmt.Sprintf(`SELECT %d + COUNT(*) FROM t`, i)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != i+5 {
			t.Fatalf("query %d = %d", i, n)
		}
	}
	// A query error leaves the connection usable.
	if _, err := db.Exec(`INSERT INTO missing VALUES (1)`); err == nil {
		t.Fatal("want an error for a missing table")
	}
	if n := count(); n != 5 {
		t.Fatalf("rows = %d, want 5", n)
	}
}

func TestDurableTxSyncsAtTheAcknowledgementLevel(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), t.TempDir(), Options{}) // FULL by default
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	level := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		var n int
		if err := q.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const normal, full = 1, 2
	if got := level(s.SQL()); got != normal {
		t.Errorf("ordinary writes synchronous = %d, want NORMAL (1)", got)
	}
	err = s.DurableTx(t.Context(), func(tx *sql.Tx) error {
		if got := level(tx); got != full {
			t.Errorf("inside DurableTx synchronous = %d, want FULL (2)", got)
		}
		_, err := tx.Exec(`INSERT INTO health (id, checked_at) VALUES (1, 'x')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := level(s.SQL()); got != normal {
		t.Errorf("after DurableTx synchronous = %d, want NORMAL again", got)
	}
	if _, err := Open(t.Context(), t.TempDir(), Options{Synchronous: "OFF"}); err == nil {
		t.Error("synchronous OFF must be refused: acknowledgements would not be durable")
	}
}
