package assess

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
)

// GroupPulls lists the pull requests of a merge group
// (ghfacts.MergeGroupPulls).
type GroupPulls func(ctx context.Context, client *github.Client, repo change.Repo, baseSHA, headSHA, headRef string) ([]int, error)

// GroupStore remembers the merge groups checked, for the merge records.
type GroupStore interface {
	PutMergeGroup(ctx context.Context, tx jobs.Tx, repo string, g change.MergeGroup) error
	MergeGroupOf(ctx context.Context, repo string, pr int, sha string) (change.MergeGroup, bool, error)
}

// MergeGroupJob posts the changegate check on a merge group's head commit,
// so that a queue requiring it does not wait until it times out. It passes
// when every pull request in the group has a passing decision on its own
// head; each is read and evaluated afresh.
func (a *Assessor) MergeGroupJob(ctx context.Context, log *slog.Logger, j jobs.MergeGroup) (jobs.Apply, error) {
	repo, err := change.ParseRepo(j.Repo)
	if err != nil {
		return nil, err
	}
	client, err := a.Clients.Installation(j.Installation)
	if err != nil {
		return nil, err
	}
	numbers, err := a.GroupPulls(ctx, client, repo, j.BaseSHA, j.HeadSHA, j.HeadRef)
	if err != nil {
		return nil, err
	}
	var verdicts []gateVerdict
	for _, n := range numbers {
		v, err := a.gateVerdict(ctx, client, change.Subject{Installation: j.Installation, Repo: repo, Number: n})
		if err != nil {
			return nil, err
		}
		verdicts = append(verdicts, v)
	}
	d := groupDecision(verdicts)
	subject := change.Subject{Installation: j.Installation, Repo: repo, BaseRef: j.BaseRef, HeadRef: j.HeadRef, HeadSHA: j.HeadSHA}
	wrote, err := a.Publish(ctx, client, subject, d)
	if err != nil {
		return nil, err
	}
	log.Info("merge group evaluated", "pulls", numbers, "outcome", d.Outcome, "check_written", wrote)
	if a.Groups == nil || len(numbers) == 0 {
		return nil, nil
	}
	g := change.MergeGroup{HeadSHA: j.HeadSHA, HeadRef: j.HeadRef, BaseSHA: j.BaseSHA, Pulls: numbers}
	return func(ctx context.Context, tx jobs.Tx) error { return a.Groups.PutMergeGroup(ctx, tx, repo.String(), g) }, nil
}

// groupDecision combines the decisions of a group's pull requests, control
// by control: a control passes when it passed for every pull request, and
// each reason says which pull request it is about. A group whose pull
// requests cannot be found fails: nothing shows it was reviewed.
func groupDecision(verdicts []gateVerdict) change.Decision {
	if len(verdicts) == 0 {
		return change.Decision{Outcome: change.NonCompliant,
			Reason: "no pull request was found in this merge group, so nothing shows its change was reviewed and approved"}
	}
	d := change.Decision{Outcome: change.Compliant, PolicyDigest: verdicts[0].decision.PolicyDigest, PolicySource: verdicts[0].decision.PolicySource}
	byControl := map[string]*change.ControlResult{}
	for _, name := range change.Controls {
		byControl[name] = &change.ControlResult{Control: name, Result: change.Pass}
	}
	var prs []string
	for _, v := range verdicts {
		prs = append(prs, fmt.Sprintf("#%d", v.pr.Number))
		d.Outcome = worseOutcome(d.Outcome, v.decision.Outcome)
		for _, c := range groupControls(v) {
			g := byControl[c.Control]
			if g == nil {
				continue
			}
			g.Result = worseResult(g.Result, c.Result)
			for _, r := range c.Reasons {
				g.Reasons = append(g.Reasons, fmt.Sprintf("#%d: %s", v.pr.Number, r))
			}
			g.Evidence = append(g.Evidence, c.Evidence...)
			if g.Fix == "" && c.Result != change.Pass && c.Fix != "" {
				g.Fix = fmt.Sprintf("#%d: %s", v.pr.Number, c.Fix)
			}
		}
	}
	for _, name := range change.Controls {
		d.Controls = append(d.Controls, *byControl[name])
	}
	if d.Outcome == change.Compliant {
		d.Reason = "merge group of " + strings.Join(prs, ", ")
	}
	return d
}

// groupControls are a pull request's control results; one exempt or not
// a production change passes them all, saying why.
func groupControls(v gateVerdict) []change.ControlResult {
	switch v.decision.Outcome {
	case change.Exempt, change.NotProduction:
		var out []change.ControlResult
		for _, name := range change.Controls {
			out = append(out, change.ControlResult{Control: name, Result: change.Pass, Reasons: []string{string(v.decision.Outcome) + ": " + v.decision.Reason}})
		}
		return out
	case change.InvalidPolicy:
		var out []change.ControlResult
		for _, name := range change.Controls {
			out = append(out, change.ControlResult{Control: name, Result: change.Fail, Reasons: []string{v.decision.Reason}})
		}
		return out
	}
	return v.decision.Controls
}

// worseOutcome ranks outcomes for a group: any failure fails it, then any
// undecided leaves it undecided.
func worseOutcome(a, b change.Outcome) change.Outcome {
	rank := func(o change.Outcome) int {
		switch o {
		case change.NonCompliant, change.InvalidPolicy:
			return 2
		case change.Undecided:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		if b == change.InvalidPolicy {
			return change.NonCompliant
		}
		return b
	}
	return a
}

func worseResult(a, b change.Result) change.Result {
	rank := map[change.Result]int{change.Pass: 0, change.Pending: 1, change.Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
