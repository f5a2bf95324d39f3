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
)

// PutGate records the answer to a deployment protection rule, in the
// answering job's transaction. A second answer to the same request keeps
// the first.
func (s *DB) PutGate(ctx context.Context, tx *sql.Tx, repo string, g change.GateAnswer) error {
	pulls := make([]string, len(g.Pulls))
	for i, n := range g.Pulls {
		pulls[i] = strconv.Itoa(n)
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO deployment_gates (repo, deployment_id, environment, sha, state, comment, pulls, delivery_id, answered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		repo, g.DeploymentID, g.Environment, g.SHA, g.State, g.Comment, strings.Join(pulls, ","), g.DeliveryID, ts(g.AnsweredAt))
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
	for _, p := range strings.Split(pulls, ",") {
		if n, err := strconv.Atoi(p); err == nil {
			g.Pulls = append(g.Pulls, n)
		}
	}
	g.AnsweredAt, _ = time.Parse(time.RFC3339Nano, answered)
	return g, true, nil
}
