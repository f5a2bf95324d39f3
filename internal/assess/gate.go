package assess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
)

// Answerer posts the answer to a deployment protection rule
// (checks.AnswerDeployment): state approved or rejected, and a comment.
type Answerer func(ctx context.Context, client *github.Client, callback string, state, environment, comment string) error

// GateStore remembers the answers given, so that a request is answered
// once and the deployment's record carries its answer.
type GateStore interface {
	Gate(ctx context.Context, repo string, deploymentID int64, environment string) (change.GateAnswer, bool, error)
	PutGate(ctx context.Context, tx jobs.Tx, repo string, g change.GateAnswer) error
	// PutDeploymentReview and DeploymentReviews keep who approved or
	// rejected a deployment in GitHub.
	PutDeploymentReview(ctx context.Context, tx jobs.Tx, repo, sha, deliveryID string, r change.DeploymentReview) error
	DeploymentReviews(ctx context.Context, repo, sha, environment string) ([]change.DeploymentReview, error)
}

// ProtectionRules lists the Apps whose custom deployment protection rules
// an environment has enabled (ghfacts.ProtectionRuleApps).
type ProtectionRules func(ctx context.Context, client *github.Client, repo change.Repo, environment string) ([]int64, error)

// ErrGatePending makes a protection-rule job retry: a control is still
// pending (staging running, Jira unreachable), and GitHub waits for a
// final answer.
var ErrGatePending = errors.New("deployment gate: a control is pending")

// DeploymentReviewJob keeps who approved or rejected a deployment in
// GitHub, for its change record. It reads nothing from GitHub.
func (a *Assessor) DeploymentReviewJob(_ context.Context, log *slog.Logger, j jobs.DeploymentReview) (jobs.Apply, error) {
	log.Info("deployment review recorded", "reviewer", j.Reviewer, "environments", j.Environments)
	return func(ctx context.Context, tx jobs.Tx) error {
		for _, env := range j.Environments {
			r := change.DeploymentReview{Environment: env, State: j.State, Reviewer: j.Reviewer, Comment: j.Comment, At: j.At.UTC()}
			if err := a.Gates.PutDeploymentReview(ctx, tx, j.Repo, j.SHA, j.DeliveryID, r); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// DeploymentGateJob answers a deployment protection rule: approved when
// every pull request that brought the SHA to production (or, for an
// unmerged ref, its open pull request) meets the policy; rejected, naming
// what is missing, otherwise. A non-production environment is approved
// with the reason. While a control is pending it waits (the job retries).
func (a *Assessor) DeploymentGateJob(ctx context.Context, log *slog.Logger, j jobs.DeploymentGate) (jobs.Apply, error) {
	repo, err := change.ParseRepo(j.Repo)
	if err != nil {
		return nil, err
	}
	if _, answered, err := a.Gates.Gate(ctx, repo.String(), j.DeploymentID, j.Environment); err != nil || answered {
		if answered {
			log.Info("deployment gate answered before; not again")
		}
		return nil, err
	}
	client, err := a.Clients.Installation(j.Installation)
	if err != nil {
		return nil, err
	}
	g, err := a.gateDecision(ctx, client, repo, j)
	if err != nil {
		return nil, err
	}
	if err := a.Answer(ctx, client, j.CallbackURL, g.State, j.Environment, g.Comment); err != nil {
		return nil, err
	}
	g.AnsweredAt = a.Now().UTC()
	log.Info("deployment gate answered", "state", g.State)
	return func(ctx context.Context, tx jobs.Tx) error { return a.Gates.PutGate(ctx, tx, repo.String(), g) }, nil
}

// gateDecision is the answer a request gets, or ErrGatePending.
func (a *Assessor) gateDecision(ctx context.Context, client *github.Client, repo change.Repo, j jobs.DeploymentGate) (change.GateAnswer, error) {
	g := change.GateAnswer{DeploymentID: j.DeploymentID, Environment: j.Environment, SHA: j.SHA, DeliveryID: j.DeliveryID}
	answer := func(state, comment string) (change.GateAnswer, error) {
		g.State, g.Comment = state, comment
		return g, nil
	}
	pol, source, err := a.Policies(ctx, client, repo, "")
	var invalid *InvalidPolicyError
	switch {
	case errors.As(err, &invalid):
		return answer(gateRejected, fmt.Sprintf("changegate rejects this deployment: the policy is invalid (%s)", invalid.Error()))
	case err != nil:
		return g, err
	case !pol.ProductionEnvironment(j.Environment):
		return answer(gateApproved, fmt.Sprintf("changegate approves: %s is not a production environment under %s, so the change controls do not apply.", j.Environment, source))
	}
	subjects, err := a.gateSubjects(ctx, client, pol, repo, j.SHA)
	if err != nil {
		return g, err
	}
	if len(subjects) == 0 {
		return answer(gateRejected, fmt.Sprintf("changegate rejects this deployment: no pull request covers %s, so it was never reviewed, tested in staging or approved. Deploy a commit of a merged pull request.", short(j.SHA)))
	}
	var verdicts []gateVerdict
	for _, pr := range subjects {
		v, err := a.gateVerdict(ctx, client, change.Subject{Installation: j.Installation, Repo: repo, Number: pr.Number})
		if err != nil {
			return g, err
		}
		verdicts = append(verdicts, v)
		g.Pulls = append(g.Pulls, pr.Number)
	}
	state, comment, err := gateAnswer(j, verdicts)
	if err != nil {
		return g, err
	}
	if frozen, ok := pol.FrozenAt(a.Now()); ok && state == gateApproved && !allEmergencies(verdicts) {
		return answer(gateRejected, fmt.Sprintf("changegate rejects deploying %s to %s: production deployments are frozen (%s). Only an emergency change (labelled as the policy's emergency.label) may deploy now.",
			short(j.SHA), j.Environment, frozen))
	}
	return answer(state, comment)
}

// allEmergencies says whether every pull request judged is an emergency
// change, which a freeze lets through.
func allEmergencies(verdicts []gateVerdict) bool {
	for _, v := range verdicts {
		if !v.decision.Emergency {
			return false
		}
	}
	return true
}

// Answer states of a deployment gate.
const (
	gateApproved = "approved"
	gateRejected = "rejected"
)

// gateSubjects are the pull requests a deployed SHA is judged by: those
// merged into a production branch that contain it, else the open pull
// requests whose head it is.
func (a *Assessor) gateSubjects(ctx context.Context, client *github.Client, pol Policy, repo change.Repo, sha string) ([]change.PullRequest, error) {
	prs, err := a.CommitPulls(ctx, client, repo, sha)
	if err != nil {
		return nil, err
	}
	var merged, open []change.PullRequest
	for _, pr := range prs {
		switch {
		case pr.Merged && pol.ProductionBranch(pr.BaseRef, pr.DefaultBranch):
			merged = append(merged, pr)
		case pr.State == "open" && pr.HeadSHA == sha:
			open = append(open, pr)
		}
	}
	if len(merged) > 0 {
		return merged, nil
	}
	return open, nil
}

// gateVerdict is one pull request's decision, read afresh.
type gateVerdict struct {
	pr       change.PullRequest
	decision change.Decision
}

func (a *Assessor) gateVerdict(ctx context.Context, client *github.Client, s change.Subject) (gateVerdict, error) {
	head, err := a.Pull(ctx, client, s)
	if err != nil {
		return gateVerdict{}, err
	}
	_, d, _, _, err := a.decide(ctx, client, head)
	if err != nil {
		return gateVerdict{}, err
	}
	return gateVerdict{pr: head.PR, decision: d}, nil
}

// gateAnswer approves when every verdict allows the change, rejects when
// one does not, and waits while one is undecided.
func gateAnswer(j jobs.DeploymentGate, verdicts []gateVerdict) (string, string, error) {
	var missing, pending, ok []string
	for _, v := range verdicts {
		ref := fmt.Sprintf("#%d", v.pr.Number)
		if v.pr.URL != "" {
			ref = fmt.Sprintf("[#%d](%s)", v.pr.Number, v.pr.URL)
		}
		switch d := v.decision; d.Outcome {
		case change.Compliant, change.Exempt, change.NotProduction:
			ok = append(ok, ref)
		case change.Undecided:
			pending = append(pending, ref+": "+strings.Join(notPassing(d), ", "))
		default:
			missing = append(missing, ref+": "+strings.Join(notPassing(d), ", "))
		}
	}
	switch {
	case len(missing) > 0:
		return gateRejected, fmt.Sprintf("changegate rejects deploying %s to %s. Missing: %s. The changegate check on each pull request says what to do.",
			short(j.SHA), j.Environment, strings.Join(missing, "; ")), nil
	case len(pending) > 0:
		return "", "", fmt.Errorf("%w: %s", ErrGatePending, strings.Join(pending, "; "))
	}
	return gateApproved, fmt.Sprintf("changegate approves deploying %s to %s: %s met the ticket, peer review, staging and manager approval controls.",
		short(j.SHA), j.Environment, strings.Join(ok, ", ")), nil
}

// notPassing names the controls of a decision that did not pass, or its
// reason when no control was evaluated.
func notPassing(d change.Decision) []string {
	var out []string
	for _, c := range d.Controls {
		if c.Result != change.Pass {
			out = append(out, strings.ReplaceAll(c.Control, "_", " ")+" "+string(c.Result))
		}
	}
	if len(out) == 0 && d.Reason != "" {
		out = append(out, d.Reason)
	}
	if len(out) == 0 {
		out = append(out, string(d.Outcome))
	}
	return out
}
