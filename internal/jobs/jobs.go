// Package jobs defines the durable job arguments that intake enqueues and
// workers consume. The types are plain data (stdlib only): each has a Kind
// that names its worker, and the fields are what the worker needs without
// re-reading the webhook payload, which is never stored.
package jobs

import (
	"context"
	"log/slog"
	"time"
)

// Delivery is one verified webhook delivery, translated: what intake hands
// the queue to store durably before it acknowledges.
type Delivery struct {
	ID     string // X-GitHub-Delivery: the dedupe key
	Source string // github or jira
	Event  string // X-GitHub-Event
	Action string

	// Log attributes, attached once at intake.
	InstallationID int64
	Repo           string
	SHA            string

	ReceivedAt time.Time
	// Jobs is what the delivery asks the workers to do. Empty means the event
	// is irrelevant to changegate and is dropped after it is counted.
	Jobs []Job
}

// Job is the arguments of one durable job. It matches river.JobArgs.
type Job interface {
	Kind() string
}

// Args is what a job's arguments provide to the worker that runs them.
type Args interface {
	Job
	LogAttrs() []slog.Attr
}

// Handler does one job. It runs outside any transaction, so it may call
// GitHub; the Apply it returns runs inside the transaction that also marks
// the job done, so the job's effects are committed exactly once. A nil Apply
// commits only the completion.
type Handler[T Args] func(ctx context.Context, log *slog.Logger, args T) (Apply, error)

// Apply writes a job's effects in the job's transaction.
type Apply func(ctx context.Context, tx Tx) error

// Tx is the transaction a job's effects are written in, with the job's
// completion and its delivery's count: *sql.Tx on SQLite. Only the store
// that began it looks inside; everything else passes it on.
type Tx any

// Kinds, stable across versions: queued jobs outlive the binary that queued them.
const (
	KindInstallationEvent = "installation_event"
	KindInstallationSync  = "installation_sync"
)

// Installation is an App installation as a webhook or the API reports it.
type Installation struct {
	ID                  int64  `json:"id"`
	Account             string `json:"account"`
	AccountType         string `json:"account_type"`
	RepositorySelection string `json:"repository_selection,omitempty"`
	Suspended           bool   `json:"suspended,omitempty"`
}

// Repo is a repository an installation can see.
type Repo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private,omitempty"`
}

// InstallationEvent applies an `installation` or `installation_repositories`
// webhook to the inventory of installations and repositories.
type InstallationEvent struct {
	DeliveryID   string       `json:"delivery_id"`
	Event        string       `json:"event"`
	Action       string       `json:"action"`
	Installation Installation `json:"installation"`
	// Repos is the full list sent with `installation.created`.
	Repos   []Repo `json:"repos,omitempty"`
	Added   []Repo `json:"added,omitempty"`
	Removed []Repo `json:"removed,omitempty"`
}

func (InstallationEvent) Kind() string { return KindInstallationEvent }

// LogAttrs are the attributes a worker's log lines carry.
func (e InstallationEvent) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("delivery_id", e.DeliveryID),
		slog.Int64("installation_id", e.Installation.ID),
	}
}

// InstallationSync lists installations and their repositories from GitHub
// and reconciles the inventory with them. Start-up enqueues one.
type InstallationSync struct {
	Reason string `json:"reason"`
}

func (InstallationSync) Kind() string { return KindInstallationSync }

// LogAttrs are the attributes a worker's log lines carry.
func (s InstallationSync) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("reason", s.Reason)}
}

// DeliveryRef names the delivery the job was queued for.
func (e InstallationEvent) DeliveryRef() string { return e.DeliveryID }

// Kinds of the evaluation jobs.
const (
	KindEvaluatePR  = "evaluate_pr"
	KindEvaluateSHA = "evaluate_sha"
	KindJiraIssue   = "jira_issue"
)

// EvaluatePR re-evaluates one pull request: gather facts, evaluate the
// policy, publish the check. Facts are always re-read, so jobs may run in
// any order; QueuedAt lets a job skip itself when an evaluation that
// started later has already run.
type EvaluatePR struct {
	DeliveryID   string    `json:"delivery_id"`
	Installation int64     `json:"installation_id"`
	Repo         string    `json:"repo"`
	Number       int       `json:"number"`
	Reason       string    `json:"reason"` // event.action that asked for it
	QueuedAt     time.Time `json:"queued_at"`
}

func (EvaluatePR) Kind() string { return KindEvaluatePR }

// DeliveryRef names the delivery the job was queued for.
func (e EvaluatePR) DeliveryRef() string { return e.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (e EvaluatePR) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("delivery_id", e.DeliveryID), slog.Int64("installation_id", e.Installation),
		slog.String("repo", e.Repo), slog.Int("pr", e.Number), slog.String("reason", e.Reason),
	}
}

// EvaluateSHA re-evaluates every open pull request whose head is SHA: a
// check run, commit status, deployment or workflow run changed on it.
type EvaluateSHA struct {
	DeliveryID   string    `json:"delivery_id"`
	Installation int64     `json:"installation_id"`
	Repo         string    `json:"repo"`
	SHA          string    `json:"sha"`
	Reason       string    `json:"reason"`
	QueuedAt     time.Time `json:"queued_at"`
	// Trigger, when set, is what completed on the commit: a check run,
	// commit status or workflow run named Name, a check suite, or a
	// deployment to Environment. The pull requests whose policy does not
	// count it as staging evidence are not evaluated for it.
	Trigger     string `json:"trigger,omitempty"`
	Name        string `json:"name,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Triggers of EvaluateSHA.
const (
	TriggerCheckRun    = "check_run"
	TriggerCheckSuite  = "check_suite"
	TriggerStatus      = "status"
	TriggerWorkflowRun = "workflow_run"
	TriggerDeployment  = "deployment_status"
)

func (EvaluateSHA) Kind() string { return KindEvaluateSHA }

// DeliveryRef names the delivery the job was queued for.
func (e EvaluateSHA) DeliveryRef() string { return e.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (e EvaluateSHA) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("delivery_id", e.DeliveryID), slog.Int64("installation_id", e.Installation),
		slog.String("repo", e.Repo), slog.String("sha", e.SHA), slog.String("reason", e.Reason),
	}
}

// KindTeamChanged is the job of a membership or team event.
const KindTeamChanged = "team_changed"

// TeamChanged re-evaluates the open pull requests of an organization whose
// policy names the team as approving managers: someone joined or left it,
// or the team itself changed. An approval by someone who left stops
// counting before the merge, not at the next event on the pull request.
type TeamChanged struct {
	DeliveryID   string    `json:"delivery_id"`
	Installation int64     `json:"installation_id"`
	Org          string    `json:"org"`
	Team         string    `json:"team"` // the slug
	Reason       string    `json:"reason"`
	QueuedAt     time.Time `json:"queued_at"`
}

func (TeamChanged) Kind() string { return KindTeamChanged }

// DeliveryRef names the delivery the job was queued for.
func (t TeamChanged) DeliveryRef() string { return t.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (t TeamChanged) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("delivery_id", t.DeliveryID), slog.Int64("installation_id", t.Installation),
		slog.String("team", t.Org+"/"+t.Team), slog.String("reason", t.Reason)}
}

// JiraIssue re-evaluates every open pull request that names a Jira key:
// the issue was updated or transitioned.
type JiraIssue struct {
	DeliveryID string    `json:"delivery_id"`
	Key        string    `json:"key"`
	Event      string    `json:"event"`
	QueuedAt   time.Time `json:"queued_at"`
}

func (JiraIssue) Kind() string { return KindJiraIssue }

// DeliveryRef names the delivery the job was queued for.
func (j JiraIssue) DeliveryRef() string { return j.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (j JiraIssue) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("delivery_id", j.DeliveryID), slog.String("jira_key", j.Key), slog.String("jira_event", j.Event)}
}

// Kinds of the archive jobs.
const (
	KindArchiveDeployment = "archive_deployment"
	KindArchivePush       = "archive_push"
)

// ArchiveDeployment records a successful deployment, when its environment
// is a production environment.
type ArchiveDeployment struct {
	DeliveryID   string    `json:"delivery_id"`
	Installation int64     `json:"installation_id"`
	Repo         string    `json:"repo"`
	SHA          string    `json:"sha"`
	Environment  string    `json:"environment"`
	DeploymentID int64     `json:"deployment_id"`
	QueuedAt     time.Time `json:"queued_at"`
}

func (ArchiveDeployment) Kind() string { return KindArchiveDeployment }

// DeliveryRef names the delivery the job was queued for.
func (a ArchiveDeployment) DeliveryRef() string { return a.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (a ArchiveDeployment) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("delivery_id", a.DeliveryID), slog.Int64("installation_id", a.Installation),
		slog.String("repo", a.Repo), slog.String("sha", a.SHA), slog.String("environment", a.Environment)}
}

// ArchivePush records a push to a production branch whose commits no
// merged pull request covers: a direct push.
type ArchivePush struct {
	DeliveryID    string    `json:"delivery_id"`
	Installation  int64     `json:"installation_id"`
	Repo          string    `json:"repo"`
	Branch        string    `json:"branch"`
	DefaultBranch string    `json:"default_branch"`
	Before        string    `json:"before"`
	After         string    `json:"after"`
	Commits       []string  `json:"commits"`
	Pusher        string    `json:"pusher"`
	QueuedAt      time.Time `json:"queued_at"`
}

func (ArchivePush) Kind() string { return KindArchivePush }

// DeliveryRef names the delivery the job was queued for.
func (a ArchivePush) DeliveryRef() string { return a.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (a ArchivePush) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("delivery_id", a.DeliveryID), slog.Int64("installation_id", a.Installation),
		slog.String("repo", a.Repo), slog.String("sha", a.After), slog.String("branch", a.Branch)}
}

// KindDeploymentGate answers a deployment protection rule.
const KindDeploymentGate = "deployment_gate"

// DeploymentGate is a `deployment_protection_rule` request: GitHub waits
// for changegate's answer at CallbackURL before the deployment starts.
type DeploymentGate struct {
	DeliveryID   string    `json:"delivery_id"`
	Installation int64     `json:"installation_id"`
	Repo         string    `json:"repo"`
	Environment  string    `json:"environment"`
	SHA          string    `json:"sha"`
	Ref          string    `json:"ref"`
	DeploymentID int64     `json:"deployment_id"`
	CallbackURL  string    `json:"callback_url"`
	QueuedAt     time.Time `json:"queued_at"`
}

func (DeploymentGate) Kind() string { return KindDeploymentGate }

// DeliveryRef names the delivery the job was queued for.
func (g DeploymentGate) DeliveryRef() string { return g.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (g DeploymentGate) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("delivery_id", g.DeliveryID), slog.Int64("installation_id", g.Installation),
		slog.String("repo", g.Repo), slog.String("sha", g.SHA), slog.String("environment", g.Environment)}
}

// KindMergeGroup evaluates a merge queue entry.
const KindMergeGroup = "merge_group"

// MergeGroup is a `merge_group` `checks_requested` event: the changegate
// check must report on the group's head commit, or the entry times out.
type MergeGroup struct {
	DeliveryID   string    `json:"delivery_id"`
	Installation int64     `json:"installation_id"`
	Repo         string    `json:"repo"`
	HeadSHA      string    `json:"head_sha"`
	HeadRef      string    `json:"head_ref"`
	BaseSHA      string    `json:"base_sha"`
	BaseRef      string    `json:"base_ref"`
	QueuedAt     time.Time `json:"queued_at"`
}

func (MergeGroup) Kind() string { return KindMergeGroup }

// DeliveryRef names the delivery the job was queued for.
func (g MergeGroup) DeliveryRef() string { return g.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (g MergeGroup) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("delivery_id", g.DeliveryID), slog.Int64("installation_id", g.Installation),
		slog.String("repo", g.Repo), slog.String("sha", g.HeadSHA), slog.String("head_ref", g.HeadRef)}
}

// KindDeploymentReview records a review of a deployment in GitHub.
const KindDeploymentReview = "deployment_review"

// DeploymentReview is a `deployment_review` `approved` or `rejected`
// event: someone approved or rejected a deployment waiting on an
// environment's required reviewers.
type DeploymentReview struct {
	DeliveryID   string    `json:"delivery_id"`
	Installation int64     `json:"installation_id"`
	Repo         string    `json:"repo"`
	SHA          string    `json:"sha"`
	Environments []string  `json:"environments"`
	State        string    `json:"state"` // approved, rejected
	Reviewer     string    `json:"reviewer"`
	Comment      string    `json:"comment,omitempty"`
	At           time.Time `json:"at"`
	QueuedAt     time.Time `json:"queued_at"`
}

func (DeploymentReview) Kind() string { return KindDeploymentReview }

// DeliveryRef names the delivery the job was queued for.
func (r DeploymentReview) DeliveryRef() string { return r.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (r DeploymentReview) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("delivery_id", r.DeliveryID), slog.Int64("installation_id", r.Installation),
		slog.String("repo", r.Repo), slog.String("sha", r.SHA), slog.String("state", r.State)}
}

// KindRedeliverySweep is the periodic redelivery sweep.
const KindRedeliverySweep = "redelivery_sweep"

// RedeliverySweep pages GitHub's webhook delivery log and asks GitHub to
// redeliver what failed and changegate never received.
type RedeliverySweep struct{}

func (RedeliverySweep) Kind() string { return KindRedeliverySweep }

// LogAttrs are the attributes a worker's log lines carry.
func (RedeliverySweep) LogAttrs() []slog.Attr { return nil }

// KindReconcile reconciles one repository's production branches with the
// change records.
const KindReconcile = "reconcile"

// Reconcile walks a repository's production branches since their last
// reconciled commit (Since, the first time) for commits no record covers.
type Reconcile struct {
	Installation  int64     `json:"installation_id"`
	Repo          string    `json:"repo"`
	DefaultBranch string    `json:"default_branch"`
	Since         time.Time `json:"since"`
	Reason        string    `json:"reason"`
}

func (Reconcile) Kind() string { return KindReconcile }

// LogAttrs are the attributes a worker's log lines carry.
func (r Reconcile) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("repo", r.Repo), slog.String("reason", r.Reason)}
}

// KindReconcileAll is the periodic reconciliation of every repository.
const KindReconcileAll = "reconcile_all"

// ReconcileAll reconciles every installed repository.
type ReconcileAll struct{}

func (ReconcileAll) Kind() string { return KindReconcileAll }

// LogAttrs are the attributes a worker's log lines carry.
func (ReconcileAll) LogAttrs() []slog.Attr { return nil }

// KindBackfill backfills one repository's production branches.
const KindBackfill = "backfill"

// Backfill archives the changes since Since that no record covers, marked
// backfilled. It runs behind live work and can be run again.
type Backfill struct {
	Installation int64     `json:"installation_id"`
	Repo         string    `json:"repo"`
	Since        time.Time `json:"since"`
}

func (Backfill) Kind() string { return KindBackfill }

// LogAttrs are the attributes a worker's log lines carry.
func (b Backfill) LogAttrs() []slog.Attr { return []slog.Attr{slog.String("repo", b.Repo)} }

// KindJiraWriteBack tells a Jira ticket of its change record.
const KindJiraWriteBack = "jira_write_back"

// JiraWriteBack adds a remote link to a change record's page, and a
// verdict comment, on one Jira issue. It is retried, and never blocks the
// record, which is archived before.
type JiraWriteBack struct {
	Key      string `json:"key"`
	RecordID string `json:"record_id"`
	Title    string `json:"title"`
	Comment  string `json:"comment"`
}

func (JiraWriteBack) Kind() string { return KindJiraWriteBack }

// LogAttrs are the attributes a worker's log lines carry.
func (j JiraWriteBack) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("key", j.Key), slog.String("record", j.RecordID)}
}

// KindWatchControls reads whether changegate is enforced on a repository.
const KindWatchControls = "watch_controls"

// WatchControls reads, for one repository, whether the rules in force
// require changegate's check from this App on each production branch, and
// whether each production environment's protection rules include it. A
// change to rulesets or branch protection queues one.
type WatchControls struct {
	DeliveryID   string `json:"delivery_id"`
	Installation int64  `json:"installation_id"`
	Repo         string `json:"repo"`
	Reason       string `json:"reason"`
}

func (WatchControls) Kind() string { return KindWatchControls }

// DeliveryRef names the delivery the job was queued for.
func (w WatchControls) DeliveryRef() string { return w.DeliveryID }

// LogAttrs are the attributes a worker's log lines carry.
func (w WatchControls) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("repo", w.Repo), slog.String("reason", w.Reason)}
}
