package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"time"
)

// ReconcilePoint is the newest commit reconciliation checked on a branch.
func (s *DB) ReconcilePoint(ctx context.Context, repo, branch string) (string, time.Time, bool, error) {
	var sha, at string
	err := s.db.QueryRowContext(ctx, `SELECT sha, at FROM reconcile_points WHERE repo = ? AND branch = ?`, repo, branch).Scan(&sha, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, err
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	return sha, t, err == nil, err
}

// SetReconcilePoint moves a branch's point.
func (s *DB) SetReconcilePoint(ctx context.Context, repo, branch, sha string, at time.Time) error {
	return s.DurableTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO reconcile_points (repo, branch, sha, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo, branch) DO UPDATE SET sha = excluded.sha, at = excluded.at`, repo, branch, sha, at.UTC().Format(time.RFC3339Nano))
		return err
	})
}

// RecordedCommits says which of shas a change record covers: as its
// subject (a merge, a push's head, an unrecorded commit), or as another
// commit of a direct push.
func (s *DB) RecordedCommits(ctx context.Context, repo string, shas []string) (map[string]bool, error) {
	out, err := s.present(ctx, "SELECT sha FROM ledger_records WHERE repo = ? AND sha IN (%s)", []any{repo}, shas)
	if err != nil {
		return nil, fmt.Errorf("recorded commits: %w", err)
	}
	pushed, err := s.present(ctx, "SELECT sha FROM pushed_commits WHERE repo = ? AND sha IN (%s)", []any{repo}, shas)
	if err != nil {
		return nil, fmt.Errorf("recorded commits: %w", err)
	}
	maps.Copy(out, pushed)
	return out, nil
}

// MarkPushed notes the commits a direct-push record covers.
func (s *DB) MarkPushed(ctx context.Context, repo, recordID string, shas []string) error {
	return s.DurableTx(ctx, func(tx *sql.Tx) error {
		for _, sha := range shas {
			if _, err := tx.ExecContext(ctx, `INSERT INTO pushed_commits (repo, sha, record_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, repo, sha, recordID); err != nil {
				return err
			}
		}
		return nil
	})
}

// HasCheckRun says whether changegate wrote its check on a commit.
func (s *DB) HasCheckRun(ctx context.Context, repo, sha string) (bool, error) {
	_, ok, err := s.CheckRun(ctx, repo, sha)
	return ok, err
}
