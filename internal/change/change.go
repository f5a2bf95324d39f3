// Package change is changegate's vocabulary: what a change is (Subject),
// what was observed about it (Facts), and what the policy concluded
// (Decision). It imports only the standard library; every adapter speaks
// these types and nothing adapter-typed leaks across packages.
package change

import (
	"fmt"
	"time"
)

// Repo names a repository.
type Repo struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
}

func (r Repo) String() string { return r.Owner + "/" + r.Name }

// ParseRepo splits "owner/name".
func ParseRepo(s string) (Repo, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			if i == 0 || i == len(s)-1 {
				break
			}
			return Repo{Owner: s[:i], Name: s[i+1:]}, nil
		}
	}
	return Repo{}, fmt.Errorf("repository %q is not owner/name", s)
}

// Subject identifies the pull request being evaluated.
type Subject struct {
	Installation int64  `json:"installation_id"`
	Repo         Repo   `json:"repo"`
	Number       int    `json:"number"`
	BaseRef      string `json:"base_ref"`
	HeadRef      string `json:"head_ref"`
	HeadSHA      string `json:"head_sha"`
	MergeSHA     string `json:"merge_sha,omitempty"`
}

// Person is a git identity as a commit names it. Login is the GitHub user
// the commit is linked to, empty when GitHub could not link it.
type Person struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Login string `json:"login,omitempty"`
}

// PullRequest is the pull request as GitHub reports it.
type PullRequest struct {
	Number  int    `json:"number"`
	URL     string `json:"url"`
	Title   string `json:"title"`
	Body    string `json:"body"`
	Author  string `json:"author"`
	State   string `json:"state"` // open, closed
	Draft   bool   `json:"draft"`
	Merged  bool   `json:"merged"`
	BaseRef string `json:"base_ref"`
	HeadRef string `json:"head_ref"`
	HeadSHA string `json:"head_sha"`
	// BaseSHA is the base branch's commit the pull request is compared
	// with.
	BaseSHA string `json:"base_sha,omitempty"`
	// MergeCommitSHA is set once merged.
	MergeCommitSHA string `json:"merge_commit_sha,omitempty"`
	// DefaultBranch is the repository's default branch, the production
	// branch when the policy names none.
	DefaultBranch string `json:"default_branch"`
	// ChangedFiles and CommitCount are GitHub's own counts, which tell a
	// complete list from one cut at GitHub's limits.
	ChangedFiles int      `json:"changed_files"`
	CommitCount  int      `json:"commits"`
	Labels       []string `json:"labels,omitempty"`
	// Assignees are the people assigned, who count as authors of a pull
	// request a bot or coding agent opened.
	Assignees []string  `json:"assignees,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	MergedAt  time.Time `json:"merged_at,omitzero"`
	MergedBy  string    `json:"merged_by,omitempty"`
}

// Commit is one commit of the pull request.
type Commit struct {
	SHA       string   `json:"sha"`
	Author    Person   `json:"author"`
	Committer Person   `json:"committer"`
	CoAuthors []Person `json:"co_authors,omitempty"` // Co-authored-by: trailers
}

// Review states, as GitHub names them.
const (
	ReviewApproved         = "APPROVED"
	ReviewChangesRequested = "CHANGES_REQUESTED"
	ReviewCommented        = "COMMENTED"
	ReviewDismissed        = "DISMISSED"
	ReviewPending          = "PENDING"
)

// Review is one submitted review.
type Review struct {
	ID          int64     `json:"id"`
	User        string    `json:"user"`
	State       string    `json:"state"`
	CommitID    string    `json:"commit_id"`
	SubmittedAt time.Time `json:"submitted_at"`
	URL         string    `json:"url,omitempty"`
}

// CheckRun is a check run on a commit.
type CheckRun struct {
	Name        string    `json:"name"`
	HeadSHA     string    `json:"head_sha"`
	Status      string    `json:"status"`               // queued, in_progress, completed
	Conclusion  string    `json:"conclusion,omitempty"` // success, failure, neutral, …
	App         string    `json:"app,omitempty"`        // slug of the App that posted it
	CompletedAt time.Time `json:"completed_at,omitzero"`
	URL         string    `json:"url,omitempty"`
}

// Status is a commit status.
type Status struct {
	Context   string    `json:"context"`
	State     string    `json:"state"` // error, failure, pending, success
	SHA       string    `json:"sha"`
	CreatedAt time.Time `json:"created_at"`
	URL       string    `json:"url,omitempty"`
}

// Deployment is a GitHub deployment with its statuses, newest first.
type Deployment struct {
	ID          int64              `json:"id"`
	Environment string             `json:"environment"`
	SHA         string             `json:"sha"`
	Ref         string             `json:"ref"`
	Creator     string             `json:"creator,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
	URL         string             `json:"url,omitempty"`
	Statuses    []DeploymentStatus `json:"statuses"`
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	State     string    `json:"state"` // error, failure, inactive, in_progress, queued, pending, success
	CreatedAt time.Time `json:"created_at"`
	URL       string    `json:"url,omitempty"`
}

// Latest returns the deployment's newest status, if any.
func (d Deployment) Latest() (DeploymentStatus, bool) {
	var latest DeploymentStatus
	found := false
	for _, s := range d.Statuses {
		if !found || s.CreatedAt.After(latest.CreatedAt) {
			latest, found = s, true
		}
	}
	return latest, found
}

// Membership says whether a user is an active member of a team
// ("org/team-slug").
type Membership struct {
	Team   string `json:"team"`
	User   string `json:"user"`
	Active bool   `json:"active"`
}

// Ticket is a Jira issue as read live.
type Ticket struct {
	Key       string     `json:"key"`
	URL       string     `json:"url"`
	Project   string     `json:"project"`
	Type      string     `json:"type"`
	Status    string     `json:"status"`
	Summary   string     `json:"summary"`
	Reporter  string     `json:"reporter"`
	Created   time.Time  `json:"created"`
	Approvals []Approval `json:"approvals,omitempty"`
}

// Approval is a Jira Service Management approval on a ticket.
type Approval struct {
	Name      string    `json:"name,omitempty"`
	Decision  string    `json:"decision"` // approved, declined, pending
	Approvers []string  `json:"approvers"`
	Completed time.Time `json:"completed,omitzero"`
	// Groups are the Jira groups of the approvers, when known.
	Groups []string `json:"groups,omitempty"`
}

// Lookup outcomes of a ticket key.
const (
	LookupFound       = "found"
	LookupNotFound    = "not_found"
	LookupUnreachable = "unreachable" // Jira down, rate limited or refusing our credentials
)

// MaxTicketKey bounds a Jira issue key. Real keys are far shorter (a
// project key of at most a few dozen characters and an issue number); a
// longer "key" is hostile or broken text, and it is never looked up,
// queued or logged whole.
const MaxTicketKey = 255

// TicketLookup is the result of reading one key from Jira.
type TicketLookup struct {
	Key    string  `json:"key"`
	Result string  `json:"result"`
	Ticket *Ticket `json:"ticket,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Gap names a fact that could not be gathered completely. A control that
// depends on it can be neither passed nor failed with confidence.
type Gap struct {
	Source string `json:"source"` // files, commits, reviews, checks, statuses, deployments, teams, jira
	Reason string `json:"reason"`
	// Truncated is true when GitHub's list limit was reached (250 commits,
	// 3,000 files): the list is known to be incomplete.
	Truncated bool `json:"truncated,omitempty"`
}

// Facts is an immutable snapshot of everything known about one pull request
// at one moment. Lists a policy does not need are left nil.
type Facts struct {
	Subject     Subject        `json:"subject"`
	PR          PullRequest    `json:"pull_request"`
	Files       []string       `json:"files,omitempty"`
	Commits     []Commit       `json:"commits,omitempty"`
	Reviews     []Review       `json:"reviews,omitempty"`
	CheckRuns   []CheckRun     `json:"check_runs,omitempty"`
	Statuses    []Status       `json:"statuses,omitempty"`
	Deployments []Deployment   `json:"deployments,omitempty"`
	Memberships []Membership   `json:"memberships,omitempty"`
	Tickets     []TicketLookup `json:"tickets,omitempty"`
	// Promotions are the artifacts a GitOps pull request sets under the
	// production paths of the policy's promotion pairs.
	Promotions []Promotion `json:"promotions,omitempty"`
	Gaps       []Gap       `json:"gaps,omitempty"`
	// AsOf is when the facts were read: a soak is judged against it.
	AsOf time.Time `json:"as_of,omitzero"`
}

// GapIn returns the gap recorded for source, if any.
func (f *Facts) GapIn(source string) (Gap, bool) {
	for _, g := range f.Gaps {
		if g.Source == source {
			return g, true
		}
	}
	return Gap{}, false
}

// GateAnswer is changegate's answer to a deployment protection rule: what
// was asked, what was decided, and when it was answered.
type GateAnswer struct {
	DeploymentID int64     `json:"deployment_id"`
	Environment  string    `json:"environment"`
	SHA          string    `json:"sha"`
	State        string    `json:"state"` // approved, rejected
	Comment      string    `json:"comment"`
	Pulls        []int     `json:"pulls,omitempty"` // the pull requests judged
	DeliveryID   string    `json:"delivery_id,omitempty"`
	AnsweredAt   time.Time `json:"answered_at"`
}

// MergeGroup is a merge queue entry: its commit, its ref, and the pull
// requests it held.
type MergeGroup struct {
	HeadSHA string `json:"head_sha"`
	HeadRef string `json:"head_ref"`
	BaseSHA string `json:"base_sha"`
	Pulls   []int  `json:"pulls"`
}

// DeploymentReview is an approval or rejection of a deployment by an
// environment's required reviewer in GitHub.
type DeploymentReview struct {
	Environment string    `json:"environment"`
	State       string    `json:"state"` // approved, rejected
	Reviewer    string    `json:"reviewer"`
	Comment     string    `json:"comment,omitempty"`
	At          time.Time `json:"at"`
}
