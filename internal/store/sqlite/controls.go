package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/changegate/changegate/internal/store"
)

// ControlState is the store-wide row.
type ControlState = store.ControlState

// ControlState reads a target's state.
func (s *DB) ControlState(ctx context.Context, repo, target string) (ControlState, bool, error) {
	rows, err := controlStates(ctx, s.db, `WHERE repo = ? AND target = ?`, repo, target)
	if err != nil || len(rows) == 0 {
		return ControlState{}, false, err
	}
	return rows[0], true, nil
}

// PutControlState keeps a target's state.
func (s *DB) PutControlState(ctx context.Context, c ControlState) error {
	return s.DurableTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO control_state (repo, target, enforced, detail, since, checked_at, record_id) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (repo, target) DO UPDATE SET enforced = excluded.enforced, detail = excluded.detail, since = excluded.since,
				checked_at = excluded.checked_at, record_id = excluded.record_id`,
			c.Repo, c.Target, c.Enforced, c.Detail, c.Since.UTC().Format(time.RFC3339Nano), c.CheckedAt.UTC().Format(time.RFC3339Nano), c.RecordID)
		return err
	})
}

// Coverage lists every target's state, by repository and target.
func (s *DB) Coverage(ctx context.Context) ([]ControlState, error) { return Coverage(ctx, s.db) }

// Coverage lists every target's state, by repository and target, from a
// data dir's store (OpenReadOnly).
func Coverage(ctx context.Context, db *sql.DB) ([]ControlState, error) {
	return controlStates(ctx, db, `ORDER BY repo, target`)
}

func controlStates(ctx context.Context, db *sql.DB, where string, args ...any) ([]ControlState, error) {
	rows, err := db.QueryContext(ctx, `SELECT repo, target, enforced, detail, since, checked_at, record_id FROM control_state `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ControlState
	for rows.Next() {
		var c ControlState
		var since, checked string
		if err := rows.Scan(&c.Repo, &c.Target, &c.Enforced, &c.Detail, &since, &checked, &c.RecordID); err != nil {
			return nil, err
		}
		var e1, e2 error
		c.Since, e1 = time.Parse(time.RFC3339Nano, since)
		c.CheckedAt, e2 = time.Parse(time.RFC3339Nano, checked)
		if err := errors.Join(e1, e2); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
