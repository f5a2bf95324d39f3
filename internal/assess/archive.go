package assess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/jobs"
)

// Archiver appends change records to the evidence ledger.
type Archiver interface {
	Append(ctx context.Context, r *evidence.Record) (uint64, error)
	// RecordsFor lists the ids of the records about a commit.
	RecordsFor(ctx context.Context, repo, sha string) ([]string, error)
	// TicketsOf lists the ticket keys of records.
	TicketsOf(ctx context.Context, ids []string) ([]string, error)
}

// CommitPulls lists the pull requests that contain a commit
// (ghfacts.PullRequestsForCommit).
type CommitPulls func(ctx context.Context, client *github.Client, repo change.Repo, sha string) ([]change.PullRequest, error)

// DeploymentReader lists the deployments of a commit to an environment
// (ghfacts.Deployments).
type DeploymentReader func(ctx context.Context, client *github.Client, repo change.Repo, sha, env string) ([]change.Deployment, error)

// ArchiveDeploymentJob records a successful deployment to a production
// environment, linked to the change records of the commit it shipped. A
// commit with no change record shipped unevaluated: an exception.
func (a *Assessor) ArchiveDeploymentJob(ctx context.Context, log *slog.Logger, j jobs.ArchiveDeployment) (jobs.Apply, error) {
	t, err := a.archiveTarget(ctx, log, j.Installation, j.Repo, "")
	if err != nil || t.client == nil {
		return nil, err
	}
	if t.pol != nil && !t.pol.ProductionEnvironment(j.Environment) {
		return nil, nil
	}
	repo, client := t.repo, t.client
	deps, err := a.Deployments(ctx, client, repo, j.SHA, j.Environment)
	if err != nil {
		return nil, err
	}
	links, err := a.Archive.RecordsFor(ctx, repo.String(), j.SHA)
	if err != nil {
		return nil, err
	}
	now := a.Now().UTC()
	r := &evidence.Record{
		Schema: evidence.Schema, Repo: repo, ChangeType: evidence.Deployment,
		Subject:     evidence.Subject{HeadSHA: j.SHA},
		Facts:       change.Facts{Subject: change.Subject{Installation: j.Installation, Repo: repo, HeadSHA: j.SHA}, Deployments: deps},
		Decision:    change.Decision{Outcome: change.Compliant, Reason: "deployed commits with change records"},
		ObservedAt:  now,
		DeliveryIDs: []string{j.DeliveryID},
		AppVersion:  a.AppVersion,
		Links:       links,
	}
	r.Policy = t.policy()
	reason, err := a.deploymentException(ctx, client, r, j, links)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		r.Decision = change.Decision{Outcome: change.NonCompliant, Reason: reason}
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionBypass, Reason: reason, OpenedAt: now}
	}
	return nil, a.append(ctx, log, r)
}

// deploymentException says why a production deployment is an exception,
// if it is: it shipped a commit with no change record, changegate's
// protection rule rejected it, or the environment names changegate's rule
// and the deployment succeeded without its approval (an admin bypassed
// it). It puts changegate's answer, if there was one, into the record.
func (a *Assessor) deploymentException(ctx context.Context, client *github.Client, r *evidence.Record, j jobs.ArchiveDeployment, links []string) (string, error) {
	var gate change.GateAnswer
	answered := false
	if a.Gates != nil {
		var err error
		if gate, answered, err = a.Gates.Gate(ctx, r.Repo.String(), j.DeploymentID, j.Environment); err != nil {
			return "", err
		}
	}
	if answered {
		r.Gate = &gate
	}
	if a.Gates != nil {
		reviews, err := a.Gates.DeploymentReviews(ctx, r.Repo.String(), j.SHA, j.Environment)
		if err != nil {
			return "", err
		}
		r.DeploymentReviews = reviews
	}
	switch {
	case len(links) == 0:
		return fmt.Sprintf("deployed %s to %s, a commit with no change record: it never went through a reviewed, merged pull request", short(j.SHA), j.Environment), nil
	case answered && gate.State == gateRejected:
		return fmt.Sprintf("deployed %s to %s although changegate's protection rule rejected it: %s", short(j.SHA), j.Environment, gate.Comment), nil
	case answered:
		return "", nil
	}
	guarded, err := a.guardedBy(ctx, client, r.Repo, j.Environment)
	if err != nil || !guarded {
		return "", err
	}
	return fmt.Sprintf("deployed %s to %s without changegate's approval, although the environment names changegate as its protection rule: its rules were bypassed", short(j.SHA), j.Environment), nil
}

// guardedBy says whether an environment has enabled changegate's custom
// deployment protection rule.
func (a *Assessor) guardedBy(ctx context.Context, client *github.Client, repo change.Repo, env string) (bool, error) {
	if a.Rules == nil || a.AppID == 0 {
		return false, nil
	}
	apps, err := a.Rules(ctx, client, repo, env)
	if err != nil {
		return false, err
	}
	return slices.Contains(apps, a.AppID), nil
}

// ArchivePushJob records a push to a production branch that no merged pull
// request covers: a direct push, with an exception.
func (a *Assessor) ArchivePushJob(ctx context.Context, log *slog.Logger, j jobs.ArchivePush) (jobs.Apply, error) {
	if repo, err := change.ParseRepo(j.Repo); err == nil && a.PolicyPushed != nil {
		a.PolicyPushed(repo)
	}
	t, err := a.archiveTarget(ctx, log, j.Installation, j.Repo, j.DefaultBranch)
	if err != nil || t.client == nil {
		return nil, err
	}
	if t.pol != nil && !t.pol.ProductionBranch(j.Branch, j.DefaultBranch) {
		return nil, nil
	}
	repo, client := t.repo, t.client
	var uncovered []string
	for _, sha := range j.Commits {
		prs, err := a.CommitPulls(ctx, client, repo, sha)
		if err != nil {
			return nil, err
		}
		covered := false
		for _, pr := range prs {
			if pr.Merged && pr.BaseRef == j.Branch {
				covered = true
				break
			}
		}
		if !covered {
			uncovered = append(uncovered, sha)
		}
	}
	if len(uncovered) == 0 {
		return nil, nil
	}
	now := a.Now().UTC()
	reason := fmt.Sprintf("%s pushed %d commit(s) to %s outside a merged pull request: %s",
		orSomeone(j.Pusher), len(uncovered), j.Branch, strings.Join(shorts(uncovered), ", "))
	r := &evidence.Record{
		Schema: evidence.Schema, Repo: repo, ChangeType: evidence.DirectPush,
		Subject:     evidence.Subject{BaseRef: j.Branch, HeadSHA: j.After},
		Facts:       change.Facts{Subject: change.Subject{Installation: j.Installation, Repo: repo, BaseRef: j.Branch, HeadSHA: j.After}},
		Decision:    change.Decision{Outcome: change.NonCompliant, Reason: reason},
		ObservedAt:  now,
		DeliveryIDs: []string{j.DeliveryID},
		AppVersion:  a.AppVersion,
		Exception:   &evidence.Exception{Kind: evidence.ExceptionDirectPush, Reason: reason, OpenedAt: now},
		Policy:      t.policy(),
	}
	for _, sha := range uncovered {
		r.Facts.Commits = append(r.Facts.Commits, change.Commit{SHA: sha})
	}
	if err := a.append(ctx, log, r); err != nil {
		return nil, err
	}
	// After the record, never before: a crash between leaves an extra
	// reconciliation exception, not a hole.
	if a.Reconciles != nil && r.ID != "" {
		return nil, a.Reconciles.MarkPushed(ctx, repo.String(), r.ID, uncovered)
	}
	return nil, nil
}

// archiveScope is what an archive job needs: the repository, its
// installation client, and the policy that says what production is.
type archiveScope struct {
	repo         change.Repo
	installation int64
	client       *github.Client // nil: nothing is archived (no archiver configured)
	// pol is nil only when no policy at all can be read, not even a
	// baseline: production cannot be told from the rest, so the caller
	// archives (fails closed).
	pol     Policy
	source  string
	invalid string // the repository policy's error, when the baseline stood in
}

// policy is the record's policy field.
func (t archiveScope) policy() evidence.Policy {
	if t.pol == nil {
		return evidence.Policy{Invalid: t.invalid}
	}
	return evidence.Policy{Digest: t.pol.Digest(), Source: t.source, Invalid: t.invalid}
}

// archiveTarget resolves an archive job's scope from the policy of ref.
// When that policy is invalid, its baseline (the organisation's file, or
// the server default) decides what production is: an invalid file neither
// widens production scope (every push a direct push) nor loses it.
func (a *Assessor) archiveTarget(ctx context.Context, log *slog.Logger, installation int64, repoName, ref string) (archiveScope, error) {
	repo, err := change.ParseRepo(repoName)
	if err != nil || a.Archive == nil {
		return archiveScope{repo: repo}, err
	}
	client, err := a.Clients.Installation(installation)
	if err != nil {
		return archiveScope{repo: repo}, err
	}
	pol, source, err := a.Policies(ctx, client, repo, ref)
	var invalid *InvalidPolicyError
	if errors.As(err, &invalid) {
		log.Warn("invalid policy on the default branch; its baseline decides what production is", "error", invalid, "baseline", invalid.BaselineSource)
		return archiveScope{repo: repo, installation: installation, client: client, pol: invalid.Baseline, source: invalid.BaselineSource, invalid: invalid.Error()}, nil
	}
	if err != nil {
		return archiveScope{repo: repo}, err
	}
	return archiveScope{repo: repo, installation: installation, client: client, pol: pol, source: source}, nil
}

func (a *Assessor) append(ctx context.Context, log *slog.Logger, r *evidence.Record) error {
	seq, err := a.Archive.Append(ctx, r)
	if errors.Is(err, ErrDuplicateRecord) {
		log.Debug("already archived", "seq", seq)
		return nil
	}
	if err != nil {
		return fmt.Errorf("archive %s: %w", r.ChangeType, err)
	}
	log.Info("change archived", "seq", seq, "record", r.ID, "change_type", r.ChangeType)
	return a.writeBack(ctx, r)
}

// writeBack queues, when configured, a note to each Jira ticket of a
// merge or a production deployment: its own tickets, or those of the
// change records a deployment links. The record is archived already; a
// Jira failure is retried by the job and never undoes it.
func (a *Assessor) writeBack(ctx context.Context, r *evidence.Record) error {
	if a.WriteBack == nil || r.Backfilled || r.Exception != nil && r.Exception.Closes != "" {
		return nil
	}
	var keys []string
	switch r.ChangeType {
	case evidence.Standard, evidence.Emergency, evidence.Bypass:
		for _, t := range r.Facts.Tickets {
			if t.Result == change.LookupFound {
				keys = append(keys, t.Key)
			}
		}
	case evidence.Deployment:
		var err error
		if keys, err = a.Archive.TicketsOf(ctx, r.Links); err != nil {
			return err
		}
	}
	verdict := verdictLine(r)
	for _, k := range dedupeKeys(keys) {
		j := jobs.JiraWriteBack{Key: k, RecordID: r.ID, Title: verdict, Comment: "changegate archived " + verdict}
		if err := a.WriteBack(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

// verdictLine is one line about a record, for a ticket.
func verdictLine(r *evidence.Record) string {
	what := r.Repo.String()
	if r.Subject.PR != 0 {
		what += fmt.Sprintf(" #%d", r.Subject.PR)
	}
	if r.ChangeType == evidence.Deployment {
		what += " deployment of " + short(r.Subject.HeadSHA)
	}
	v := string(r.ChangeType) + ", " + string(r.Decision.Outcome)
	if r.Exception != nil {
		v += ", exception " + r.Exception.Kind
	}
	return what + ": " + v
}

func dedupeKeys(keys []string) []string {
	var out []string
	for _, k := range keys {
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func orSomeone(s string) string {
	if s == "" {
		return "someone"
	}
	return s
}

func shorts(shas []string) []string {
	out := make([]string, len(shas))
	for i, s := range shas {
		out[i] = short(s)
	}
	return out
}

// ErrDuplicateRecord is what an Archiver returns for a change archived
// before; the ledger package's ErrDuplicate wraps or equals it.
var ErrDuplicateRecord = errors.New("record already archived")

// archiveMerge records a pull request merged into a production branch: a
// final snapshot of the facts and the decision they give. A merge the
// decision did not allow is a bypass, with an open exception; an emergency
// merge owes a manager's approval within the policy's window.
func (a *Assessor) archiveMerge(ctx context.Context, log *slog.Logger, client *github.Client, head *change.Facts, delivery string) error {
	return a.archiveMergeAs(ctx, log, client, head, delivery, "", false)
}

// archiveMergeFound archives a merge that no webhook brought, found by
// how: it is an unrecorded exception, or a bypass that says so.
func (a *Assessor) archiveMergeFound(ctx context.Context, log *slog.Logger, client *github.Client, head *change.Facts, how string) error {
	return a.archiveMergeAs(ctx, log, client, head, "", how, false)
}

// archiveMergeAs archives a merge: live (from delivery), found by
// reconciliation (found), or backfilled.
func (a *Assessor) archiveMergeAs(ctx context.Context, log *slog.Logger, client *github.Client, head *change.Facts, delivery, found string, backfilled bool) error {
	facts, d, _, pol, err := a.decide(ctx, client, head)
	if err != nil {
		return err
	}
	if d.Outcome == change.NotProduction {
		log.Debug("merge not archived: not a production change", "reason", d.Reason)
		return nil
	}
	rec := mergeRecord(facts, d, a.Now(), delivery, a.AppVersion)
	if found != "" {
		markFound(rec, found, a.Now())
	}
	rec.Backfilled = backfilled
	if rec.ChangeType == evidence.Bypass {
		if err := a.bypassDetails(ctx, client, rec); err != nil {
			return err
		}
	}
	if a.Groups != nil {
		g, ok, err := a.Groups.MergeGroupOf(ctx, rec.Repo.String(), rec.Subject.PR, rec.Subject.MergeSHA)
		if err != nil {
			return err
		}
		if ok {
			rec.MergeGroup = &g
		}
	}
	if err := a.append(ctx, log, rec); err != nil {
		return err
	}
	if rec.ChangeType != evidence.Emergency || pol == nil {
		return nil
	}
	return a.closeEmergency(ctx, log, pol, facts, rec, delivery)
}

// bypassDetails adds to a bypass record who merged and what they wrote:
// GitHub keeps a ruleset bypass's justification only in the merge commit's
// message, after its first line.
func (a *Assessor) bypassDetails(ctx context.Context, client *github.Client, rec *evidence.Record) error {
	rec.Exception.By = rec.Facts.PR.MergedBy
	if rec.Exception.By != "" {
		rec.Exception.Reason += "; merged by " + rec.Exception.By
	}
	if a.CommitMessage == nil || rec.Subject.MergeSHA == "" {
		return nil
	}
	msg, err := a.CommitMessage(ctx, client, rec.Repo, rec.Subject.MergeSHA)
	if err != nil {
		return err
	}
	_, body, _ := strings.Cut(msg, "\n")
	rec.Exception.Justification = strings.TrimSpace(body)
	return nil
}

// closeEmergency records a manager's approval given after an emergency
// merge, when it came within the policy's window: a new record that closes
// the emergency record's exception. A late approval closes nothing; the
// exception stays open and is reported.
func (a *Assessor) closeEmergency(ctx context.Context, log *slog.Logger, pol Policy, facts *change.Facts, emergency *evidence.Record, delivery string) error {
	// The decision without the emergency label says whether a manager has
	// approved by now.
	plain := *facts
	plain.PR.Labels = slices.DeleteFunc(slices.Clone(facts.PR.Labels), func(l string) bool { return strings.EqualFold(l, pol.EmergencyLabel()) })
	d := pol.Evaluate(&plain)
	if c, ok := d.Control(change.ControlManagerApproval); !ok || c.Result != change.Pass {
		return nil
	}
	approver, at, ok := managerApproval(facts)
	if !ok {
		return nil
	}
	origID := evidence.RecordID(emergency.Repo.String(), emergency.Subject.SHA(), evidence.Emergency, "")
	due := emergency.Exception.DueAt
	if at.After(due) {
		log.Warn("emergency approval came late; the exception stays open", "approver", approver, "approved_at", at, "due_at", due)
		return nil
	}
	closing := *emergency
	closing.Decision = d
	closing.ObservedAt = a.Now().UTC()
	closing.DeliveryIDs = nil
	if delivery != "" {
		closing.DeliveryIDs = []string{delivery}
	}
	closing.Links = []string{origID}
	closing.Exception = &evidence.Exception{Kind: evidence.ExceptionEmergency, Closes: origID, OpenedAt: emergency.Exception.OpenedAt, DueAt: due,
		Reason: fmt.Sprintf("approved after the fact by %s at %s, within the window ending %s", approver, at.UTC().Format(time.RFC3339), due.UTC().Format(time.RFC3339))}
	return a.append(ctx, log, &closing)
}

// managerApproval is the earliest approval on the head by a user with an
// active membership of a manager team, as the facts hold them.
func managerApproval(f *change.Facts) (string, time.Time, bool) {
	managers := map[string]bool{}
	for _, m := range f.Memberships {
		if m.Active {
			managers[strings.ToLower(m.User)] = true
		}
	}
	var who string
	var at time.Time
	for _, r := range f.Reviews {
		if r.State != change.ReviewApproved || r.CommitID != f.PR.HeadSHA || !managers[strings.ToLower(r.User)] {
			continue
		}
		if who == "" || r.SubmittedAt.Before(at) {
			who, at = r.User, r.SubmittedAt
		}
	}
	return who, at, who != ""
}

// mergeRecord is the change record of a merge. It is pure.
func mergeRecord(f *change.Facts, d change.Decision, now time.Time, delivery, version string) *evidence.Record {
	merged := f.PR.MergedAt
	if merged.IsZero() {
		merged = now
	}
	r := &evidence.Record{
		Schema:     evidence.Schema,
		Repo:       f.Subject.Repo,
		Subject:    evidence.Subject{PR: f.Subject.Number, BaseRef: f.PR.BaseRef, HeadSHA: f.PR.HeadSHA, MergeSHA: f.Subject.MergeSHA},
		ChangeType: evidence.Standard,
		Facts:      *f,
		Decision:   d,
		Policy:     evidence.Policy{Digest: d.PolicyDigest, Source: d.PolicySource},
		ObservedAt: now.UTC(),
		AppVersion: version,
	}
	if delivery != "" {
		r.DeliveryIDs = []string{delivery}
	}
	switch {
	case d.Outcome != change.Compliant && d.Outcome != change.Exempt:
		r.ChangeType = evidence.Bypass
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionBypass, OpenedAt: merged.UTC(),
			Reason: "merged while changegate's decision was " + string(d.Outcome) + missing(d)}
	case d.Emergency:
		r.ChangeType = evidence.Emergency
		window := d.EmergencyWindow
		if window <= 0 {
			window = 48 * time.Hour
		}
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionEmergency, OpenedAt: merged.UTC(), DueAt: merged.Add(window).UTC(),
			Reason: "emergency change: a manager's approval is due after the fact"}
	}
	return r
}

// markFound marks a merge record that no webhook brought: an exception of
// its own, unrecorded, unless it is one already, whose reason then says how
// it was found.
func markFound(r *evidence.Record, how string, now time.Time) {
	note := "merged with no webhook seen by changegate; found by " + how
	if r.Exception != nil {
		r.Exception.Reason += " (" + note + ")"
		return
	}
	r.Exception = &evidence.Exception{Kind: evidence.ExceptionUnrecorded, OpenedAt: now.UTC(), Reason: note}
}

// missing names the controls that did not pass, for an exception's reason.
func missing(d change.Decision) string {
	var names []string
	for _, c := range d.Controls {
		if c.Result != change.Pass {
			names = append(names, c.Control+" "+string(c.Result))
		}
	}
	if d.Reason != "" {
		names = append(names, d.Reason)
	}
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}
