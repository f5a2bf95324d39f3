package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// PullRequest is the store-wide row.
type PullRequest = store.PullRequest

// LastEvaluated returns when the latest completed evaluation of a pull
// request started.
func (s *DB) LastEvaluated(ctx context.Context, repo string, number int) (time.Time, bool, error) {
	var last sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT evaluated_at FROM pull_requests WHERE repo = ? AND number = ?`, repo, number).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !last.Valid) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read evaluation of %s#%d: %w", repo, number, err)
	}
	t, err := time.Parse(time.RFC3339Nano, last.String)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read evaluation of %s#%d: %w", repo, number, err)
	}
	return t, true, nil
}

// IndexPullRequest records a pull request's head, state and linked keys,
// and when the evaluation that saw them started.
func (s *DB) IndexPullRequest(ctx context.Context, jtx jobs.Tx, pr PullRequest, now time.Time) error {
	tx := sqlTx(jtx)
	var evaluated sql.NullString
	if !pr.EvaluatedAt.IsZero() {
		evaluated = sql.NullString{String: ts(pr.EvaluatedAt), Valid: true}
	}
	// An evaluation that started before the recorded one read older facts:
	// committed after it, it changes nothing.
	res, err := tx.ExecContext(ctx, `
		INSERT INTO pull_requests (repo, number, installation_id, head_sha, base_ref, state, evaluated_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repo, number) DO UPDATE SET
			installation_id = excluded.installation_id,
			head_sha = excluded.head_sha,
			base_ref = excluded.base_ref,
			state = excluded.state,
			evaluated_at = COALESCE(excluded.evaluated_at, evaluated_at),
			updated_at = excluded.updated_at
		WHERE excluded.evaluated_at IS NULL OR pull_requests.evaluated_at IS NULL
			OR julianday(excluded.evaluated_at) >= julianday(pull_requests.evaluated_at)`,
		pr.Repo, pr.Number, pr.InstallationID, pr.HeadSHA, pr.BaseRef, pr.State, evaluated, ts(now))
	if err != nil {
		return fmt.Errorf("index %s#%d: %w", pr.Repo, pr.Number, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pull_request_keys WHERE repo = ? AND number = ?`, pr.Repo, pr.Number); err != nil {
		return fmt.Errorf("index keys of %s#%d: %w", pr.Repo, pr.Number, err)
	}
	if pr.State != "open" {
		return nil
	}
	for _, k := range pr.Keys {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO pull_request_keys (key, repo, number) VALUES (?, ?, ?)`, k, pr.Repo, pr.Number); err != nil {
			return fmt.Errorf("index keys of %s#%d: %w", pr.Repo, pr.Number, err)
		}
	}
	return nil
}

// OpenPullRequestsWithHead lists open pull requests whose head is sha.
func (s *DB) OpenPullRequestsWithHead(ctx context.Context, repo, sha string) ([]PullRequest, error) {
	return s.queryPRs(ctx, `
		SELECT repo, number, installation_id, head_sha, base_ref, state FROM pull_requests
		WHERE repo = ? AND head_sha = ? AND state = 'open' ORDER BY number`, repo, sha)
}

// OpenPullRequestsOfOwner lists the installation's open pull requests in
// the repositories of owner (a login, matched without case).
func (s *DB) OpenPullRequestsOfOwner(ctx context.Context, installation int64, owner string) ([]PullRequest, error) {
	return s.queryPRs(ctx, `
		SELECT repo, number, installation_id, head_sha, base_ref, state FROM pull_requests
		WHERE installation_id = ? AND state = 'open' AND lower(substr(repo, 1, length(?) + 1)) = lower(? || '/')
		ORDER BY repo, number`, installation, owner, owner)
}

// LaterCommitJobs returns the evaluate_sha jobs for repo@sha that wait or
// run and were queued after queuedAt: each will evaluate the commit's pull
// requests with facts at least as fresh as an earlier job would read. The
// state index finds the unfinished jobs; finished ones are never read.
func (s *DB) LaterCommitJobs(ctx context.Context, repo, sha string, queuedAt time.Time) ([]jobs.EvaluateSHA, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT json(args) FROM river_job
		WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND kind = ?
			AND json_extract(args, '$.repo') = ? AND json_extract(args, '$.sha') = ?`, jobs.KindEvaluateSHA, repo, sha)
	if err != nil {
		return nil, fmt.Errorf("later jobs for %s@%s: %w", repo, sha, err)
	}
	defer rows.Close()
	var out []jobs.EvaluateSHA
	for rows.Next() {
		var args []byte
		if err := rows.Scan(&args); err != nil {
			return nil, fmt.Errorf("later jobs for %s@%s: %w", repo, sha, err)
		}
		var j jobs.EvaluateSHA
		if err := json.Unmarshal(args, &j); err != nil {
			return nil, fmt.Errorf("later jobs for %s@%s: %w", repo, sha, err)
		}
		if j.QueuedAt.After(queuedAt) {
			out = append(out, j)
		}
	}
	return out, rows.Err()
}

// OpenPullRequestsWithKey lists open pull requests that name a Jira key.
func (s *DB) OpenPullRequestsWithKey(ctx context.Context, key string) ([]PullRequest, error) {
	return s.queryPRs(ctx, `
		SELECT p.repo, p.number, p.installation_id, p.head_sha, p.base_ref, p.state
		FROM pull_request_keys k JOIN pull_requests p ON p.repo = k.repo AND p.number = k.number
		WHERE k.key = ? AND p.state = 'open' ORDER BY p.repo, p.number`, key)
}

func (s *DB) queryPRs(ctx context.Context, q string, args ...any) ([]PullRequest, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list pull requests: %w", err)
	}
	defer rows.Close()
	var out []PullRequest
	for rows.Next() {
		var p PullRequest
		if err := rows.Scan(&p.Repo, &p.Number, &p.InstallationID, &p.HeadSHA, &p.BaseRef, &p.State); err != nil {
			return nil, fmt.Errorf("list pull requests: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CheckRun is the store-wide row.
type CheckRun = store.CheckRun

// CheckRun returns the check run remembered for repo at sha.
func (s *DB) CheckRun(ctx context.Context, repo, sha string) (CheckRun, bool, error) {
	var c CheckRun
	err := s.db.QueryRowContext(ctx, `SELECT check_run_id, digest FROM check_runs WHERE repo = ? AND sha = ?`, repo, sha).Scan(&c.ID, &c.Digest)
	if errors.Is(err, sql.ErrNoRows) {
		return CheckRun{}, false, nil
	}
	if err != nil {
		return CheckRun{}, false, fmt.Errorf("read check run of %s@%s: %w", repo, sha, err)
	}
	return c, true, nil
}

// PutCheckRun remembers the check run written for repo at sha.
func (s *DB) PutCheckRun(ctx context.Context, repo, sha string, c CheckRun, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO check_runs (repo, sha, check_run_id, digest, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (repo, sha) DO UPDATE SET check_run_id = excluded.check_run_id, digest = excluded.digest, updated_at = excluded.updated_at`,
		repo, sha, c.ID, c.Digest, ts(now))
	if err != nil {
		return fmt.Errorf("remember check run of %s@%s: %w", repo, sha, err)
	}
	return nil
}
