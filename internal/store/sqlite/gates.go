package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
)

// PutGate records the answer to a deployment protection rule, in the
// answering job's transaction. A second answer to the same request keeps
// the first.
func (s *DB) PutGate(ctx context.Context, jtx jobs.Tx, repo string, g change.GateAnswer) error {
	tx := sqlTx(jtx)
	_, err := tx.ExecContext(ctx, `
		INSERT INTO deployment_gates (repo, deployment_id, environment, sha, state, comment, pulls, delivery_id, answered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		repo, g.DeploymentID, g.Environment, g.SHA, g.State, g.Comment, joinInts(g.Pulls), g.DeliveryID, ts(g.AnsweredAt))
	if err != nil {
		return fmt.Errorf("record gate answer %s deployment %d: %w", repo, g.DeploymentID, err)
	}
	return nil
}

// Gate returns the answer given to a deployment of a repository to an
// environment.
func (s *DB) Gate(ctx context.Context, repo string, deploymentID int64, environment string) (change.GateAnswer, bool, error) {
	g := change.GateAnswer{DeploymentID: deploymentID, Environment: environment}
	var pulls, answered string
	err := s.db.QueryRowContext(ctx, `
		SELECT sha, state, comment, pulls, delivery_id, answered_at FROM deployment_gates
		WHERE repo = ? AND deployment_id = ? AND environment = ?`, repo, deploymentID, environment).
		Scan(&g.SHA, &g.State, &g.Comment, &pulls, &g.DeliveryID, &answered)
	if errors.Is(err, sql.ErrNoRows) {
		return change.GateAnswer{}, false, nil
	}
	if err != nil {
		return change.GateAnswer{}, false, fmt.Errorf("read gate answer %s deployment %d: %w", repo, deploymentID, err)
	}
	g.Pulls = splitInts(pulls)
	g.AnsweredAt, _ = time.Parse(time.RFC3339Nano, answered)
	return g, true, nil
}

// PutMergeGroup remembers a merge group for each of its pull requests, in
// the checking job's transaction.
func (s *DB) PutMergeGroup(ctx context.Context, jtx jobs.Tx, repo string, g change.MergeGroup) error {
	tx := sqlTx(jtx)
	pulls := joinInts(g.Pulls)
	for _, pr := range g.Pulls {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO merge_groups (repo, pr, head_sha, head_ref, base_sha, pulls, seen)
			VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seen), 0) + 1 FROM merge_groups))
			ON CONFLICT DO NOTHING`, repo, pr, g.HeadSHA, g.HeadRef, g.BaseSHA, pulls)
		if err != nil {
			return fmt.Errorf("record merge group %s@%s: %w", repo, g.HeadSHA, err)
		}
	}
	return nil
}

// MergeGroupOf returns the merge group of a pull request whose head is
// sha when one is known, else the last one checked for it.
func (s *DB) MergeGroupOf(ctx context.Context, repo string, pr int, sha string) (change.MergeGroup, bool, error) {
	var g change.MergeGroup
	var pulls string
	err := s.db.QueryRowContext(ctx, `
		SELECT head_sha, head_ref, base_sha, pulls FROM merge_groups WHERE repo = ? AND pr = ?
		ORDER BY head_sha = ? DESC, seen DESC LIMIT 1`, repo, pr, sha).Scan(&g.HeadSHA, &g.HeadRef, &g.BaseSHA, &pulls)
	if errors.Is(err, sql.ErrNoRows) {
		return change.MergeGroup{}, false, nil
	}
	if err != nil {
		return change.MergeGroup{}, false, fmt.Errorf("read merge group of %s#%d: %w", repo, pr, err)
	}
	g.Pulls = splitInts(pulls)
	return g, true, nil
}

func joinInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func splitInts(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(p); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// PutDeploymentReview records a review of a deployment of sha, in the
// recording job's transaction; a redelivery records nothing more.
func (s *DB) PutDeploymentReview(ctx context.Context, jtx jobs.Tx, repo, sha, deliveryID string, r change.DeploymentReview) error {
	tx := sqlTx(jtx)
	_, err := tx.ExecContext(ctx, `
		INSERT INTO deployment_reviews (repo, sha, environment, state, reviewer, comment, at, delivery_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		repo, sha, r.Environment, r.State, r.Reviewer, r.Comment, ts(r.At), deliveryID)
	if err != nil {
		return fmt.Errorf("record deployment review %s@%s: %w", repo, sha, err)
	}
	return nil
}

// DeploymentReviews lists the reviews of deployments of sha to an
// environment, oldest first.
func (s *DB) DeploymentReviews(ctx context.Context, repo, sha, environment string) ([]change.DeploymentReview, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT state, reviewer, comment, at FROM deployment_reviews
		WHERE repo = ? AND sha = ? AND environment = ? ORDER BY at, rowid`, repo, sha, environment)
	if err != nil {
		return nil, fmt.Errorf("read deployment reviews %s@%s: %w", repo, sha, err)
	}
	defer rows.Close()
	var out []change.DeploymentReview
	for rows.Next() {
		r := change.DeploymentReview{Environment: environment}
		var at string
		if err := rows.Scan(&r.State, &r.Reviewer, &r.Comment, &at); err != nil {
			return nil, fmt.Errorf("read deployment reviews %s@%s: %w", repo, sha, err)
		}
		r.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, r)
	}
	return out, rows.Err()
}
