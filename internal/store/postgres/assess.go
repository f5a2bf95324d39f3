package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// LastEvaluated returns when the latest completed evaluation of a pull
// request started.
func (s *DB) LastEvaluated(ctx context.Context, repo string, number int) (time.Time, bool, error) {
	var last *time.Time
	err := s.pool.QueryRow(ctx, `SELECT evaluated_at FROM pull_requests WHERE repo = $1 AND number = $2`, repo, number).Scan(&last)
	if errNoRows(err) || (err == nil && last == nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read evaluation of %s#%d: %w", repo, number, err)
	}
	return last.UTC(), true, nil
}

// IndexPullRequest records a pull request's head, state and linked keys,
// and when the evaluation that saw them started.
func (s *DB) IndexPullRequest(ctx context.Context, jtx jobs.Tx, pr store.PullRequest, now time.Time) error {
	tx := pgTx(jtx)
	var evaluated *time.Time
	if !pr.EvaluatedAt.IsZero() {
		t := pr.EvaluatedAt.UTC()
		evaluated = &t
	}
	// An evaluation that started before the recorded one read older facts:
	// committed after it (on another replica, or slowly), it changes
	// nothing.
	tag, err := tx.Exec(ctx, `
		INSERT INTO pull_requests (repo, number, installation_id, head_sha, base_ref, state, evaluated_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (repo, number) DO UPDATE SET
			installation_id = excluded.installation_id,
			head_sha = excluded.head_sha,
			base_ref = excluded.base_ref,
			state = excluded.state,
			evaluated_at = COALESCE(excluded.evaluated_at, pull_requests.evaluated_at),
			updated_at = excluded.updated_at
		WHERE excluded.evaluated_at IS NULL OR pull_requests.evaluated_at IS NULL
			OR excluded.evaluated_at >= pull_requests.evaluated_at`,
		pr.Repo, pr.Number, pr.InstallationID, pr.HeadSHA, pr.BaseRef, pr.State, evaluated, now.UTC())
	if err != nil {
		return fmt.Errorf("index %s#%d: %w", pr.Repo, pr.Number, err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM pull_request_keys WHERE repo = $1 AND number = $2`, pr.Repo, pr.Number)
	if pr.State == "open" && len(pr.Keys) > 0 {
		b.Queue(`INSERT INTO pull_request_keys (key, repo, number) SELECT k, $2, $3 FROM unnest($1::text[]) AS k ON CONFLICT DO NOTHING`,
			pr.Keys, pr.Repo, pr.Number)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("index %s#%d: %w", pr.Repo, pr.Number, err)
	}
	return nil
}

// OpenPullRequestsWithHead lists open pull requests whose head is sha.
func (s *DB) OpenPullRequestsWithHead(ctx context.Context, repo, sha string) ([]store.PullRequest, error) {
	return s.queryPRs(ctx, `
		SELECT repo, number, installation_id, head_sha, base_ref, state FROM pull_requests
		WHERE repo = $1 AND head_sha = $2 AND state = 'open' ORDER BY number`, repo, sha)
}

// OpenPullRequestsOfOwner lists the installation's open pull requests in
// the repositories of owner (a login, matched without case).
func (s *DB) OpenPullRequestsOfOwner(ctx context.Context, installation int64, owner string) ([]store.PullRequest, error) {
	return s.queryPRs(ctx, `
		SELECT repo, number, installation_id, head_sha, base_ref, state FROM pull_requests
		WHERE installation_id = $1 AND state = 'open' AND lower(split_part(repo, '/', 1)) = lower($2)
		ORDER BY repo COLLATE "C", number`, installation, owner)
}

// OpenPullRequestsWithKey lists open pull requests that name a Jira key.
func (s *DB) OpenPullRequestsWithKey(ctx context.Context, key string) ([]store.PullRequest, error) {
	return s.queryPRs(ctx, `
		SELECT p.repo, p.number, p.installation_id, p.head_sha, p.base_ref, p.state
		FROM pull_request_keys k JOIN pull_requests p ON p.repo = k.repo AND p.number = k.number
		WHERE k.key = $1 AND p.state = 'open' ORDER BY p.repo COLLATE "C", p.number`, key)
}

func (s *DB) queryPRs(ctx context.Context, q string, args ...any) ([]store.PullRequest, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list pull requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.PullRequest, error) {
		var p store.PullRequest
		err := r.Scan(&p.Repo, &p.Number, &p.InstallationID, &p.HeadSHA, &p.BaseRef, &p.State)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list pull requests: %w", err)
	}
	return out, nil
}

// LaterCommitJobs returns the evaluate_sha jobs for repo@sha that wait or
// run and were queued after queuedAt, on any replica.
func (s *DB) LaterCommitJobs(ctx context.Context, repo, sha string, queuedAt time.Time) ([]jobs.EvaluateSHA, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT args FROM river_job
		WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND kind = $1
			AND args->>'repo' = $2 AND args->>'sha' = $3`, jobs.KindEvaluateSHA, repo, sha)
	if err != nil {
		return nil, fmt.Errorf("later jobs for %s@%s: %w", repo, sha, err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[jobs.EvaluateSHA])
	if err != nil {
		return nil, fmt.Errorf("later jobs for %s@%s: %w", repo, sha, err)
	}
	var out []jobs.EvaluateSHA
	for _, j := range all {
		if j.QueuedAt.After(queuedAt) {
			out = append(out, j)
		}
	}
	return out, nil
}

// CheckRun returns the check run remembered for repo at sha.
func (s *DB) CheckRun(ctx context.Context, repo, sha string) (store.CheckRun, bool, error) {
	var c store.CheckRun
	err := s.pool.QueryRow(ctx, `SELECT check_run_id, digest FROM check_runs WHERE repo = $1 AND sha = $2`, repo, sha).Scan(&c.ID, &c.Digest)
	if errNoRows(err) {
		return store.CheckRun{}, false, nil
	}
	if err != nil {
		return store.CheckRun{}, false, fmt.Errorf("read check run of %s@%s: %w", repo, sha, err)
	}
	return c, true, nil
}

// PutCheckRun remembers the check run written for repo at sha.
func (s *DB) PutCheckRun(ctx context.Context, repo, sha string, c store.CheckRun, now time.Time) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO check_runs (repo, sha, check_run_id, digest, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (repo, sha) DO UPDATE SET check_run_id = excluded.check_run_id, digest = excluded.digest, updated_at = excluded.updated_at`,
		repo, sha, c.ID, c.Digest, now.UTC())
	if err != nil {
		return fmt.Errorf("remember check run of %s@%s: %w", repo, sha, err)
	}
	return nil
}
