package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/change"
)

// PromotionPairs are the policy's promotion pairs, with glob matchers, for
// the fact gatherer.
func (p *Policy) PromotionPairs() []change.PromotionPair {
	out := make([]change.PromotionPair, 0, len(p.Staging.Promotion))
	for _, pr := range p.Staging.Promotion {
		prod, stag := pr.Production, pr.Staging
		out = append(out, change.PromotionPair{Production: prod, Staging: stag, Values: slices.Clone(pr.Values),
			InProduction: func(f string) bool { return matchGlob(prod, f) },
			InStaging:    func(f string) bool { return matchGlob(stag, f) }})
	}
	return out
}

// promotedPairs are the pairs whose production path the pull request
// touches.
func (p *Policy) promotedPairs(files []string) []Promotion {
	var out []Promotion
	for _, pr := range p.Staging.Promotion {
		if slices.ContainsFunc(files, func(f string) bool { return matchGlob(pr.Production, f) }) {
			out = append(out, pr)
		}
	}
	return out
}

// promotion judges a GitOps promotion: the staging control follows the
// artifacts the pull request sets under production paths, not its own
// head. ok is false when the pull request promotes nothing (it touches no
// pair's production path, or sets no artifact there): the exact-SHA rule
// then applies.
func (e *evaluation) promotion(res change.ControlResult) (change.ControlResult, bool) {
	pairs := e.p.promotedPairs(e.f.Files)
	if len(pairs) == 0 {
		return res, false
	}
	if g, ok := e.f.GapIn("manifests"); ok {
		res.Result = change.Fail
		res.Reasons = []string{"a manifest could not be read, so what it deploys cannot be checked: " + g.Reason}
		res.Fix = "Fix the manifest so that it parses, or keep it under the size limits"
		return res, true
	}
	if len(e.f.Promotions) == 0 {
		return res, false
	}
	var fails, pending, fixes []string
	var recheck time.Time
	for _, pr := range e.f.Promotions {
		j := e.judgePromotion(pr, pairs)
		switch j.result {
		case change.Pass:
			res.Evidence = append(res.Evidence, j.evidence)
		case change.Pending:
			pending = append(pending, j.reason)
			if recheck.IsZero() || !j.passesAt.IsZero() && j.passesAt.Before(recheck) {
				recheck = j.passesAt
			}
		default:
			fails = append(fails, j.reason)
			fixes = append(fixes, j.fix)
		}
	}
	switch {
	case len(fails) > 0:
		res.Result, res.Reasons, res.Fix = change.Fail, append(fails, pending...), fixes[0]
	case len(pending) > 0:
		res.Result, res.Reasons = change.Pending, pending
		res.Fix = "Nothing to do: changegate evaluates again when the soak ends, or when staging reports"
		e.recheckAt = recheck
	default:
		res.Result = change.Pass
		res.Reasons = []string{fmt.Sprintf("every artifact this pull request promotes ran in staging (%d)", len(res.Evidence))}
	}
	return res, true
}

// promotionJudgement is the verdict on one promoted artifact.
type promotionJudgement struct {
	result   change.Result
	reason   string
	fix      string
	evidence change.Evidence
	passesAt time.Time // when a soak will have elapsed
}

// judgePromotion decides one artifact: in staging at the base, put
// there by a commit whose staging sync succeeded, at least soak ago.
func (e *evaluation) judgePromotion(pr change.Promotion, pairs []Promotion) promotionJudgement {
	what, staging := describePromotion(pr), pathOf(pr.Staging)
	promote := fmt.Sprintf("Promote %s to %s first, and to production once it has run there", pr.To.Ref(), staging)
	switch {
	case pr.AlsoStaged:
		return promotionJudgement{result: change.Fail, fix: fmt.Sprintf("Promote %s to %s in a pull request of its own first", pr.To.Ref(), staging),
			reason: fmt.Sprintf("%s: this pull request sets it under %s and %s at once, so it cannot have run in staging before production", what, staging, pathOf(pr.Production))}
	case pr.Problem != "":
		return promotionJudgement{result: change.Fail, reason: what + ": " + pr.Problem, fix: promote}
	case pr.StagingFile == "":
		return promotionJudgement{result: change.Fail, fix: promote,
			reason: fmt.Sprintf("%s: not in %s on %s", what, staging, baseOf(e.f))}
	}
	since, how, t := e.promotionSync(pr)
	switch {
	case since.IsZero() && len(t.pending) > 0:
		return promotionJudgement{result: change.Pending,
			reason: fmt.Sprintf("%s: the staging sync of %s is not done: %s", what, short(pr.IntroducedBy), strings.Join(t.pending, "; "))}
	case since.IsZero():
		why := strings.Join(t.fails, "; ")
		if why == "" {
			why = "no staging deployment, check or status on it"
		}
		return promotionJudgement{result: change.Fail, fix: fmt.Sprintf("Fix the staging sync of commit %s, which put %s in %s, or promote a version that synced", short(pr.IntroducedBy), pr.To.Ref(), staging),
			reason: fmt.Sprintf("%s: commit %s put it in %s, but no staging sync of it succeeded: %s", what, short(pr.IntroducedBy), pr.StagingFile, why)}
	}
	soak := soakOf(pairs, pr)
	if passes := since.Add(soak); e.f.AsOf.Before(passes) {
		return promotionJudgement{result: change.Pending, passesAt: passes,
			reason: fmt.Sprintf("%s soaks in staging until %s (there since %s, soak %s)", what, clock(passes), clock(since), formatWindow(soak))}
	}
	return promotionJudgement{result: change.Pass, evidence: change.Evidence{Kind: "promotion", Ref: pr.To.Name,
		Detail: fmt.Sprintf("%s: in staging since %s (commit %s, %s)", strings.TrimPrefix(what, pr.To.Name+" "), clock(since), short(pr.IntroducedBy), how)}}
}

// promotionSync tallies the staging signals on the commit that put the
// artifact in staging: the time of the first success, what it was, and
// the tally for what failed or runs.
func (e *evaluation) promotionSync(pr change.Promotion) (since time.Time, how string, t *stagingTally) {
	st := e.p.Staging
	t = &stagingTally{globs: st, head: pr.IntroducedBy}
	if len(st.Environments) > 0 {
		t.deployments(pr.Deployments)
	}
	if len(st.Checks) > 0 {
		t.checkRuns(pr.CheckRuns)
		t.statuses(pr.Statuses)
	}
	for i, at := range t.successAt {
		if since.IsZero() || at.Before(since) {
			since, how = at, t.evidence[i].Kind+" "+t.evidence[i].Ref+" success"
		}
	}
	return since, strings.NewReplacer("check_run ", "check ", "deployment ", "deployment to ").Replace(how), t
}

// soakOf is the longest soak among the pairs that cover the artifact's
// production file.
func soakOf(pairs []Promotion, pr change.Promotion) time.Duration {
	var soak time.Duration
	for _, p := range pairs {
		if matchGlob(p.Production, pr.File) && p.Staging == pr.Staging {
			soak = max(soak, p.Soak)
		}
	}
	return soak
}

// describePromotion is "name from → to", or "name to (new)".
func describePromotion(pr change.Promotion) string {
	if pr.From == nil {
		return fmt.Sprintf("%s %s (new)", pr.To.Name, pr.To.Ref())
	}
	if pr.From.Name != pr.To.Name {
		return fmt.Sprintf("%s %s → %s %s", pr.From.Name, pr.From.Ref(), pr.To.Name, pr.To.Ref())
	}
	return fmt.Sprintf("%s %s → %s", pr.To.Name, pr.From.Ref(), pr.To.Ref())
}

// baseOf names the commit a pull request is compared with: main@abc1234.
func baseOf(f *change.Facts) string {
	if f.PR.BaseSHA == "" {
		return baseRef(f)
	}
	return baseRef(f) + "@" + short(f.PR.BaseSHA)
}

// pathOf is a path glob as people name the directory: overlays/staging
// for overlays/staging/**.
func pathOf(glob string) string {
	return strings.TrimSuffix(strings.TrimSuffix(glob, "/**"), "/*")
}

// clock writes a time as people read it on a check: 2026-03-01 09:12 UTC.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
