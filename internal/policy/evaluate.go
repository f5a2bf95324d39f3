package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/change"
)

// PolicyFile is where a repository keeps its policy, on its base branch.
const PolicyFile = ".github/changegate.yml"

// webFlow is the committer GitHub records for commits made in its web UI
// and for merges of the base branch: it is GitHub, not a person.
const webFlow = "web-flow"

// Evaluate decides one pull request. It is pure: it reads only p and f,
// never the clock (the emergency window is enforced after the merge, by
// whoever holds the merge time). p and f must not be nil.
//
// Fail closed: a fact that could not be read makes a control pending, a
// list known to be truncated makes it fail, and nothing unknown passes.
func Evaluate(p *Policy, f *change.Facts) change.Decision {
	d := change.Decision{PolicyDigest: p.Digest()}
	if reason, ok := notProduction(p, f); ok {
		d.Outcome, d.Reason = change.NotProduction, reason
		return d
	}
	if reason, ok := exempt(p, f); ok {
		d.Outcome, d.Reason = change.Exempt, reason
		return d
	}
	e := newEvaluation(p, f)
	d.Emergency = e.emergency
	if e.emergency {
		d.EmergencyWindow = p.Emergency.Window
	}
	d.Controls = []change.ControlResult{e.ticket(), e.peerReview(), e.staging(), e.managerApproval()}
	d.RecheckAt = e.recheckAt
	d.Outcome = change.Compliant
	for _, c := range d.Controls {
		switch c.Result {
		case change.Fail:
			d.Outcome = change.NonCompliant
		case change.Pending:
			if d.Outcome == change.Compliant {
				d.Outcome = change.Undecided
			}
		}
	}
	return d
}

func baseRef(f *change.Facts) string {
	if f.PR.BaseRef != "" {
		return f.PR.BaseRef
	}
	return f.Subject.BaseRef
}

func headSHA(f *change.Facts) string {
	if f.PR.HeadSHA != "" {
		return f.PR.HeadSHA
	}
	return f.Subject.HeadSHA
}

// notProduction returns why the change is not a production change. An
// unknown default branch or an incomplete file list counts as production.
func notProduction(p *Policy, f *change.Facts) (string, bool) {
	base := baseRef(f)
	if !p.ProductionBranch(base, f.PR.DefaultBranch) {
		if len(p.Production.Branches) == 0 {
			return fmt.Sprintf("not a production change: base branch %s is not a production branch (the default branch %s is)", base, f.PR.DefaultBranch), true
		}
		return fmt.Sprintf("not a production change: base branch %s is not a production branch (%s)", base, strings.Join(p.Production.Branches, ", ")), true
	}
	// A change to the policy itself is always a production change:
	// otherwise a repository that narrowed its paths could loosen its
	// policy with an ungated pull request.
	if slices.Contains(f.Files, PolicyFile) {
		return "", false
	}
	if len(p.Production.Paths) > 0 {
		if _, gap := f.GapIn("files"); gap {
			return "", false
		}
		if !slices.ContainsFunc(f.Files, func(file string) bool { return matchAny(p.Production.Paths, file) }) {
			return fmt.Sprintf("not a production change: no file under production.paths (%s)", strings.Join(p.Production.Paths, ", ")), true
		}
	}
	return "", false
}

// exempt returns why the policy exempts the change. An author exemption
// holds only when every author and committer is exempt: a person pushing
// onto a bot's branch must not ride on the bot's exemption.
func exempt(p *Policy, f *change.Facts) (string, bool) {
	if len(p.Exempt.Authors) > 0 && containsFold(p.Exempt.Authors, f.PR.Author) {
		_, gap := f.GapIn("commits")
		all := !gap
		for login := range authorsOf(f) {
			all = all && containsFold(p.Exempt.Authors, login)
		}
		if all {
			return fmt.Sprintf("exempt: the author %s is listed in exempt.authors", f.PR.Author), true
		}
	}
	if len(p.Exempt.Paths) > 0 && len(f.Files) > 0 {
		if _, gap := f.GapIn("files"); !gap &&
			!slices.ContainsFunc(f.Files, func(file string) bool { return !matchAny(p.Exempt.Paths, file) }) {
			return fmt.Sprintf("exempt: every changed file matches exempt.paths (%s)", strings.Join(p.Exempt.Paths, ", ")), true
		}
	}
	return "", false
}

// authorsOf maps each author's lowercased login to what makes them one:
// the PR author, every commit's author and committer, and co-authors.
func authorsOf(f *change.Facts) map[string]string {
	out := map[string]string{}
	add := func(login, role string) {
		key := strings.ToLower(login)
		if key == "" || key == webFlow {
			return
		}
		if _, ok := out[key]; !ok {
			out[key] = role
		}
	}
	add(f.PR.Author, "opened this pull request")
	if isBot(f.PR.Author) {
		// A bot or coding agent opened it for someone: the people it is
		// assigned to answer for it, and may not approve it.
		for _, a := range f.PR.Assignees {
			add(a, "is assigned to this pull request, which "+f.PR.Author+" opened")
		}
	}
	for _, c := range f.Commits {
		add(c.Author.Login, "authored commit "+short(c.SHA))
		add(c.Committer.Login, "committed "+short(c.SHA))
		for _, co := range c.CoAuthors {
			add(co.Login, "is a co-author (Co-authored-by) of commit "+short(c.SHA))
		}
	}
	return out
}

// neverCounts says why an approval by user never counts, whatever it
// approved: a bot or GitHub App, a login in review.ignore, or an author.
func (e *evaluation) neverCounts(user string) (string, bool) {
	switch {
	case isBot(user):
		return "is a bot or GitHub App; their approvals never count", true
	case containsFold(e.p.Review.Ignore, user):
		return "is listed in review.ignore, whose approvals never count", true
	}
	if role, ok := e.authors[strings.ToLower(user)]; ok {
		return role + "; authors and committers cannot approve their own change", true
	}
	return "", false
}

// notAManager starts the why of an approval by someone not in the manager
// teams.
const notAManager = "not a manager"

// managerIgnored says why an approval does not count as a manager's: the
// note for the reasons, and the why for the list of ignored approvals.
// Empty when it counts.
func (e *evaluation) managerIgnored(r change.Review, teams string) (note, why string) {
	active, inactive := e.teamsOf(r.User)
	role, isAuthor := e.authors[strings.ToLower(r.User)]
	switch {
	case isBot(r.User) || containsFold(e.p.Review.Ignore, r.User):
		why, _ := e.neverCounts(r.User)
		return fmt.Sprintf("%s approved but %s", r.User, why), why
	case len(active) == 0 && len(inactive) > 0:
		return fmt.Sprintf("%s approved but is not an active member of %s (membership pending)", r.User, teams),
			notAManager + ": the membership of " + teams + " is pending"
	case len(active) == 0:
		return fmt.Sprintf("%s approved but is not an active member of %s", r.User, teams), notAManager + ": not a member of " + teams
	case isAuthor:
		return fmt.Sprintf("%s is in %s but %s", r.User, active[0], role), "a manager who " + role + "; authors and committers cannot approve their own change"
	case !e.p.Review.KeepOnPush && r.CommitID != e.head:
		return fmt.Sprintf("approval by %s (%s) is on an older commit %s", r.User, active[0], short(r.CommitID)),
			fmt.Sprintf("a manager's approval of an older commit %s, not the head %s", short(r.CommitID), short(e.head))
	}
	return "", ""
}

// isBot says whether a login is a GitHub App's bot user.
func isBot(login string) bool { return strings.HasSuffix(strings.ToLower(login), "[bot]") }

// evaluation holds what several controls share.
type evaluation struct {
	p         *Policy
	f         *change.Facts
	head      string
	authors   map[string]string
	latest    []change.Review
	keys      []string
	emergency bool
	// recheckAt is set by a control that will decide by itself then.
	recheckAt time.Time
}

func newEvaluation(p *Policy, f *change.Facts) *evaluation {
	return &evaluation{
		p:         p,
		f:         f,
		head:      headSHA(f),
		authors:   authorsOf(f),
		latest:    latestReviews(f.Reviews),
		keys:      TicketKeys(p, f.PR),
		emergency: containsFold(f.PR.Labels, p.Emergency.Label),
	}
}

// latestReviews keeps each reviewer's latest deciding review. Comments and
// pending reviews neither approve nor withdraw an approval.
func latestReviews(reviews []change.Review) []change.Review {
	byUser := map[string]change.Review{}
	for _, r := range reviews {
		switch r.State {
		case change.ReviewApproved, change.ReviewChangesRequested, change.ReviewDismissed:
		default:
			continue
		}
		if r.User == "" {
			continue
		}
		u := strings.ToLower(r.User)
		if cur, ok := byUser[u]; !ok || laterReview(r, cur) {
			byUser[u] = r
		}
	}
	out := make([]change.Review, 0, len(byUser))
	for _, r := range byUser {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b change.Review) int {
		if c := a.SubmittedAt.Compare(b.SubmittedAt); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.User), strings.ToLower(b.User))
	})
	return out
}

// laterReview orders by submission time, then by ID (GitHub's IDs grow).
// On a full tie the non-approval wins: fail closed.
func laterReview(a, b change.Review) bool {
	if c := a.SubmittedAt.Compare(b.SubmittedAt); c != 0 {
		return c > 0
	}
	if a.ID != b.ID {
		return a.ID > b.ID
	}
	return a.State != change.ReviewApproved
}

func (e *evaluation) ticket() change.ControlResult {
	res := change.ControlResult{Control: change.ControlTicket}
	p, f := e.p, e.f
	if len(e.keys) == 0 {
		res.Result = change.Fail
		if len(p.Ticket.Projects) > 0 {
			for _, k := range rawKeys(p, f.PR) {
				res.Reasons = append(res.Reasons, fmt.Sprintf("%s is not in an allowed project (%s)", k, strings.Join(p.Ticket.Projects, ", ")))
			}
		}
		if len(res.Reasons) == 0 {
			res.Reasons = []string{"no Jira key in the " + orList(sourceNames(p.Ticket.Sources, false))}
		}
		example := "PAY"
		if len(p.Ticket.Projects) > 0 {
			example = p.Ticket.Projects[0]
		}
		res.Fix = fmt.Sprintf("Add a Jira key such as %s-123 to the %s", example, sourceNames(p.Ticket.Sources, true)[0])
		return res
	}

	var reasons, passed, pending []string
	var fix string
	looked := 0
	for _, k := range e.keys {
		l, ok := lookup(f, k)
		if !ok {
			continue // not looked up, e.g. beyond the lookup limit
		}
		looked++
		switch {
		case l.Result == change.LookupFound && l.Ticket != nil:
			problems, hint := ticketProblems(p, k, l.Ticket)
			if len(problems) == 0 {
				t := l.Ticket
				res.Evidence = append(res.Evidence, change.Evidence{Kind: "ticket", Ref: k, URL: t.URL,
					Detail: fmt.Sprintf("%s; type %s; status %s; reporter %s; created %s", t.Summary, t.Type, t.Status, t.Reporter, stamp(t.Created))})
				passed = append(passed, fmt.Sprintf("%s is a %s in status %q", k, t.Type, t.Status))
				continue
			}
			reasons = append(reasons, problems...)
			fix = cmp.Or(fix, hint)
		case l.Result == change.LookupNotFound:
			reasons = append(reasons, k+" does not exist in Jira")
			fix = cmp.Or(fix, fmt.Sprintf("Correct the key %s, or create the issue in Jira", k))
		case l.Result == change.LookupUnreachable:
			pending = append(pending, fmt.Sprintf("Jira unreachable: %s", cmp.Or(l.Error, "no answer for "+k)))
		default:
			pending = append(pending, fmt.Sprintf("Jira gave no usable answer for %s (%s)", k, cmp.Or(l.Result, "no result")))
		}
	}
	if looked == 0 {
		pending = append(pending, fmt.Sprintf("%s has not been looked up in Jira yet", strings.Join(e.keys, ", ")))
	}
	if g, ok := f.GapIn("jira"); ok {
		pending = append(pending, "Jira unreachable: "+g.Reason)
	}
	switch {
	case len(res.Evidence) > 0:
		res.Result = change.Pass
		res.Reasons = passed
	case len(pending) > 0:
		res.Result = change.Pending
		res.Reasons = append(pending, reasons...)
		res.Fix = "Nothing to do: changegate asks Jira again until it answers"
	default:
		res.Result = change.Fail
		res.Reasons = reasons
		res.Fix = fix
	}
	return res
}

func lookup(f *change.Facts, key string) (change.TicketLookup, bool) {
	for _, l := range f.Tickets {
		if l.Key == key {
			return l, true
		}
	}
	return change.TicketLookup{}, false
}

// ticketProblems says why a ticket does not qualify, and how to fix the
// first problem.
func ticketProblems(p *Policy, key string, t *change.Ticket) ([]string, string) {
	var problems []string
	var fix string
	if len(p.Ticket.Projects) > 0 && !containsFold(p.Ticket.Projects, t.Project) {
		problems = append(problems, fmt.Sprintf("%s is in project %s, allowed: %s", key, t.Project, strings.Join(p.Ticket.Projects, ", ")))
		fix = cmp.Or(fix, fmt.Sprintf("Reference an issue in project %s", orList(p.Ticket.Projects)))
	}
	if len(p.Ticket.IssueTypes) > 0 && !containsFold(p.Ticket.IssueTypes, t.Type) {
		problems = append(problems, fmt.Sprintf("%s is a %s, allowed types: %s", key, t.Type, strings.Join(p.Ticket.IssueTypes, ", ")))
		fix = cmp.Or(fix, fmt.Sprintf("Reference an issue of type %s", orList(p.Ticket.IssueTypes)))
	}
	if len(p.Ticket.Statuses) > 0 && !containsFold(p.Ticket.Statuses, t.Status) {
		problems = append(problems, fmt.Sprintf("%s is in status %q, allowed: %s", key, t.Status, strings.Join(p.Ticket.Statuses, ", ")))
		fix = cmp.Or(fix, fmt.Sprintf("Move %s to %s in Jira", key, orList(quoteAll(p.Ticket.Statuses))))
	}
	return problems, fix
}

// sourceNames names the configured sources for people, in reading order.
func sourceNames(sources []string, long bool) []string {
	names := map[string][2]string{
		SourceTitle:  {"title", "pull request title"},
		SourceBranch: {"branch", "head branch name"},
		SourceBody:   {"body", "pull request description"},
	}
	var out []string
	for _, s := range Sources {
		if slices.Contains(sources, s) {
			if long {
				out = append(out, names[s][1])
			} else {
				out = append(out, names[s][0])
			}
		}
	}
	if len(out) == 0 {
		out = []string{"pull request title"}
	}
	return out
}

func (e *evaluation) peerReview() change.ControlResult {
	res := change.ControlResult{Control: change.ControlPeerReview}
	p, f := e.p, e.f
	required := p.Review.Required
	if e.emergency && required > 1 {
		required = 1
	}
	if g, ok := f.GapIn("reviews"); ok {
		res.Result = change.Pending
		res.Reasons = []string{"reviews could not be read: " + g.Reason}
		res.Fix = "Nothing to do: changegate reads the reviews again"
		return res
	}
	for _, r := range e.latest {
		if r.State == change.ReviewChangesRequested {
			res.Reasons = append(res.Reasons, fmt.Sprintf("changes requested by %s", r.User))
			res.Fix = cmp.Or(res.Fix, fmt.Sprintf("Address the changes %s requested, then ask %s to review again", r.User, r.User))
		}
	}
	if len(res.Reasons) > 0 {
		res.Result = change.Fail
		return res
	}
	if required == 0 {
		res.Result = change.Pass
		res.Reasons = []string{"the policy requires no review"}
		return res
	}
	if r, ok := authorship(f); !ok {
		return r.as(change.ControlPeerReview)
	}

	var notes, stale []string
	count := 0
	ignore := func(user, why string) {
		res.Ignored = append(res.Ignored, change.Ignored{User: user, Why: why})
	}
	for _, r := range e.latest {
		switch r.State {
		case change.ReviewDismissed:
			notes = append(notes, fmt.Sprintf("the review by %s was dismissed", r.User))
			ignore(r.User, "the review was dismissed")
		case change.ReviewApproved:
			if why, ok := e.neverCounts(r.User); ok {
				notes = append(notes, fmt.Sprintf("%s approved but %s", r.User, why))
				ignore(r.User, why)
				continue
			}
			if !p.Review.KeepOnPush && r.CommitID != e.head {
				notes = append(notes, fmt.Sprintf("approval by %s is on an older commit %s", r.User, short(r.CommitID)))
				ignore(r.User, fmt.Sprintf("approved an older commit %s, not the head %s", short(r.CommitID), short(e.head)))
				stale = append(stale, r.User)
				continue
			}
			count++
			res.Evidence = append(res.Evidence, reviewEvidence("review", r.User, r))
		}
	}
	on := "on the head " + short(e.head)
	if p.Review.KeepOnPush {
		on = "on any commit"
	}
	res.Reasons = []string{fmt.Sprintf("%d of %d required %s %s from people who did not author or commit to this change", count, required, plural(required, "approval", "approvals"), on)}
	if e.emergency && p.Review.Required > required {
		res.Reasons = append(res.Reasons, fmt.Sprintf("emergency change: %d approval required instead of %d", required, p.Review.Required))
	}
	if count >= required {
		res.Result = change.Pass
		return res
	}
	res.Result = change.Fail
	res.Reasons = append(res.Reasons, notes...)
	if len(stale) > 0 {
		res.Fix = fmt.Sprintf("Ask %s to approve the latest commit %s again", orList(stale), short(e.head))
	} else {
		res.Fix = fmt.Sprintf("Ask someone who did not commit to this change to approve the latest commit %s", short(e.head))
	}
	return res
}

func reviewEvidence(kind, ref string, r change.Review) change.Evidence {
	return change.Evidence{Kind: kind, Ref: ref, URL: r.URL,
		Detail: fmt.Sprintf("%s by %s on %s at %s", r.State, r.User, short(r.CommitID), stamp(r.SubmittedAt))}
}

// verdict is a control's early answer.
type verdict struct {
	result change.Result
	reason string
	fix    string
}

func (v verdict) as(control string) change.ControlResult {
	return change.ControlResult{Control: control, Result: v.result, Reasons: []string{v.reason}, Fix: v.fix}
}

// authorship says whether the commit list can tell who the authors are.
func authorship(f *change.Facts) (verdict, bool) {
	g, ok := f.GapIn("commits")
	switch {
	case !ok:
		return verdict{}, true
	case g.Truncated:
		// Permanent: GitHub will never list the rest, so say so and fail.
		return verdict{change.Fail,
			"authorship cannot be verified: the pull request has more than 250 commits, more than GitHub lists",
			"Split the change into pull requests of at most 250 commits"}, false
	default:
		return verdict{change.Pending, "authorship cannot be verified: commits could not be read: " + g.Reason,
			"Nothing to do: changegate reads the commits again"}, false
	}
}

func (e *evaluation) staging() change.ControlResult {
	res := change.ControlResult{Control: change.ControlStaging}
	if e.emergency {
		return e.waived(res)
	}
	st := e.p.Staging
	if len(st.Environments) == 0 && len(st.Checks) == 0 {
		res.Result = change.Fail
		res.Reasons = []string{"the policy names no staging environment or check"}
		res.Fix = "Configure staging.environments or staging.checks in the policy"
		return res
	}
	if res, ok := e.promotion(res); ok {
		return res
	}
	t := &stagingTally{globs: st, head: e.head}
	if len(st.Environments) > 0 {
		t.deployments(e.f.Deployments)
	}
	if len(st.Checks) > 0 {
		t.checkRuns(e.f.CheckRuns)
		t.statuses(e.f.Statuses)
	}
	res.Evidence = t.evidence
	return t.decide(res, e.f)
}

// stagingTally sorts the staging signals on the head into evidence, failures
// and pending ones, and notes the other commits staging succeeded on.
type stagingTally struct {
	globs                     Staging
	head                      string
	evidence                  []change.Evidence
	successAt                 []time.Time // when each evidence succeeded
	fails, pending, elsewhere []string
}

// other notes a success on a commit that is not the head.
func (t *stagingTally) other(sha string) {
	if s := short(sha); !slices.Contains(t.elsewhere, s) {
		t.elsewhere = append(t.elsewhere, s)
	}
}

func (t *stagingTally) success(kind, ref, url string, at time.Time) {
	t.evidence = append(t.evidence, change.Evidence{Kind: kind, Ref: ref, URL: url,
		Detail: fmt.Sprintf("success on %s at %s", short(t.head), stamp(at))})
	t.successAt = append(t.successAt, at)
}

func afterSuccess(earlier bool) string {
	if earlier {
		return " (after an earlier success; the latest counts)"
	}
	return ""
}

// deployments judges the newest deployment of the head to each staging
// environment.
func (t *stagingTally) deployments(all []change.Deployment) {
	head := t.head
	newest := map[string]change.Deployment{}
	succeeded := map[string]bool{}
	for _, d := range all {
		if !matchAnyFold(t.globs.Environments, d.Environment) {
			continue
		}
		if d.SHA != head {
			if s, ok := effectiveStatus(d); ok && s.State == "success" {
				t.other(d.SHA)
			}
			continue
		}
		env := strings.ToLower(d.Environment)
		for _, s := range d.Statuses {
			succeeded[env] = succeeded[env] || s.State == "success"
		}
		if cur, ok := newest[env]; !ok || laterDeployment(d, cur) {
			newest[env] = d
		}
	}
	for _, env := range sortedKeys(newest) {
		d := newest[env]
		s, ok := effectiveStatus(d)
		switch {
		case !ok:
			t.pending = append(t.pending, fmt.Sprintf("the deployment of %s to %s has no status yet", short(head), d.Environment))
		case s.State == "success":
			t.success("deployment", d.Environment, cmp.Or(s.URL, d.URL), s.CreatedAt)
		case s.State == "queued" || s.State == "in_progress" || s.State == "pending":
			t.pending = append(t.pending, fmt.Sprintf("the deployment of %s to %s is %s", short(head), d.Environment, s.State))
		default:
			t.fails = append(t.fails, fmt.Sprintf("the latest deployment of %s to %s is %s%s", short(head), d.Environment, s.State, afterSuccess(succeeded[env])))
		}
	}
}

// checkRuns judges the latest run of each staging check on the head.
func (t *stagingTally) checkRuns(all []change.CheckRun) {
	head := t.head
	runs := map[string]change.CheckRun{}
	succeeded := map[string]bool{}
	for _, r := range all {
		if !matchAny(t.globs.Checks, r.Name) {
			continue
		}
		ok := r.Status == "completed" && r.Conclusion == "success"
		if r.HeadSHA != head {
			if ok {
				t.other(r.HeadSHA)
			}
			continue
		}
		succeeded[r.Name] = succeeded[r.Name] || ok
		if cur, seen := runs[r.Name]; !seen || laterRun(r, cur) {
			runs[r.Name] = r
		}
	}
	for _, name := range sortedKeys(runs) {
		r := runs[name]
		switch {
		case r.Status != "completed":
			t.pending = append(t.pending, fmt.Sprintf("check %s is %s on %s", name, cmp.Or(r.Status, "not started"), short(head)))
		case r.Conclusion == "success":
			t.success("check_run", name, r.URL, r.CompletedAt)
		default:
			t.fails = append(t.fails, fmt.Sprintf("check %s concluded %s on %s%s", name, cmp.Or(r.Conclusion, "without a conclusion"), short(head), afterSuccess(succeeded[name])))
		}
	}
}

// statuses judges the latest commit status of each staging context on the
// head.
func (t *stagingTally) statuses(all []change.Status) {
	head := t.head
	latest := map[string]change.Status{}
	succeeded := map[string]bool{}
	for _, s := range all {
		if !matchAny(t.globs.Checks, s.Context) {
			continue
		}
		if s.SHA != head {
			if s.State == "success" {
				t.other(s.SHA)
			}
			continue
		}
		succeeded[s.Context] = succeeded[s.Context] || s.State == "success"
		if cur, seen := latest[s.Context]; !seen || laterStatus(s, cur) {
			latest[s.Context] = s
		}
	}
	for _, ctx := range sortedKeys(latest) {
		s := latest[ctx]
		switch s.State {
		case "success":
			t.success("status", ctx, s.URL, s.CreatedAt)
		case "pending":
			t.pending = append(t.pending, fmt.Sprintf("status %s is pending on %s", ctx, short(head)))
		default:
			t.fails = append(t.fails, fmt.Sprintf("status %s is %s on %s%s", ctx, s.State, short(head), afterSuccess(succeeded[ctx])))
		}
	}
}

// decide turns the tally into the control's result: any success on the
// head passes; otherwise anything still running, or any source that could
// not be read, keeps it pending; otherwise it fails.
func (t *stagingTally) decide(res change.ControlResult, f *change.Facts) change.ControlResult {
	st, head := t.globs, t.head
	if len(res.Evidence) > 0 {
		res.Result = change.Pass
		res.Reasons = []string{fmt.Sprintf("staging succeeded on the head %s", short(head))}
		return res
	}
	var sources []string
	if len(st.Environments) > 0 {
		sources = append(sources, "deployments")
	}
	if len(st.Checks) > 0 {
		sources = append(sources, "checks", "statuses")
	}
	pending := t.pending
	for _, src := range sources {
		if g, ok := f.GapIn(src); ok {
			pending = append(pending, fmt.Sprintf("%s could not be read: %s", src, g.Reason))
		}
	}
	if len(pending) > 0 {
		res.Result = change.Pending
		res.Reasons = append(pending, t.fails...)
		res.Fix = "Nothing to do: changegate evaluates again when staging reports"
		return res
	}
	res.Result = change.Fail
	res.Reasons = t.fails
	for _, sha := range t.elsewhere {
		res.Reasons = append(res.Reasons, fmt.Sprintf("staging succeeded on %s, not on the head %s", sha, short(head)))
	}
	if len(res.Reasons) == 0 {
		res.Reasons = []string{fmt.Sprintf("no staging deployment or check on the head %s", short(head))}
	}
	if len(st.Environments) > 0 {
		res.Fix = fmt.Sprintf("Deploy %s to %s", short(head), example(st.Environments, "a staging environment"))
	} else {
		res.Fix = fmt.Sprintf("Run %s on %s", example(st.Checks, "the staging check"), short(head))
	}
	return res
}

// effectiveStatus is a deployment's newest status, skipping "inactive":
// GitHub marks a successful deployment inactive when a newer one reaches
// the same environment, which does not undo that this SHA was staged.
func effectiveStatus(d change.Deployment) (change.DeploymentStatus, bool) {
	active := change.Deployment{Statuses: slices.DeleteFunc(slices.Clone(d.Statuses),
		func(s change.DeploymentStatus) bool { return s.State == "inactive" })}
	if s, ok := active.Latest(); ok {
		return s, true
	}
	return d.Latest()
}

func laterDeployment(a, b change.Deployment) bool {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

// laterRun orders by completion; a tie goes to the non-success (fail closed).
func laterRun(a, b change.CheckRun) bool {
	if c := a.CompletedAt.Compare(b.CompletedAt); c != 0 {
		return c > 0
	}
	return a.Conclusion != "success"
}

// laterStatus orders by creation; a tie goes to the non-success.
func laterStatus(a, b change.Status) bool {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return a.State != "success"
}

func (e *evaluation) waived(res change.ControlResult) change.ControlResult {
	res.Result = change.Pass
	res.Reasons = []string{fmt.Sprintf("waived for an emergency change; a manager must approve within %s of the merge", formatWindow(e.p.Emergency.Window))}
	return res
}

func (e *evaluation) managerApproval() change.ControlResult {
	res := change.ControlResult{Control: change.ControlManagerApproval}
	if e.emergency {
		return e.waived(res)
	}
	m := e.p.Manager
	if len(m.Teams) == 0 && !m.JiraApproval {
		res.Result = change.Fail
		res.Reasons = []string{"the policy names no manager team and no Jira approval"}
		res.Fix = "Configure manager.teams (org/team-slug) in the policy"
		return res
	}
	if r, ok := authorship(e.f); !ok {
		return r.as(change.ControlManagerApproval)
	}

	var notes, pending []string
	if len(m.Teams) > 0 {
		n, p := e.teamApprovals(&res)
		notes, pending = append(notes, n...), append(pending, p...)
	}
	if m.JiraApproval {
		n, p := e.jiraApprovals(&res)
		notes, pending = append(notes, n...), append(pending, p...)
	}
	if len(res.Evidence) > 0 {
		res.Result = change.Pass
		res.Reasons = []string{"approved by a manager who did not author or commit to this change"}
		// Once a manager approved, the peers who are not managers are no
		// news; an approval that did not count for another reason still is.
		res.Ignored = slices.DeleteFunc(res.Ignored, func(i change.Ignored) bool { return strings.HasPrefix(i.Why, notAManager) })
		if len(res.Ignored) == 0 {
			res.Ignored = nil
		}
		return res
	}
	return e.noManager(res, notes, pending)
}

// teamApprovals adds to res the approvals of the head by manager team
// members who did not work on the change, and the approvals that did not
// count. It returns notes on those, and what could not be read.
func (e *evaluation) teamApprovals(res *change.ControlResult) (notes, pending []string) {
	teams := orList(e.p.Manager.Teams)
	for _, r := range e.latest {
		if r.State != change.ReviewApproved {
			continue
		}
		if note, why := e.managerIgnored(r, teams); note != "" {
			notes = append(notes, note)
			res.Ignored = append(res.Ignored, change.Ignored{User: r.User, Why: why})
			continue
		}
		active, _ := e.teamsOf(r.User)
		res.Evidence = append(res.Evidence, reviewEvidence("team", active[0], r))
	}
	if g, ok := e.f.GapIn("teams"); ok {
		pending = append(pending, "team memberships could not be read: "+g.Reason)
	}
	if g, ok := e.f.GapIn("reviews"); ok {
		pending = append(pending, "reviews could not be read: "+g.Reason)
	}
	return notes, pending
}

// jiraApprovals adds to res the approvals recorded on the linked tickets
// by members of the Jira group who did not work on the change. It returns
// notes on the approvals that did not count, and the tickets Jira did not
// answer for.
func (e *evaluation) jiraApprovals(res *change.ControlResult) (notes, pending []string) {
	group := e.p.Manager.JiraGroup
	ids := e.authorIdentities()
	for _, k := range e.keys {
		l, ok := lookup(e.f, k)
		if !ok {
			continue
		}
		if l.Result == change.LookupUnreachable {
			pending = append(pending, "Jira unreachable: "+cmp.Or(l.Error, "no answer for "+k))
			continue
		}
		if l.Result != change.LookupFound || l.Ticket == nil {
			continue
		}
		for _, a := range l.Ticket.Approvals {
			who := strings.Join(a.Approvers, ", ")
			var independent []string
			for _, name := range a.Approvers {
				if !ids[strings.ToLower(name)] {
					independent = append(independent, name)
				}
			}
			switch {
			case !strings.EqualFold(a.Decision, "approved"):
				notes = append(notes, fmt.Sprintf("the Jira approval on %s is %s", k, cmp.Or(a.Decision, "undecided")))
			case !containsFold(a.Groups, group):
				notes = append(notes, fmt.Sprintf("%s was approved in Jira by %s, who is not in the Jira group %s", k, who, group))
			case len(independent) == 0:
				notes = append(notes, fmt.Sprintf("%s was approved in Jira by %s, who worked on this change", k, who))
			default:
				res.Evidence = append(res.Evidence, change.Evidence{Kind: "jira_approval", Ref: k, URL: l.Ticket.URL,
					Detail: fmt.Sprintf("approved by %s (Jira group %s) at %s", strings.Join(independent, ", "), group, stamp(a.Completed))})
			}
		}
	}
	return notes, pending
}

// noManager is the result when no manager approval counts: pending while
// facts are missing, otherwise failed, naming who may approve.
func (e *evaluation) noManager(res change.ControlResult, notes, pending []string) change.ControlResult {
	m := e.p.Manager
	teams := orList(m.Teams)
	if len(pending) > 0 {
		res.Result = change.Pending
		res.Reasons = append(pending, notes...)
		res.Fix = "Nothing to do: changegate evaluates again when the missing facts can be read"
		return res
	}
	var want []string
	if len(m.Teams) > 0 {
		want = append(want, "a member of "+teams)
	}
	if m.JiraApproval {
		want = append(want, "the Jira group "+m.JiraGroup)
	}
	res.Result = change.Fail
	res.Reasons = append([]string{"no approval from " + strings.Join(want, " or from ")}, notes...)
	if len(m.Teams) > 0 {
		res.Fix = fmt.Sprintf("Ask a member of %s to approve the latest commit %s", teams, short(e.head))
	} else {
		res.Fix = fmt.Sprintf("Ask a member of the Jira group %s to approve %s in Jira", m.JiraGroup, example(e.keys, "the ticket"))
	}
	return res
}

// teamsOf returns the manager teams user belongs to, active or not.
func (e *evaluation) teamsOf(user string) (active, inactive []string) {
	for _, ms := range e.f.Memberships {
		if !strings.EqualFold(ms.User, user) || !containsFold(e.p.Manager.Teams, ms.Team) {
			continue
		}
		if ms.Active {
			active = append(active, ms.Team)
		} else {
			inactive = append(inactive, ms.Team)
		}
	}
	return active, inactive
}

// authorIdentities are every name a Jira approver might go by that belongs
// to an author: Jira knows people by name or email, not GitHub login.
func (e *evaluation) authorIdentities() map[string]bool {
	ids := map[string]bool{}
	for login := range e.authors {
		ids[login] = true
	}
	add := func(p change.Person) {
		if strings.EqualFold(p.Login, webFlow) {
			return
		}
		for _, s := range []string{p.Name, p.Email} {
			if s != "" {
				ids[strings.ToLower(s)] = true
			}
		}
	}
	for _, c := range e.f.Commits {
		add(c.Author)
		add(c.Committer)
		for _, co := range c.CoAuthors {
			add(co)
		}
	}
	return ids
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func quoteAll(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// example picks a name to put in a fix: the first that is not a pattern.
func example(names []string, fallback string) string {
	for _, n := range names {
		if !strings.ContainsAny(n, `*?[\`) {
			return n
		}
	}
	return fallback
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ProductionBranch reports whether a merge or push to branch changes
// production: production.branches, or the repository's default branch when
// none are named (an unknown default branch counts, failing closed).
func (p *Policy) ProductionBranch(branch, defaultBranch string) bool {
	if len(p.Production.Branches) == 0 || p.Production.withDefault {
		if defaultBranch == "" || branch == defaultBranch {
			return true
		}
	}
	return matchAny(p.Production.Branches, branch)
}

// LiteralProductionBranches are the production branches that can be named
// without listing the repository's branches: the default branch when it is
// production, and each branch the policy lists without a wildcard.
func (p *Policy) LiteralProductionBranches(defaultBranch string) []string {
	var out []string
	if defaultBranch != "" && p.ProductionBranch(defaultBranch, defaultBranch) {
		out = append(out, defaultBranch)
	}
	for _, b := range p.Production.Branches {
		if !strings.ContainsAny(b, "*?[{") && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// LiteralProductionEnvironments are the production environments named
// without wildcards.
func (p *Policy) LiteralProductionEnvironments() []string {
	var out []string
	for _, e := range p.Production.Environments {
		if !strings.ContainsAny(e, "*?[{") {
			out = append(out, e)
		}
	}
	return out
}

// ProductionEnvironment reports whether a deployment to env is a
// production deployment.
func (p *Policy) ProductionEnvironment(env string) bool {
	return matchAnyFold(p.Production.Environments, env)
}

// StagingCheck says whether a check run or commit status named name is
// staging evidence under the policy; "" asks whether any is.
func (p *Policy) StagingCheck(name string) bool {
	if name == "" {
		return len(p.Staging.Checks) > 0
	}
	return matchAny(p.Staging.Checks, name)
}

// ManagerTeam says whether team ("org/slug") is one whose members approve
// as managers. Logins and slugs are compared without case, as GitHub does.
func (p *Policy) ManagerTeam(team string) bool {
	for _, t := range p.Manager.Teams {
		if strings.EqualFold(t, team) {
			return true
		}
	}
	return false
}

// StagingEnvironment says whether a deployment to env is staging evidence
// under the policy.
func (p *Policy) StagingEnvironment(env string) bool {
	return matchAnyFold(p.Staging.Environments, env)
}
