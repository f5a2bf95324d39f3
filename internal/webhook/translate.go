// Package webhook is changegate's intake: it verifies a delivery, translates
// it into durable jobs with a pure function, and hands them to an Enqueuer
// before answering GitHub. Nothing here calls GitHub.
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/jobs"
)

// ErrMalformed marks a body that is not a JSON object of the event's shape.
var ErrMalformed = errors.New("malformed payload")

// payload is the part of a webhook body that translation reads
// (parsePayload). Unknown fields are ignored; the body is not kept. The
// json tags name the fields, and let the tests decode a body with
// encoding/json to hold parsePayload to it.
type payload struct {
	Action              *string              `json:"action"`
	Installation        *installationPayload `json:"installation"`
	Repository          *repositoryPayload   `json:"repository"`
	Repositories        []repo               `json:"repositories"`
	RepositoriesAdded   []repo               `json:"repositories_added"`
	RepositoriesRemoved []repo               `json:"repositories_removed"`

	PullRequest *pullRequestPayload `json:"pull_request"`
	Number      int                 `json:"number"` // pull_request events
	CheckRun    *checkRunPayload    `json:"check_run"`
	CheckSuite  *checkSuitePayload  `json:"check_suite"`
	Issue       *issuePayload       `json:"issue"`
	// Comment is an issue comment's object, or a deployment review's
	// string: read it with issueComment.
	Comment          json.RawMessage          `json:"comment"`
	State            string                   `json:"state"`   // status
	Context          string                   `json:"context"` // status
	WorkflowRun      *headPayload             `json:"workflow_run"`
	Deployment       *deploymentPayload       `json:"deployment"`
	Environment      string                   `json:"environment"`             // deployment_protection_rule
	CallbackURL      string                   `json:"deployment_callback_url"` // deployment_protection_rule
	MergeGroup       *mergeGroupPayload       `json:"merge_group"`
	DeploymentStatus *deploymentStatusPayload `json:"deployment_status"`
	Ref              string                   `json:"ref"`
	Before           string                   `json:"before"`
	Deleted          bool                     `json:"deleted"`
	Commits          []commitPayload          `json:"commits"`
	Pusher           *pusherPayload           `json:"pusher"`
	SHA              string                   `json:"sha"`          // status
	After            string                   `json:"after"`        // push
	Team             *teamPayload             `json:"team"`         // membership, team
	Organization     *accountPayload          `json:"organization"` // membership, team
}

type teamPayload struct {
	Slug string `json:"slug"`
}

type installationPayload struct {
	ID                  int64           `json:"id"`
	Account             *accountPayload `json:"account"`
	RepositorySelection string          `json:"repository_selection"`
	SuspendedAt         *string         `json:"suspended_at"`
}

type accountPayload struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

type repositoryPayload struct {
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
}

type pullRequestPayload struct {
	Number int `json:"number"`
	Head   struct {
		SHA string `json:"sha"`
	} `json:"head"`
}

type checkRunPayload struct {
	Name         string  `json:"name"`
	HeadSHA      string  `json:"head_sha"`
	App          *app    `json:"app"`
	PullRequests []prRef `json:"pull_requests"`
}

type checkSuitePayload struct {
	HeadSHA      string  `json:"head_sha"`
	App          *app    `json:"app"`
	PullRequests []prRef `json:"pull_requests"`
}

type issuePayload struct {
	Number      int       `json:"number"`
	PullRequest *struct{} `json:"pull_request"`
}

// headPayload is a workflow run: its name and head commit.
type headPayload struct {
	Name    string `json:"name"`
	HeadSHA string `json:"head_sha"`
}

type deploymentPayload struct {
	ID          int64  `json:"id"`
	SHA         string `json:"sha"`
	Ref         string `json:"ref"`
	Environment string `json:"environment"`
}

type mergeGroupPayload struct {
	HeadSHA string `json:"head_sha"`
	HeadRef string `json:"head_ref"`
	BaseSHA string `json:"base_sha"`
	BaseRef string `json:"base_ref"`
}

type deploymentStatusPayload struct {
	State string `json:"state"`
}

type commitPayload struct {
	ID string `json:"id"`
}

type pusherPayload struct {
	Name string `json:"name"`
}

type app struct {
	ID int64 `json:"id"`
}

type prRef struct {
	Number int `json:"number"`
}

type repo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private"`
}

// TranslateOptions are the facts about this App that translation needs.
type TranslateOptions struct {
	// AppID is this App's ID: events about changegate's own check run and
	// suite are not re-evaluated, or every write would cause a re-read.
	AppID int64
}

// Translate turns a verified delivery into jobs. It is pure: the result
// depends only on its arguments.
func Translate(id, event string, body []byte, received time.Time, opts TranslateOptions) (jobs.Delivery, error) {
	d := jobs.Delivery{ID: id, Source: "github", Event: event, ReceivedAt: received.UTC()}
	p, err := parsePayload(body)
	if err != nil {
		return d, err
	}
	if p.Action != nil {
		d.Action = *p.Action
	}
	if p.Installation != nil {
		if p.Installation.ID < 0 {
			return d, fmt.Errorf("%w: installation.id %d is negative", ErrMalformed, p.Installation.ID)
		}
		d.InstallationID = p.Installation.ID
	}
	if p.Repository != nil {
		d.Repo = p.Repository.FullName
	}
	d.SHA = headSHA(&p)

	switch event {
	case "membership", "team":
		d.Jobs = teamJobs(&d, &p)
	case "deployment_review":
		d.Jobs = reviewJobs(&d, body)
	case "installation", "installation_repositories":
		job, err := installationJob(id, event, d.Action, &p)
		if err != nil {
			return d, err
		}
		d.Jobs = []jobs.Job{job}
	default:
		d.Jobs = evaluationJobs(&d, &p, opts)
	}
	return d, nil
}

// teamJobs re-evaluates what a change to a team's members can change: a
// member added or removed, or the team created, deleted or edited (a new
// parent changes who its member list holds). Who is a member is not taken
// from the event: the worker reads the list.
func teamJobs(d *jobs.Delivery, p *payload) []jobs.Job {
	switch d.Action {
	case "added", "removed", "created", "deleted", "edited":
	default:
		return nil
	}
	if d.InstallationID == 0 || p.Team == nil || p.Team.Slug == "" || p.Organization == nil || p.Organization.Login == "" {
		return nil
	}
	return []jobs.Job{jobs.TeamChanged{DeliveryID: d.ID, Installation: d.InstallationID, Org: p.Organization.Login,
		Team: p.Team.Slug, Reason: reason(d), QueuedAt: d.ReceivedAt}}
}

// evaluationJobs maps an event to the re-evaluations it calls for. Each
// trigger names only what changed; the worker re-reads the facts.
func evaluationJobs(d *jobs.Delivery, p *payload, opts TranslateOptions) []jobs.Job {
	if d.Repo == "" || d.InstallationID == 0 {
		return nil
	}
	if f := eventJobs[d.Event]; f != nil {
		return f(d, p, opts)
	}
	return nil
}

// eventJobs decides, per event, what a delivery calls for.
var eventJobs = map[string]func(d *jobs.Delivery, p *payload, opts TranslateOptions) []jobs.Job{
	"pull_request":                    pullRequestJobs,
	"pull_request_review":             pullRequestReviewJobs,
	"check_run":                       checkRunJobs,
	"check_suite":                     checkSuiteJobs,
	"status":                          statusJobs,
	"deployment_status":               deploymentStatusJobs,
	"deployment_protection_rule":      gateJobs,
	"merge_group":                     mergeGroupJobs,
	"push":                            pushJobs,
	"workflow_run":                    workflowRunJobs,
	"issue_comment":                   issueCommentJobs,
	"repository_ruleset":              controlJobs,
	"branch_protection_rule":          controlJobs,
	"branch_protection_configuration": controlJobs,
}

// prJob re-evaluates one pull request.
func prJob(d *jobs.Delivery, number int) jobs.Job {
	return jobs.EvaluatePR{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo, Number: number,
		Reason: reason(d), QueuedAt: d.ReceivedAt}
}

// shaJob re-evaluates the open pull requests whose head is sha, for what
// completed on it (trigger, with its name or environment).
func shaJob(d *jobs.Delivery, sha, trigger, name, env string) []jobs.Job {
	if sha == "" {
		return nil
	}
	return []jobs.Job{jobs.EvaluateSHA{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo, SHA: sha,
		Reason: reason(d), QueuedAt: d.ReceivedAt, Trigger: trigger, Name: name, Environment: env}}
}

func ownApp(a *app, opts TranslateOptions) bool {
	return a != nil && opts.AppID != 0 && a.ID == opts.AppID
}

func pullRequestJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	switch d.Action {
	case "opened", "reopened", "synchronize", "edited", "ready_for_review", "labeled", "unlabeled", "closed":
		if p.PullRequest != nil && p.PullRequest.Number > 0 {
			return []jobs.Job{prJob(d, p.PullRequest.Number)}
		}
	}
	return nil
}

func pullRequestReviewJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	switch d.Action {
	case "submitted", "dismissed", "edited":
		if p.PullRequest != nil && p.PullRequest.Number > 0 {
			return []jobs.Job{prJob(d, p.PullRequest.Number)}
		}
	}
	return nil
}

// checkRunJobs: the Re-run button on changegate's check re-evaluates its
// pull requests; another check run's completion may be staging evidence.
// changegate's own runs are never a trigger, or every write would cause a
// re-read.
func checkRunJobs(d *jobs.Delivery, p *payload, opts TranslateOptions) []jobs.Job {
	cr := p.CheckRun
	if cr == nil {
		return nil
	}
	own := ownApp(cr.App, opts) || cr.Name == CheckName
	switch {
	case d.Action == "rerequested" && own:
		var out []jobs.Job
		for _, ref := range cr.PullRequests {
			out = append(out, prJob(d, ref.Number))
		}
		if len(out) == 0 {
			return shaJob(d, cr.HeadSHA, "", "", "")
		}
		return out
	case d.Action == "completed" && !own:
		return shaJob(d, cr.HeadSHA, jobs.TriggerCheckRun, cr.Name, "")
	}
	return nil
}

func checkSuiteJobs(d *jobs.Delivery, p *payload, opts TranslateOptions) []jobs.Job {
	cs := p.CheckSuite
	if cs == nil || ownApp(cs.App, opts) {
		return nil
	}
	switch d.Action {
	case "completed":
		return shaJob(d, cs.HeadSHA, jobs.TriggerCheckSuite, "", "")
	case "rerequested":
		return shaJob(d, cs.HeadSHA, "", "", "")
	}
	return nil
}

func statusJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	if p.State == "pending" {
		return nil
	}
	return shaJob(d, p.SHA, jobs.TriggerStatus, p.Context, "")
}

// deploymentStatusJobs: a deployment's status may be staging evidence; a
// successful one is also archived (the archive decides whether it was to
// production).
func deploymentStatusJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	dep := p.Deployment
	if dep == nil {
		return nil
	}
	out := shaJob(d, dep.SHA, jobs.TriggerDeployment, "", dep.Environment)
	if p.DeploymentStatus != nil && p.DeploymentStatus.State == "success" && dep.SHA != "" {
		out = append(out, jobs.ArchiveDeployment{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo,
			SHA: dep.SHA, Environment: dep.Environment, DeploymentID: dep.ID, QueuedAt: d.ReceivedAt})
	}
	return out
}

func mergeGroupJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	g := p.MergeGroup
	if d.Action != "checks_requested" || g == nil || g.HeadSHA == "" {
		return nil
	}
	return []jobs.Job{jobs.MergeGroup{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo,
		HeadSHA: g.HeadSHA, HeadRef: g.HeadRef, BaseSHA: g.BaseSHA, BaseRef: strings.TrimPrefix(g.BaseRef, "refs/heads/"), QueuedAt: d.ReceivedAt}}
}

func workflowRunJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	if d.Action != "completed" || p.WorkflowRun == nil {
		return nil
	}
	return shaJob(d, p.WorkflowRun.HeadSHA, jobs.TriggerWorkflowRun, p.WorkflowRun.Name, "")
}

// issueCommentJobs: "/changegate recheck" on a pull request, from someone
// who may ask.
func issueCommentJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	c := issueComment(p)
	if d.Action != "created" || p.Issue == nil || p.Issue.PullRequest == nil || c == nil ||
		!isRecheck(c.Body) || !canRecheck(c.AuthorAssociation) {
		return nil
	}
	return []jobs.Job{prJob(d, p.Issue.Number)}
}

// controlJobs: the control over changegate itself may have changed.
func controlJobs(d *jobs.Delivery, _ *payload, _ TranslateOptions) []jobs.Job {
	return []jobs.Job{jobs.WatchControls{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo, Reason: reason(d)}}
}

// comment is an issue comment.
type comment struct {
	Body              string `json:"body"`
	AuthorAssociation string `json:"author_association"`
}

// issueComment is the payload's comment object, if it is one.
func issueComment(p *payload) *comment {
	var c comment
	if len(p.Comment) == 0 || p.Comment[0] != '{' || json.Unmarshal(p.Comment, &c) != nil {
		return nil
	}
	return &c
}

// deploymentReviewPayload is what a deployment_review event says, apart:
// its "comment" is a string, where an issue comment's is an object.
type deploymentReviewPayload struct {
	Approver *struct {
		Login string `json:"login"`
	} `json:"approver"`
	Comment     string `json:"comment"`
	Since       string `json:"since"`
	WorkflowRun *struct {
		HeadSHA string `json:"head_sha"`
	} `json:"workflow_run"`
	WorkflowJobRuns []struct {
		Environment string `json:"environment"`
	} `json:"workflow_job_runs"`
	WorkflowJobRun *struct {
		Environment string `json:"environment"`
	} `json:"workflow_job_run"`
}

// reviewJobs records who approved or rejected a deployment in GitHub.
func reviewJobs(d *jobs.Delivery, body []byte) []jobs.Job {
	if (d.Action != "approved" && d.Action != "rejected") || d.Repo == "" || d.InstallationID == 0 {
		return nil
	}
	var p deploymentReviewPayload
	if json.Unmarshal(body, &p) != nil || p.WorkflowRun == nil || p.WorkflowRun.HeadSHA == "" {
		return nil
	}
	j := jobs.DeploymentReview{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo, SHA: p.WorkflowRun.HeadSHA,
		State: d.Action, Comment: p.Comment, QueuedAt: d.ReceivedAt}
	if p.Approver != nil {
		j.Reviewer = p.Approver.Login
	}
	j.At, _ = time.Parse(time.RFC3339, p.Since)
	if j.At.IsZero() {
		j.At = d.ReceivedAt
	}
	for _, r := range p.WorkflowJobRuns {
		if r.Environment != "" && !slices.Contains(j.Environments, r.Environment) {
			j.Environments = append(j.Environments, r.Environment)
		}
	}
	if p.WorkflowJobRun != nil && p.WorkflowJobRun.Environment != "" && !slices.Contains(j.Environments, p.WorkflowJobRun.Environment) {
		j.Environments = append(j.Environments, p.WorkflowJobRun.Environment)
	}
	if len(j.Environments) == 0 {
		return nil
	}
	return []jobs.Job{j}
}

// gateJobs asks for an answer to a deployment protection rule. A request
// without what the answer needs is dropped: there is nothing to answer.
func gateJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	if d.Action != "requested" || p.Deployment == nil || p.Deployment.SHA == "" || p.CallbackURL == "" {
		return nil
	}
	env := p.Environment
	if env == "" {
		env = p.Deployment.Environment
	}
	return []jobs.Job{jobs.DeploymentGate{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo,
		Environment: env, SHA: p.Deployment.SHA, Ref: p.Deployment.Ref, DeploymentID: p.Deployment.ID,
		CallbackURL: p.CallbackURL, QueuedAt: d.ReceivedAt}}
}

// maxPushCommits bounds the commits of one push checked for a pull request;
// GitHub's payload lists at most 20 anyway.
const maxPushCommits = 50

func pushJobs(d *jobs.Delivery, p *payload, _ TranslateOptions) []jobs.Job {
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok || p.Deleted || p.After == "" || strings.Trim(p.After, "0") == "" {
		return nil
	}
	job := jobs.ArchivePush{DeliveryID: d.ID, Installation: d.InstallationID, Repo: d.Repo, Branch: branch,
		Before: p.Before, After: p.After, QueuedAt: d.ReceivedAt}
	if p.Repository != nil {
		job.DefaultBranch = p.Repository.DefaultBranch
	}
	if p.Pusher != nil {
		job.Pusher = p.Pusher.Name
	}
	for i, c := range p.Commits {
		if i == maxPushCommits {
			break
		}
		job.Commits = append(job.Commits, c.ID)
	}
	if len(job.Commits) == 0 {
		job.Commits = []string{p.After}
	}
	return []jobs.Job{job}
}

// CheckName is the name of changegate's check run.
const CheckName = "changegate"

func reason(d *jobs.Delivery) string {
	if d.Action == "" {
		return d.Event
	}
	return d.Event + "." + d.Action
}

// isRecheck reports whether a comment asks for a re-evaluation: a line that
// is exactly "/changegate recheck".
func isRecheck(body string) bool {
	for _, line := range strings.Split(body, "\n") {
		if strings.TrimSpace(line) == "/changegate recheck" {
			return true
		}
	}
	return false
}

// canRecheck approximates "has write access" from the comment's author
// association, without a GitHub call on the request path: owners, members
// of the owning organisation and invited collaborators. A recheck only
// re-reads facts, so a wrong guess costs one evaluation, never a decision.
func canRecheck(association string) bool {
	switch association {
	case "OWNER", "MEMBER", "COLLABORATOR":
		return true
	}
	return false
}

func headSHA(p *payload) string {
	switch {
	case p.PullRequest != nil:
		return p.PullRequest.Head.SHA
	case p.CheckRun != nil:
		return p.CheckRun.HeadSHA
	case p.CheckSuite != nil:
		return p.CheckSuite.HeadSHA
	case p.WorkflowRun != nil:
		return p.WorkflowRun.HeadSHA
	case p.Deployment != nil:
		return p.Deployment.SHA
	case p.MergeGroup != nil:
		return p.MergeGroup.HeadSHA
	case p.SHA != "":
		return p.SHA
	}
	return p.After
}

func installationJob(id, event, action string, p *payload) (jobs.Job, error) {
	in := p.Installation
	if in == nil || in.ID == 0 || in.Account == nil {
		return nil, fmt.Errorf("%w: %s event without installation.id and installation.account", ErrMalformed, event)
	}
	if action == "" {
		return nil, fmt.Errorf("%w: %s event without action", ErrMalformed, event)
	}
	return jobs.InstallationEvent{
		DeliveryID: id,
		Event:      event,
		Action:     action,
		Installation: jobs.Installation{
			ID:                  in.ID,
			Account:             in.Account.Login,
			AccountType:         in.Account.Type,
			RepositorySelection: in.RepositorySelection,
			Suspended:           in.SuspendedAt != nil && *in.SuspendedAt != "",
		},
		Repos:   repos(p.Repositories),
		Added:   repos(p.RepositoriesAdded),
		Removed: repos(p.RepositoriesRemoved),
	}, nil
}

func repos(in []repo) []jobs.Repo {
	if len(in) == 0 {
		return nil
	}
	out := make([]jobs.Repo, len(in))
	for i, r := range in {
		out[i] = jobs.Repo{ID: r.ID, FullName: r.FullName, Private: r.Private}
	}
	return out
}
