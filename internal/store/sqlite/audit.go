package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/changegate/changegate/internal/evidence"
)

// LedgerReader answers the auditor's queries from the ledger index. It only
// reads, so it also serves a data dir opened with OpenReadOnly beside a
// running server.
type LedgerReader struct{ db *sql.DB }

// NewLedgerReader reads the index of db, as OpenReadOnly opens it.
func NewLedgerReader(db *sql.DB) *LedgerReader { return &LedgerReader{db: db} }

// LedgerReader returns the store's auditor queries.
func (s *DB) LedgerReader() *LedgerReader { return &LedgerReader{db: s.db} }

// Population calls fn with each record q selects, in sequence order.
func (x *LedgerReader) Population(ctx context.Context, q evidence.Query, fn func(evidence.PopulationRow) error) error {
	query, args := populationQuery(q)
	rows, err := x.db.QueryContext(ctx, query, args...)
	if err != nil {
		return indexError(err)
	}
	defer rows.Close()
	var leaf string
	var summary sql.RawBytes // valid until Next: fn must not keep it
	for rows.Next() {
		var seq int64
		var row evidence.PopulationRow
		if err := rows.Scan(&seq, &leaf, &summary, &row.DeployedAt); err != nil {
			return indexError(err)
		}
		row.Summary = summary
		row.Seq = uint64(seq)
		if row.LeafHash, err = hex.DecodeString(leaf); err != nil {
			return fmt.Errorf("ledger index: record %d: leaf hash: %w", seq, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return indexError(rows.Err())
}

// populationQuery is the SQL of q. Its sequence numbers are picked from
// the event time index first (INDEXED BY: the planner would otherwise walk
// the table by seq) and sorted there, a covering index; then the rows are
// read by seq, in table order. Sorting the rows themselves, a kilobyte
// each, would spill a month to temporary files.
func populationQuery(q evidence.Query) (string, []any) {
	where, args := populationWhere(q)
	limit := ""
	if q.Limit > 0 {
		limit = " LIMIT ?"
		args = append(args, q.Limit)
	}
	return `SELECT r.seq, r.leaf_hash, r.summary,
			COALESCE((SELECT MIN(l.event_time) FROM ledger_links l WHERE l.link = r.id AND l.seq < ?), '')
		FROM ledger_records r WHERE r.seq IN (
			SELECT r.seq FROM ledger_records r INDEXED BY ledger_records_event WHERE ` + where + ` ORDER BY r.seq` + limit + `)
		ORDER BY r.seq`, append([]any{int64(q.Size)}, args...)
}

func populationWhere(q evidence.Query) (string, []any) {
	conds := []string{"r.seq < ?", "r.seq >= ?", "r.event_time >= ?", "r.event_time < ?"}
	args := []any{int64(q.Size), int64(q.Start), q.From.UTC().Format(evidence.SortableTime), q.To.UTC().Format(evidence.SortableTime)}
	if q.Repo != "" {
		conds = append(conds, "r.repo = ?")
		args = append(args, q.Repo)
	}
	if len(q.Types) > 0 {
		conds = append(conds, "r.change_type IN (?"+strings.Repeat(", ?", len(q.Types)-1)+")")
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	if q.ExceptionsOnly {
		conds = append(conds, "r.exception != ''")
	}
	return strings.Join(conds, " AND "), args
}

// Closed maps the id of each record whose exception a record among the
// first size closes to the id of the closing record.
func (x *LedgerReader) Closed(ctx context.Context, size uint64) (map[string]string, error) {
	rows, err := x.db.QueryContext(ctx, `SELECT closes, id FROM ledger_records INDEXED BY ledger_records_closes WHERE closes != '' AND seq < ? ORDER BY seq`, int64(size))
	if err != nil {
		return nil, indexError(err)
	}
	defer rows.Close()
	closed := map[string]string{}
	for rows.Next() {
		var target, by string
		if err := rows.Scan(&target, &by); err != nil {
			return nil, indexError(err)
		}
		if _, ok := closed[target]; !ok {
			closed[target] = by
		}
	}
	return closed, indexError(rows.Err())
}

// Lookup returns the sequence number of the record with id.
func (x *LedgerReader) Lookup(ctx context.Context, id string) (uint64, bool, error) {
	var seq int64
	err := x.db.QueryRowContext(ctx, `SELECT seq FROM ledger_records WHERE id = ?`, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, indexError(err)
	}
	return uint64(seq), true, nil
}

// ExceptionOf returns the sequence number of the record with id and its
// exception state as the index settles it: "", open or closed, or closing
// for a record that closes another's.
func (x *LedgerReader) ExceptionOf(ctx context.Context, id string) (seq int64, state string, found bool, err error) {
	err = x.db.QueryRowContext(ctx, `SELECT seq, exception_state FROM ledger_records WHERE id = ?`, id).Scan(&seq, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, indexError(err)
	}
	return seq, state, true, nil
}

// Size is how many records are indexed. Rows are committed in sequence
// order from 0, so it is the highest sequence number plus one, which the
// primary key answers without reading the table.
func (x *LedgerReader) Size(ctx context.Context) (uint64, error) {
	var n int64
	if err := x.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_records`).Scan(&n); err != nil {
		return 0, indexError(err)
	}
	return uint64(n), nil
}

// ObservedAt returns when the record at seq was observed, as the index
// holds it.
func (x *LedgerReader) ObservedAt(ctx context.Context, seq uint64) (string, error) {
	var at string
	if err := x.db.QueryRowContext(ctx, `SELECT observed_at FROM ledger_records WHERE seq = ?`, int64(seq)).Scan(&at); err != nil {
		return "", indexError(err)
	}
	return at, nil
}

// Months counts the first size records by month of event time and change
// type, oldest first.
func (x *LedgerReader) Months(ctx context.Context, size uint64) ([]evidence.MonthCount, error) {
	rows, err := x.db.QueryContext(ctx, `
		SELECT substr(event_time, 1, 7), change_type, COUNT(*), SUM(compliant = 'true')
		FROM ledger_records WHERE seq < ? AND closes = ''
		GROUP BY 1, 2 ORDER BY 1, 2`, int64(size))
	if err != nil {
		return nil, indexError(err)
	}
	defer rows.Close()
	var out []evidence.MonthCount
	for rows.Next() {
		var m evidence.MonthCount
		if err := rows.Scan(&m.Month, &m.ChangeType, &m.Records, &m.Compliant); err != nil {
			return nil, indexError(err)
		}
		out = append(out, m)
	}
	return out, indexError(rows.Err())
}

// LeafHashes returns the leaf hashes of the first n records, 32 bytes
// each, in sequence order.
func (x *LedgerReader) LeafHashes(ctx context.Context, n uint64) ([]byte, error) {
	out := make([]byte, 0, n*32)
	rows, err := x.db.QueryContext(ctx, `SELECT first, hashes FROM ledger_leaves WHERE first < ? ORDER BY first`, int64(n))
	if err != nil {
		return nil, indexError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var first int64
		var hashes sql.RawBytes
		if err := rows.Scan(&first, &hashes); err != nil {
			return nil, indexError(err)
		}
		if uint64(first) != uint64(len(out)/32) || len(hashes)%32 != 0 {
			return nil, fmt.Errorf("ledger index: the leaves from %d are not where %d records end", first, len(out)/32)
		}
		out = append(out, hashes...)
	}
	if err := rows.Err(); err != nil {
		return nil, indexError(err)
	}
	if uint64(len(out)) < n*32 {
		return nil, fmt.Errorf("ledger index: %d leaf hashes indexed, want %d", len(out)/32, n)
	}
	return out[:n*32], nil
}

// indexError wraps a query error, saying what to do about an index that an
// older version wrote.
func indexError(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "no such column") || strings.Contains(err.Error(), "no such table") {
		return fmt.Errorf("ledger index: %w (the data dir was written by an older changegate: start the server once to migrate it)", err)
	}
	return fmt.Errorf("ledger index: %w", err)
}
