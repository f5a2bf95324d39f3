package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/changegate/changegate/internal/evidence"
)

// LedgerReader answers the auditor's queries from the ledger index.
type LedgerReader struct{ db *DB }

// LedgerReader returns the store's auditor queries.
func (s *DB) LedgerReader() *LedgerReader { return &LedgerReader{db: s} }

// Population calls fn with each record q selects, in sequence order.
func (x *LedgerReader) Population(ctx context.Context, q evidence.Query, fn func(evidence.PopulationRow) error) error {
	query, args := populationQuery(q)
	rows, err := x.db.pool.Query(ctx, query, args...)
	if err != nil {
		return indexError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var leaf, summary string
		var row evidence.PopulationRow
		if err := rows.Scan(&seq, &leaf, &summary, &row.DeployedAt); err != nil {
			return indexError(err)
		}
		row.Seq, row.Summary = uint64(seq), []byte(summary)
		if row.LeafHash, err = hex.DecodeString(leaf); err != nil {
			return fmt.Errorf("ledger index: record %d: leaf hash: %w", seq, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return indexError(rows.Err())
}

// populationQuery is the SQL of q, with its first deployment's event time
// from the links.
func populationQuery(q evidence.Query) (string, []any) {
	args := []any{int64(q.Size)}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	conds := []string{"r.seq < $1", "r.seq >= " + arg(int64(q.Start)),
		"r.event_time >= " + arg(q.From.UTC().Format(evidence.SortableTime)),
		"r.event_time < " + arg(q.To.UTC().Format(evidence.SortableTime))}
	if q.Repo != "" {
		conds = append(conds, "r.repo = "+arg(q.Repo))
	}
	if len(q.Types) > 0 {
		conds = append(conds, "r.change_type = ANY("+arg(q.Types)+")")
	}
	if q.ExceptionsOnly {
		conds = append(conds, "r.exception <> ''")
	}
	limit := ""
	if q.Limit > 0 {
		limit = " LIMIT " + arg(q.Limit)
	}
	return `SELECT r.seq, r.leaf_hash, r.summary,
			COALESCE((SELECT MIN(l.event_time) FROM ledger_links l WHERE l.link = r.id AND l.seq < $1), '')
		FROM ledger_records r WHERE ` + strings.Join(conds, " AND ") + ` ORDER BY r.seq` + limit, args
}

// Closed maps the id of each record whose exception a record among the
// first size closes to the id of the closing record.
func (x *LedgerReader) Closed(ctx context.Context, size uint64) (map[string]string, error) {
	rows, err := x.db.pool.Query(ctx, `SELECT closes, id FROM ledger_records WHERE closes <> '' AND seq < $1 ORDER BY seq`, int64(size))
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
	err := x.db.pool.QueryRow(ctx, `SELECT seq FROM ledger_records WHERE id = $1`, id).Scan(&seq)
	if errNoRows(err) {
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
	err = x.db.pool.QueryRow(ctx, `SELECT seq, exception_state FROM ledger_records WHERE id = $1`, id).Scan(&seq, &state)
	if errNoRows(err) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, indexError(err)
	}
	return seq, state, true, nil
}

// Size is how many records are indexed: rows are committed in sequence
// order from 0.
func (x *LedgerReader) Size(ctx context.Context) (uint64, error) {
	var n int64
	if err := x.db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_records`).Scan(&n); err != nil {
		return 0, indexError(err)
	}
	return uint64(n), nil
}

// ObservedAt returns when the record at seq was observed, as the index
// holds it.
func (x *LedgerReader) ObservedAt(ctx context.Context, seq uint64) (string, error) {
	var at string
	if err := x.db.pool.QueryRow(ctx, `SELECT observed_at FROM ledger_records WHERE seq = $1`, int64(seq)).Scan(&at); err != nil {
		return "", indexError(err)
	}
	return at, nil
}

// Months counts the first size records by month of event time and change
// type, oldest first.
func (x *LedgerReader) Months(ctx context.Context, size uint64) ([]evidence.MonthCount, error) {
	rows, err := x.db.pool.Query(ctx, `
		SELECT substr(event_time, 1, 7), change_type, COUNT(*)::int, (COUNT(*) FILTER (WHERE compliant = 'true'))::int
		FROM ledger_records WHERE seq < $1 AND closes = ''
		GROUP BY 1, 2 ORDER BY substr(event_time, 1, 7) COLLATE "C", change_type COLLATE "C"`, int64(size))
	if err != nil {
		return nil, indexError(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (evidence.MonthCount, error) {
		var m evidence.MonthCount
		err := r.Scan(&m.Month, &m.ChangeType, &m.Records, &m.Compliant)
		return m, err
	})
	return out, indexError(err)
}

// LeafHashes returns the leaf hashes of the first n records, 32 bytes
// each, in sequence order.
func (x *LedgerReader) LeafHashes(ctx context.Context, n uint64) ([]byte, error) {
	out := make([]byte, 0, n*32)
	rows, err := x.db.pool.Query(ctx, `SELECT first, hashes FROM ledger_leaves WHERE first < $1 ORDER BY first`, int64(n))
	if err != nil {
		return nil, indexError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var first int64
		var hashes []byte
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

func indexError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ledger index: %w", err)
}
