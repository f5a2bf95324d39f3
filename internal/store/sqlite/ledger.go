package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"

	"github.com/changegate/changegate/internal/evidence"
)

// LedgerIndex is the SQL index of the evidence log.
type LedgerIndex struct{ db *DB }

// Ledger returns the evidence index.
func (s *DB) Ledger() *LedgerIndex { return &LedgerIndex{db: s} }

// Put indexes a batch of records in one transaction. Indexing a record
// again is a no-op. A record that names another in closes marks that one's
// exception closed.
//
// The commit is not synced to disk: the index is derived from the blob
// store, and ledger.Open re-indexes the records a power cut took from it.
// Rows are committed in sequence order, so what is lost is always a suffix.
func (x *LedgerIndex) Put(ctx context.Context, entries []evidence.IndexEntry) error {
	tx, err := x.db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger index: begin: %w", err)
	}
	defer tx.Rollback()
	err = evidence.PutIndex(entries,
		func(e evidence.IndexEntry) (bool, error) { return putRecord(ctx, tx, e) },
		func(run []evidence.IndexEntry) error { return putLeaves(ctx, tx, run) })
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger index: commit: %w", err)
	}
	return nil
}

// putLeaves stores the leaf hashes of consecutive records as one row.
func putLeaves(ctx context.Context, tx *sql.Tx, run []evidence.IndexEntry) error {
	if len(run) == 0 {
		return nil
	}
	hashes, err := evidence.IndexLeaves(run)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_leaves (first, hashes) VALUES (?, ?)`, int64(run[0].Seq), hashes); err != nil {
		return fmt.Errorf("index leaves %d..%d: %w", run[0].Seq, run[len(run)-1].Seq, err)
	}
	return nil
}

// putRecord indexes one record and reports whether it was new.
func putRecord(ctx context.Context, tx *sql.Tx, e evidence.IndexEntry) (bool, error) {
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
	res, err := tx.ExecContext(ctx, `
		INSERT INTO ledger_records (seq, id, repo, pr, sha, change_type, merged_at, observed_at, outcome,
			compliant, ticket, exception, exception_due, closes, exception_state, event_time, summary, leaf_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (seq) DO NOTHING`, args...)
	if err != nil {
		return false, fmt.Errorf("index record %d: %w", e.Seq, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err // indexed before
	}
	for _, link := range e.Links {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_links (link, seq, event_time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			link, int64(e.Seq), e.Fields["event_time"]); err != nil {
			return false, fmt.Errorf("index links of record %d: %w", e.Seq, err)
		}
	}
	if closes := e.Fields["closes"]; closes != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE ledger_records SET exception_state = 'closed' WHERE id = ?`, closes); err != nil {
			return false, fmt.Errorf("close exception %s: %w", closes, err)
		}
	}
	return true, nil
}

// IDsFor lists the ids of the records about a commit of a repository, in
// log order.
// TicketsOf lists the ticket keys of records, in their order.
func (x *LedgerIndex) TicketsOf(ctx context.Context, ids []string) ([]string, error) {
	var keys []string
	for _, id := range ids {
		var k string
		err := x.db.db.QueryRowContext(ctx, `SELECT ticket FROM ledger_records WHERE id = ?`, id).Scan(&k)
		if errors.Is(err, sql.ErrNoRows) {
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

func (x *LedgerIndex) IDsFor(ctx context.Context, repo, sha string) ([]string, error) {
	rows, err := x.db.db.QueryContext(ctx, `SELECT id FROM ledger_records WHERE repo = ? AND sha = ? ORDER BY seq`, repo, sha)
	if err != nil {
		return nil, fmt.Errorf("ledger index: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("ledger index: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Clear empties the index, before a rebuild from the blobs.
func (x *LedgerIndex) Clear(ctx context.Context) error {
	if _, err := x.db.db.ExecContext(ctx, `DELETE FROM ledger_records; DELETE FROM ledger_links; DELETE FROM ledger_leaves`); err != nil {
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
	return leaves(ctx, x.db.db, n, fn)
}

// LeavesFrom is Leaves of the records from..to-1, for a ledger that
// follows other writers.
func (x *LedgerIndex) LeavesFrom(ctx context.Context, from, to uint64, fn func(seq uint64, id string, leafHash []byte) error) error {
	return leavesFrom(ctx, x.db.db, from, to, fn)
}

func leaves(ctx context.Context, db *sql.DB, n uint64, fn func(seq uint64, id string, leafHash []byte) error) error {
	return leavesFrom(ctx, db, 0, n, fn)
}

func leavesFrom(ctx context.Context, db *sql.DB, from, to uint64, fn func(seq uint64, id string, leafHash []byte) error) error {
	rows, err := db.QueryContext(ctx, `SELECT seq, id, leaf_hash FROM ledger_records WHERE seq >= ? AND seq < ? ORDER BY seq`, int64(from), int64(to))
	if err != nil {
		return fmt.Errorf("ledger index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var id string
		var leaf sql.RawBytes
		h := make([]byte, 32) // fn may keep it
		if err := rows.Scan(&seq, &id, &leaf); err != nil {
			return fmt.Errorf("ledger index: %w", err)
		}
		if hex.DecodedLen(len(leaf)) != len(h) {
			return fmt.Errorf("ledger index: record %d: leaf hash has %d hex digits", seq, len(leaf))
		}
		if _, err := hex.Decode(h, leaf); err != nil {
			return fmt.Errorf("ledger index: record %d: leaf hash: %w", seq, err)
		}
		if err := fn(uint64(seq), id, h); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Row returns the indexed fields of the record at seq, as the evidence
// package names them, for verify to compare with the record itself.
func (x *LedgerIndex) Row(ctx context.Context, seq uint64) (map[string]string, string, bool, error) {
	vals := make([]sql.NullString, len(evidence.IndexColumns)+1)
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	err := x.db.db.QueryRowContext(ctx, `
		SELECT id, repo, pr, sha, change_type, merged_at, observed_at, outcome, compliant, ticket,
			exception, exception_due, closes, exception_state, event_time, summary, leaf_hash
		FROM ledger_records WHERE seq = ?`, int64(seq)).Scan(ptrs...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("ledger index row %d: %w", seq, err)
	}
	out := make(map[string]string, len(evidence.IndexColumns))
	for i, c := range evidence.IndexColumns {
		out[c] = vals[i].String
	}
	return out, vals[len(evidence.IndexColumns)].String, true, nil
}

// OpenReadOnly opens a data dir's database for reading beside a running
// server, without its lock and without migrating.
func OpenReadOnly(dataDir string) (*sql.DB, error) {
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
}

// LedgerRows yields the ledger index in sequence order, the way
// evidence.Verify reads it.
func LedgerRows(db *sql.DB) func(ctx context.Context) iter.Seq2[evidence.IndexRow, error] {
	return LedgerRowsFrom(db, 0)
}

// LedgerRowsFrom is LedgerRows from sequence number from on, for
// evidence.VerifySince.
func LedgerRowsFrom(db *sql.DB, from uint64) func(ctx context.Context) iter.Seq2[evidence.IndexRow, error] {
	return func(ctx context.Context) iter.Seq2[evidence.IndexRow, error] {
		return func(yield func(evidence.IndexRow, error) bool) {
			rows, err := db.QueryContext(ctx, `
				SELECT seq, id, repo, pr, sha, change_type, merged_at, observed_at, outcome, compliant, ticket,
					exception, exception_due, closes, exception_state, event_time, summary, leaf_hash
				FROM ledger_records WHERE seq >= ? ORDER BY seq`, int64(from))
			if err != nil {
				yield(evidence.IndexRow{}, fmt.Errorf("read ledger index: %w", err))
				return
			}
			defer rows.Close()
			for rows.Next() {
				var seq int64
				var leaf string
				vals := make([]string, len(evidence.IndexColumns))
				ptrs := []any{&seq}
				for i := range vals {
					ptrs = append(ptrs, &vals[i])
				}
				ptrs = append(ptrs, &leaf)
				if err := rows.Scan(ptrs...); err != nil {
					yield(evidence.IndexRow{}, fmt.Errorf("read ledger index: %w", err))
					return
				}
				fields := make(map[string]string, len(vals)+1)
				for i, c := range evidence.IndexColumns {
					fields[c] = vals[i]
				}
				fields[evidence.FieldLeafHash] = leaf
				if !yield(evidence.IndexRow{Seq: seq, Fields: fields}, nil) {
					return
				}
			}
			if err := rows.Err(); err != nil {
				yield(evidence.IndexRow{}, fmt.Errorf("read ledger index: %w", err))
			}
		}
	}
}
