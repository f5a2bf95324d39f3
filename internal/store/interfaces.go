package store

import (
	"context"
	"time"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
)

// The interfaces every store provides, by concern. The embedded store and
// the PostgreSQL one implement all of them; storetest holds both to them.

// Deliveries is intake's table: each acknowledged delivery once, its jobs
// until they are dispatched, and how many of them were processed.
type Deliveries interface {
	// InTx runs fn in a durable transaction, committed when fn returns nil.
	InTx(ctx context.Context, fn func(tx jobs.Tx) error) error
	InsertDeliveries(ctx context.Context, tx jobs.Tx, ds []Delivery) ([]bool, error)
	Undispatched(ctx context.Context, tx jobs.Tx, limit int) ([]Delivery, error)
	MarkDispatched(ctx context.Context, tx jobs.Tx, ids []string) error
	MarkProcessed(ctx context.Context, tx jobs.Tx, deliveryID string, now time.Time) error
	Deliveries(ctx context.Context) ([]Delivery, error)
}

// Inventory is the installations and the repositories they see.
type Inventory interface {
	UpsertInstallation(ctx context.Context, tx jobs.Tx, in jobs.Installation, now time.Time) error
	DeleteInstallation(ctx context.Context, tx jobs.Tx, id int64, now time.Time) error
	UpsertRepos(ctx context.Context, tx jobs.Tx, installationID int64, repos []jobs.Repo, now time.Time) error
	RemoveRepos(ctx context.Context, tx jobs.Tx, installationID int64, repos []jobs.Repo) error
	ReplaceRepos(ctx context.Context, tx jobs.Tx, installationID int64, repos []jobs.Repo, listedAt, now time.Time) error
	MarkMissingInstallationsDeleted(ctx context.Context, tx jobs.Tx, keep []int64, now time.Time) error
	Installations(ctx context.Context) ([]Installation, error)
	Repositories(ctx context.Context) ([]Repository, error)
}

// PullRequests is the pull request index and the check-run memory.
type PullRequests interface {
	LastEvaluated(ctx context.Context, repo string, number int) (time.Time, bool, error)
	IndexPullRequest(ctx context.Context, tx jobs.Tx, pr PullRequest, now time.Time) error
	OpenPullRequestsWithHead(ctx context.Context, repo, sha string) ([]PullRequest, error)
	OpenPullRequestsOfOwner(ctx context.Context, installation int64, owner string) ([]PullRequest, error)
	OpenPullRequestsWithKey(ctx context.Context, key string) ([]PullRequest, error)
	CheckRun(ctx context.Context, repo, sha string) (CheckRun, bool, error)
	PutCheckRun(ctx context.Context, repo, sha string, c CheckRun, now time.Time) error
}

// Completeness is the rest: the deployment gate's answers, merge groups,
// deployment reviews, the redelivery sweep, reconciliation, the watch on
// changegate's enforcement, and what a server remembers.
type Completeness interface {
	PutGate(ctx context.Context, tx jobs.Tx, repo string, g change.GateAnswer) error
	Gate(ctx context.Context, repo string, deploymentID int64, environment string) (change.GateAnswer, bool, error)
	PutMergeGroup(ctx context.Context, tx jobs.Tx, repo string, g change.MergeGroup) error
	MergeGroupOf(ctx context.Context, repo string, pr int, sha string) (change.MergeGroup, bool, error)
	PutDeploymentReview(ctx context.Context, tx jobs.Tx, repo, sha, deliveryID string, r change.DeploymentReview) error
	DeploymentReviews(ctx context.Context, repo, sha, environment string) ([]change.DeploymentReview, error)
	KnownDeliveries(ctx context.Context, ids []string) (map[string]bool, error)
	Redelivered(ctx context.Context, guids []string) (map[string]bool, error)
	SweepCursor(ctx context.Context) (int64, error)
	RecordSweep(ctx context.Context, tx jobs.Tx, cursor int64, asked []Redelivery, now time.Time) error
	ReconcilePoint(ctx context.Context, repo, branch string) (string, time.Time, bool, error)
	SetReconcilePoint(ctx context.Context, repo, branch, sha string, at time.Time) error
	RecordedCommits(ctx context.Context, repo string, shas []string) (map[string]bool, error)
	MarkPushed(ctx context.Context, repo, recordID string, shas []string) error
	ControlState(ctx context.Context, repo, target string) (ControlState, bool, error)
	PutControlState(ctx context.Context, c ControlState) error
	Coverage(ctx context.Context) ([]ControlState, error)
	SwapServerState(ctx context.Context, key, value string) (string, error)
}
