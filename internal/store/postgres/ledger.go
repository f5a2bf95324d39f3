package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/changegate/changegate/internal/evidence"
)

// LedgerIndex is the SQL index of the evidence log.
type LedgerIndex struct{ db *DB }

// Ledger returns the evidence index.
func (s *DB) Ledger() *LedgerIndex { return &LedgerIndex{db: s} }

// Put indexes a batch of records in one transaction. Indexing a record
// again is a no-op. A record that names another in closes marks that one's
// exception closed.
func (x *LedgerIndex) Put(ctx context.Context, entries []evidence.IndexEntry) error {
	return pgx.BeginFunc(ctx, x.db.pool, func(tx pgx.Tx) error {
		return evidence.PutIndex(entries,
			func(e evidence.IndexEntry) (bool, error) { return putRecord(ctx, tx, e) },
			func(run []evidence.IndexEntry) error { return putLeaves(ctx, tx, run) })
	})
}

// putLeaves stores the leaf hashes of consecutive records as one row.
func putLeaves(ctx context.Context, tx pgx.Tx, run []evidence.IndexEntry) error {
	if len(run) == 0 {
		return nil
	}
	hashes, err := evidence.IndexLeaves(run)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger_leaves (first, hashes) VALUES ($1, $2)`, int64(run[0].Seq), hashes); err != nil {
		return fmt.Errorf("index leaves %d..%d: %w", run[0].Seq, run[len(run)-1].Seq, err)
	}
	return nil
}

// putRecord indexes one record and reports whether it was new.
func putRecord(ctx context.Context, tx pgx.Tx, e evidence.IndexEntry) (bool, error) {
	state := e.ExceptionState()
	args := make([]any, 0, len(evidence.IndexColumns)+2)
	args = append(args, int64(e.Seq))
	for _, c := range evidence.IndexColumns {
		if c == "exception_state" {
			args = append(args, state)
			continue
		}
		args = append(args, e.Fields[c])
	}
	args = append(args, e.LeafHash)
	tag, err := tx.Exec(ctx, `
		INSERT INTO ledger_records (seq, id, repo, pr, sha, change_type, merged_at, observed_at, outcome,
			compliant, ticket, exception, exception_due, closes, exception_state, event_time, summary, leaf_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (seq) DO NOTHING`, args...)
	if err != nil {
		return false, fmt.Errorf("index record %d: %w", e.Seq, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil // indexed before
	}
	for _, link := range e.Links {
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_links (link, seq, event_time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			link, int64(e.Seq), e.Fields["event_time"]); err != nil {
			return false, fmt.Errorf("index links of record %d: %w", e.Seq, err)
		}
	}
	if closes := e.Fields["closes"]; closes != "" {
		if _, err := tx.Exec(ctx, `UPDATE ledger_records SET exception_state = 'closed' WHERE id = $1`, closes); err != nil {
			return false, fmt.Errorf("close exception %s: %w", closes, err)
		}
	}
	return true, nil
}

// TicketsOf lists the ticket keys of records, in their order.
func (x *LedgerIndex) TicketsOf(ctx context.Context, ids []string) ([]string, error) {
	var keys []string
	for _, id := range ids {
		var k string
		err := x.db.pool.QueryRow(ctx, `SELECT ticket FROM ledger_records WHERE id = $1`, id).Scan(&k)
		if errNoRows(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ledger index: %w", err)
		}
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// IDsFor lists the ids of the records about a commit of a repository, in
// log order.
func (x *LedgerIndex) IDsFor(ctx context.Context, repo, sha string) ([]string, error) {
	rows, err := x.db.pool.Query(ctx, `SELECT id FROM ledger_records WHERE repo = $1 AND sha = $2 ORDER BY seq`, repo, sha)
	if err != nil {
		return nil, fmt.Errorf("ledger index: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("ledger index: %w", err)
	}
	return ids, nil
}

// Clear empties the index, before a rebuild from the blobs.
func (x *LedgerIndex) Clear(ctx context.Context) error {
	if _, err := x.db.pool.Exec(ctx, `TRUNCATE ledger_records, ledger_links, ledger_leaves`); err != nil {
		return fmt.Errorf("clear ledger index: %w", err)
	}
	return nil
}

// Size is how many records are indexed.
func (x *LedgerIndex) Size(ctx context.Context) (uint64, error) {
	return x.db.LedgerReader().Size(ctx)
}

// Leaves calls fn with the id and leaf hash of each of the first n records,
// in sequence order.
func (x *LedgerIndex) Leaves(ctx context.Context, n uint64, fn func(seq uint64, id string, leafHash []byte) error) error {
	return x.LeavesFrom(ctx, 0, n, fn)
}

// LeavesFrom is Leaves of the records from..to-1, for a ledger that
// follows the other replicas.
func (x *LedgerIndex) LeavesFrom(ctx context.Context, from, to uint64, fn func(seq uint64, id string, leafHash []byte) error) error {
	rows, err := x.db.pool.Query(ctx, `SELECT seq, id, leaf_hash FROM ledger_records WHERE seq >= $1 AND seq < $2 ORDER BY seq`, int64(from), int64(to))
	if err != nil {
		return fmt.Errorf("ledger index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var id, leaf string
		if err := rows.Scan(&seq, &id, &leaf); err != nil {
			return fmt.Errorf("ledger index: %w", err)
		}
		h, err := hex.DecodeString(leaf)
		if err != nil || len(h) != 32 {
			return fmt.Errorf("ledger index: record %d: leaf hash %q", seq, leaf)
		}
		if err := fn(uint64(seq), id, h); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Row returns the indexed fields of the record at seq, as the evidence
// package names them, and its leaf hash.
func (x *LedgerIndex) Row(ctx context.Context, seq uint64) (map[string]string, string, bool, error) {
	vals := make([]string, len(evidence.IndexColumns)+1)
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	err := x.db.pool.QueryRow(ctx, `
		SELECT id, repo, pr, sha, change_type, merged_at, observed_at, outcome, compliant, ticket,
			exception, exception_due, closes, exception_state, event_time, summary, leaf_hash
		FROM ledger_records WHERE seq = $1`, int64(seq)).Scan(ptrs...)
	if errNoRows(err) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("ledger index row %d: %w", seq, err)
	}
	out := make(map[string]string, len(evidence.IndexColumns))
	for i, c := range evidence.IndexColumns {
		out[c] = vals[i]
	}
	return out, vals[len(evidence.IndexColumns)], true, nil
}

// LedgerLockKey is the advisory lock key of the ledger's one writer:
// "cg-ledger" in ASCII, folded into an int64.
const LedgerLockKey = 0x63672d6c65646772

// WriterLock is the ledger's writer lock across replicas (ledger.Writers):
// a session-level advisory lock on a connection of its own, held for one
// commit. A replica that dies holding it loses its session, and the lock.
type WriterLock struct{ pool *pgxpool.Pool }

// LedgerWriters returns the ledger's writer lock.
func (s *DB) LedgerWriters() *WriterLock { return &WriterLock{pool: s.pool} }

// Lock waits for the lock and returns its release.
func (w *WriterLock) Lock(ctx context.Context) (func(), error) {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(LedgerLockKey)); err != nil {
		conn.Release()
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(LedgerLockKey)); err != nil {
			// A session that cannot unlock is closed, which unlocks it.
			conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// Rows yields the index in sequence order, the way evidence.Verify reads it.
func (x *LedgerIndex) Rows(ctx context.Context) iter.Seq2[evidence.IndexRow, error] {
	return x.RowsFrom(0)(ctx)
}

// RowsFrom is Rows from sequence number from on, for evidence.VerifySince.
func (x *LedgerIndex) RowsFrom(from uint64) func(ctx context.Context) iter.Seq2[evidence.IndexRow, error] {
	return func(ctx context.Context) iter.Seq2[evidence.IndexRow, error] { return x.rowsFrom(ctx, from) }
}

func (x *LedgerIndex) rowsFrom(ctx context.Context, from uint64) iter.Seq2[evidence.IndexRow, error] {
	return func(yield func(evidence.IndexRow, error) bool) {
		rows, err := x.db.pool.Query(ctx, `
			SELECT seq, id, repo, pr, sha, change_type, merged_at, observed_at, outcome, compliant, ticket,
				exception, exception_due, closes, exception_state, event_time, summary, leaf_hash
			FROM ledger_records WHERE seq >= $1 ORDER BY seq`, int64(from))
		if err != nil {
			yield(evidence.IndexRow{}, fmt.Errorf("read ledger index: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			vals := make([]string, len(evidence.IndexColumns)+1)
			ptrs := []any{&seq}
			for i := range vals {
				ptrs = append(ptrs, &vals[i])
			}
			if err := rows.Scan(ptrs...); err != nil {
				yield(evidence.IndexRow{}, fmt.Errorf("read ledger index: %w", err))
				return
			}
			fields := make(map[string]string, len(vals))
			for i, c := range evidence.IndexColumns {
				fields[c] = vals[i]
			}
			fields[evidence.FieldLeafHash] = vals[len(evidence.IndexColumns)]
			if !yield(evidence.IndexRow{Seq: seq, Fields: fields}, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(evidence.IndexRow{}, fmt.Errorf("read ledger index: %w", err))
		}
	}
}
