package postgres

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// PutGate records the answer to a deployment protection rule, in the
// answering job's transaction. A second answer to the same request keeps
// the first.
func (s *DB) PutGate(ctx context.Context, jtx jobs.Tx, repo string, g change.GateAnswer) error {
	_, err := pgTx(jtx).Exec(ctx, `
		INSERT INTO deployment_gates (repo, deployment_id, environment, sha, state, comment, pulls, delivery_id, answered_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		repo, g.DeploymentID, g.Environment, g.SHA, g.State, g.Comment, ints(g.Pulls), g.DeliveryID, g.AnsweredAt.UTC())
	if err != nil {
		return fmt.Errorf("record gate answer %s deployment %d: %w", repo, g.DeploymentID, err)
	}
	return nil
}

// Gate returns the answer given to a deployment of a repository to an
// environment.
func (s *DB) Gate(ctx context.Context, repo string, deploymentID int64, environment string) (change.GateAnswer, bool, error) {
	g := change.GateAnswer{DeploymentID: deploymentID, Environment: environment}
	err := s.pool.QueryRow(ctx, `
		SELECT sha, state, comment, pulls, delivery_id, answered_at FROM deployment_gates
		WHERE repo = $1 AND deployment_id = $2 AND environment = $3`, repo, deploymentID, environment).
		Scan(&g.SHA, &g.State, &g.Comment, &g.Pulls, &g.DeliveryID, &g.AnsweredAt)
	if errNoRows(err) {
		return change.GateAnswer{}, false, nil
	}
	if err != nil {
		return change.GateAnswer{}, false, fmt.Errorf("read gate answer %s deployment %d: %w", repo, deploymentID, err)
	}
	g.AnsweredAt = g.AnsweredAt.UTC()
	return g, true, nil
}

// PutMergeGroup remembers a merge group for each of its pull requests, in
// the checking job's transaction.
func (s *DB) PutMergeGroup(ctx context.Context, jtx jobs.Tx, repo string, g change.MergeGroup) error {
	_, err := pgTx(jtx).Exec(ctx, `
		INSERT INTO merge_groups (repo, pr, head_sha, head_ref, base_sha, pulls)
		SELECT $1, pr, $2, $3, $4, $5 FROM unnest($5::integer[]) AS pr
		ON CONFLICT DO NOTHING`, repo, g.HeadSHA, g.HeadRef, g.BaseSHA, ints(g.Pulls))
	if err != nil {
		return fmt.Errorf("record merge group %s@%s: %w", repo, g.HeadSHA, err)
	}
	return nil
}

// MergeGroupOf returns the merge group of a pull request whose head is
// sha when one is known, else the last one checked for it.
func (s *DB) MergeGroupOf(ctx context.Context, repo string, pr int, sha string) (change.MergeGroup, bool, error) {
	var g change.MergeGroup
	err := s.pool.QueryRow(ctx, `
		SELECT head_sha, head_ref, base_sha, pulls FROM merge_groups WHERE repo = $1 AND pr = $2
		ORDER BY head_sha = $3 DESC, seen DESC LIMIT 1`, repo, pr, sha).Scan(&g.HeadSHA, &g.HeadRef, &g.BaseSHA, &g.Pulls)
	if errNoRows(err) {
		return change.MergeGroup{}, false, nil
	}
	if err != nil {
		return change.MergeGroup{}, false, fmt.Errorf("read merge group of %s#%d: %w", repo, pr, err)
	}
	return g, true, nil
}

// ints is ns for an integer[] column, never NULL.
func ints(ns []int) []int {
	if ns == nil {
		return []int{}
	}
	return ns
}

// PutDeploymentReview records a review of a deployment of sha, in the
// recording job's transaction; a redelivery records nothing more.
func (s *DB) PutDeploymentReview(ctx context.Context, jtx jobs.Tx, repo, sha, deliveryID string, r change.DeploymentReview) error {
	_, err := pgTx(jtx).Exec(ctx, `
		INSERT INTO deployment_reviews (repo, sha, environment, state, reviewer, comment, at, delivery_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		repo, sha, r.Environment, r.State, r.Reviewer, r.Comment, r.At.UTC(), deliveryID)
	if err != nil {
		return fmt.Errorf("record deployment review %s@%s: %w", repo, sha, err)
	}
	return nil
}

// DeploymentReviews lists the reviews of deployments of sha to an
// environment, oldest first.
func (s *DB) DeploymentReviews(ctx context.Context, repo, sha, environment string) ([]change.DeploymentReview, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT state, reviewer, comment, at FROM deployment_reviews
		WHERE repo = $1 AND sha = $2 AND environment = $3 ORDER BY at, seq`, repo, sha, environment)
	if err != nil {
		return nil, fmt.Errorf("read deployment reviews %s@%s: %w", repo, sha, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (change.DeploymentReview, error) {
		r := change.DeploymentReview{Environment: environment}
		err := row.Scan(&r.State, &r.Reviewer, &r.Comment, &r.At)
		r.At = r.At.UTC()
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read deployment reviews %s@%s: %w", repo, sha, err)
	}
	return out, nil
}

// KnownDeliveries says which of ids are acknowledged deliveries.
func (s *DB) KnownDeliveries(ctx context.Context, ids []string) (map[string]bool, error) {
	return s.present(ctx, `SELECT id FROM deliveries WHERE id = ANY($1)`, ids)
}

// Redelivered says which of guids changegate asked GitHub to redeliver.
func (s *DB) Redelivered(ctx context.Context, guids []string) (map[string]bool, error) {
	return s.present(ctx, `SELECT guid FROM redeliveries WHERE guid = ANY($1)`, guids)
}

// present runs a membership query whose last argument is the keys.
func (s *DB) present(ctx context.Context, query string, args ...any) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out, nil
}

// SweepCursor is the newest delivery id the last finished sweep saw; 0
// before the first.
func (s *DB) SweepCursor(ctx context.Context) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT value FROM sweep_state WHERE name = 'cursor'`).Scan(&v)
	if errNoRows(err) {
		return 0, nil
	}
	return v, err
}

// RecordSweep keeps, in tx, the redeliveries a sweep asked for and, when
// it finished, its cursor (0 keeps the old one).
func (s *DB) RecordSweep(ctx context.Context, jtx jobs.Tx, cursor int64, asked []store.Redelivery, now time.Time) error {
	tx := pgTx(jtx)
	for _, r := range asked {
		if _, err := tx.Exec(ctx, `INSERT INTO redeliveries (guid, delivery_id, event, requested_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (guid) DO NOTHING`, r.GUID, r.DeliveryID, r.Event, now.UTC()); err != nil {
			return fmt.Errorf("record redelivery: %w", err)
		}
	}
	if cursor == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO sweep_state (name, value) VALUES ('cursor', $1)
		ON CONFLICT (name) DO UPDATE SET value = GREATEST(sweep_state.value, excluded.value)`, cursor)
	return err
}

// ReconcilePoint is the newest commit reconciliation checked on a branch.
func (s *DB) ReconcilePoint(ctx context.Context, repo, branch string) (string, time.Time, bool, error) {
	var sha string
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT sha, at FROM reconcile_points WHERE repo = $1 AND branch = $2`, repo, branch).Scan(&sha, &at)
	if errNoRows(err) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, err
	}
	return sha, at.UTC(), true, nil
}

// SetReconcilePoint moves a branch's point.
func (s *DB) SetReconcilePoint(ctx context.Context, repo, branch, sha string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO reconcile_points (repo, branch, sha, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (repo, branch) DO UPDATE SET sha = excluded.sha, at = excluded.at`, repo, branch, sha, at.UTC())
	return err
}

// RecordedCommits says which of shas a change record covers: as its
// subject, or as another commit of a direct push.
func (s *DB) RecordedCommits(ctx context.Context, repo string, shas []string) (map[string]bool, error) {
	out, err := s.present(ctx, `SELECT sha FROM ledger_records WHERE repo = $1 AND sha = ANY($2)`, repo, shas)
	if err != nil {
		return nil, fmt.Errorf("recorded commits: %w", err)
	}
	pushed, err := s.present(ctx, `SELECT sha FROM pushed_commits WHERE repo = $1 AND sha = ANY($2)`, repo, shas)
	if err != nil {
		return nil, fmt.Errorf("recorded commits: %w", err)
	}
	maps.Copy(out, pushed)
	return out, nil
}

// MarkPushed notes the commits a direct-push record covers.
func (s *DB) MarkPushed(ctx context.Context, repo, recordID string, shas []string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pushed_commits (repo, sha, record_id)
		SELECT $1, sha, $2 FROM unnest($3::text[]) AS sha ON CONFLICT DO NOTHING`, repo, recordID, shas)
	return err
}

// HasCheckRun says whether changegate wrote its check on a commit.
func (s *DB) HasCheckRun(ctx context.Context, repo, sha string) (bool, error) {
	_, ok, err := s.CheckRun(ctx, repo, sha)
	return ok, err
}

// ControlState reads a target's state.
func (s *DB) ControlState(ctx context.Context, repo, target string) (store.ControlState, bool, error) {
	rows, err := s.controlStates(ctx, `WHERE repo = $1 AND target = $2`, repo, target)
	if err != nil || len(rows) == 0 {
		return store.ControlState{}, false, err
	}
	return rows[0], true, nil
}

// PutControlState keeps a target's state.
func (s *DB) PutControlState(ctx context.Context, c store.ControlState) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO control_state (repo, target, enforced, detail, since, checked_at, record_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (repo, target) DO UPDATE SET enforced = excluded.enforced, detail = excluded.detail, since = excluded.since,
			checked_at = excluded.checked_at, record_id = excluded.record_id`,
		c.Repo, c.Target, c.Enforced, c.Detail, c.Since.UTC(), c.CheckedAt.UTC(), c.RecordID)
	return err
}

// Coverage lists every target's state, by repository and target.
func (s *DB) Coverage(ctx context.Context) ([]store.ControlState, error) {
	return s.controlStates(ctx, `ORDER BY repo COLLATE "C", target COLLATE "C"`)
}

func (s *DB) controlStates(ctx context.Context, where string, args ...any) ([]store.ControlState, error) {
	rows, err := s.pool.Query(ctx, `SELECT repo, target, enforced, detail, since, checked_at, record_id FROM control_state `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ControlState, error) {
		var c store.ControlState
		err := r.Scan(&c.Repo, &c.Target, &c.Enforced, &c.Detail, &c.Since, &c.CheckedAt, &c.RecordID)
		c.Since, c.CheckedAt = c.Since.UTC(), c.CheckedAt.UTC()
		return c, err
	})
}

// SwapServerState sets key to value and returns what it was ("" if
// unset). The row is locked while it is swapped, so replicas that start
// together each see the value the one before them left.
func (s *DB) SwapServerState(ctx context.Context, key, value string) (string, error) {
	var old string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO server_state (key, value) VALUES ($1, '') ON CONFLICT DO NOTHING`, key); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT value FROM server_state WHERE key = $1 FOR UPDATE`, key).Scan(&old); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE server_state SET value = $2 WHERE key = $1`, key, value)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("server state %s: %w", key, err)
	}
	return old, nil
}

// WakeScheduledJobs makes the jobs of the given kinds that wait for a later
// time available now.
func (s *DB) WakeScheduledJobs(ctx context.Context, kinds []string) (int64, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE state = 'scheduled' AND kind = ANY($1)`, kinds)
	if err != nil {
		return 0, fmt.Errorf("wake waiting jobs: %w", err)
	}
	return tag.RowsAffected(), nil
}
