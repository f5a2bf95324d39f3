package assess

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
)

// ControlState is whether changegate is enforced on one production branch
// or environment, and since when.
type ControlState struct {
	Repo, Target string // target: branch:NAME or environment:NAME
	Enforced     bool
	Detail       string
	Since        time.Time
	CheckedAt    time.Time
	RecordID     string // the record whose exception a loss of enforcement opened
}

// ControlStore keeps the watch's last view.
type ControlStore interface {
	ControlState(ctx context.Context, repo, target string) (ControlState, bool, error)
	PutControlState(ctx context.Context, c ControlState) error
}

// RequiredChecks lists the status checks a branch's rules require
// (ghfacts.RequiredChecks).
type RequiredChecks func(ctx context.Context, client *github.Client, repo change.Repo, branch string) ([]change.RequiredCheck, error)

// RegisterWatch adds the control watch's job handler.
func (a *Assessor) RegisterWatch(w *queue.Workers) {
	queue.Add(w, queue.Handler[jobs.WatchControls](func(ctx context.Context, log *slog.Logger, j jobs.WatchControls) (queue.Apply, error) {
		return nil, a.WatchControls(ctx, log, j.Installation, j.Repo, "")
	}))
}

// WatchControls reads whether changegate is enforced on each production
// branch (a rule requires the changegate check from this App) and each
// production environment (its protection rules name this App), and keeps
// what changed, with since when. defaultBranch, when known, saves reading
// the repository.
func (a *Assessor) WatchControls(ctx context.Context, log *slog.Logger, installation int64, repoName, defaultBranch string) error {
	if a.Controls == nil || a.RequiredChecks == nil {
		return nil
	}
	t, branches, err := a.walkScope(ctx, log, installation, repoName, defaultBranch)
	if err != nil || t.client == nil {
		return err
	}
	for _, b := range branches {
		enforced, detail, err := a.branchEnforced(ctx, t, b)
		if err != nil {
			return err
		}
		if err := a.keepControl(ctx, log, t, "branch:"+b, enforced, detail); err != nil {
			return err
		}
	}
	for _, env := range a.productionEnvironments(t) {
		enforced, detail, err := a.environmentEnforced(ctx, t, env)
		if err != nil {
			return err
		}
		if err := a.keepControl(ctx, log, t, "environment:"+env, enforced, detail); err != nil {
			return err
		}
	}
	return nil
}

func (a *Assessor) branchEnforced(ctx context.Context, t archiveScope, branch string) (bool, string, error) {
	checks, err := a.RequiredChecks(ctx, t.client, t.repo, branch)
	if noHistory(err) {
		return false, "the branch does not exist", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("rules of %s@%s: %w", t.repo, branch, err)
	}
	if ok, detail := a.requires(checks, "a rule"); ok {
		return true, detail, nil
	}
	_, ruleDetail := a.requires(checks, "a rule")
	if a.ClassicChecks == nil {
		return false, ruleDetail, nil
	}
	classic, err := a.ClassicChecks(ctx, t.client, t.repo, branch)
	if err != nil {
		// Fail closed: what cannot be seen does not enforce.
		return false, ruleDetail + "; " + err.Error(), nil
	}
	if ok, detail := a.requires(classic, "classic branch protection"); ok {
		return true, detail, nil
	}
	return false, ruleDetail, nil
}

// requires says whether checks require changegate's check from this App,
// and what they require instead.
func (a *Assessor) requires(checks []change.RequiredCheck, source string) (bool, string) {
	var others []string
	for _, c := range checks {
		switch {
		case c.Context != CheckContext:
		case c.IntegrationID == a.AppID:
			return true, fmt.Sprintf("%s requires the %s check from this App (%d)", source, CheckContext, a.AppID)
		case c.IntegrationID <= 0:
			others = append(others, "any source (anyone with write access can post it)")
		default:
			others = append(others, fmt.Sprintf("App %d", c.IntegrationID))
		}
	}
	if len(others) > 0 {
		return false, fmt.Sprintf("the %s check is required from %s, not from this App (%d)", CheckContext, strings.Join(others, ", "), a.AppID)
	}
	return false, fmt.Sprintf("no rule in force requires the %s check", CheckContext)
}

func (a *Assessor) environmentEnforced(ctx context.Context, t archiveScope, env string) (bool, string, error) {
	if a.Rules == nil {
		return false, "", nil
	}
	apps, err := a.Rules(ctx, t.client, t.repo, env)
	if noHistory(err) {
		return false, "the environment does not exist", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("protection rules of %s environment %s: %w", t.repo, env, err)
	}
	for _, id := range apps {
		if id == a.AppID {
			return true, fmt.Sprintf("its deployment protection rules include this App (%d)", a.AppID), nil
		}
	}
	return false, "its deployment protection rules do not include this App", nil
}

// productionEnvironments are the policy's production environments named
// without wildcards.
func (a *Assessor) productionEnvironments(t archiveScope) []string {
	if t.pol == nil {
		return nil
	}
	return t.pol.LiteralProductionEnvironments()
}

// keepControl stores a target's state. A change of enforcement, and the
// first sight of a target, is a control_config record: a loss opens a
// control_off exception, and the restore closes it.
func (a *Assessor) keepControl(ctx context.Context, log *slog.Logger, t archiveScope, target string, enforced bool, detail string) error {
	repo, now := t.repo.String(), a.Now().UTC()
	old, ok, err := a.Controls.ControlState(ctx, repo, target)
	if err != nil {
		return err
	}
	state := ControlState{Repo: repo, Target: target, Enforced: enforced, Detail: detail, Since: now, CheckedAt: now}
	if ok && old.Enforced == enforced {
		state.Since, state.RecordID = old.Since, old.RecordID
		return a.Controls.PutControlState(ctx, state)
	}
	level := slog.LevelInfo
	if !enforced {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "changegate enforcement", "target", target, "enforced", enforced, "detail", detail)
	if a.Archive != nil {
		rec := controlRecord(t, target, enforced, detail, old, ok, now, a.AppVersion)
		if err := a.append(ctx, log, rec); err != nil {
			return err
		}
		if !enforced {
			state.RecordID = rec.ID
		}
	}
	return a.Controls.PutControlState(ctx, state)
}

// controlRecord is the record of a change in enforcement on a target.
func controlRecord(t archiveScope, target string, enforced bool, detail string, old ControlState, seen bool, now time.Time, version string) *evidence.Record {
	c := &evidence.ControlChange{Target: target, Enforced: enforced, Detail: detail, SeenAt: now}
	if seen {
		c.WasEnforced, c.BeforeDetail = &old.Enforced, old.Detail
	}
	outcome, reason := change.Compliant, fmt.Sprintf("changegate is enforced on %s of %s: %s", target, t.repo, detail)
	if !enforced {
		outcome, reason = change.NonCompliant, fmt.Sprintf("changegate is not enforced on %s of %s: %s", target, t.repo, detail)
	}
	r := &evidence.Record{
		Schema: evidence.Schema, Repo: t.repo, ChangeType: evidence.ControlConfig,
		Facts:    change.Facts{Subject: change.Subject{Installation: t.installation, Repo: t.repo}, AsOf: now},
		Decision: change.Decision{Outcome: outcome, Reason: reason}, Policy: t.policy(),
		ObservedAt: now, AppVersion: version, Control: c,
	}
	switch {
	case !enforced:
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionControlOff, OpenedAt: now, Reason: reason}
	case seen && old.RecordID != "":
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionControlOff, OpenedAt: now, Closes: old.RecordID,
			Reason: fmt.Sprintf("changegate is enforced again on %s of %s: %s", target, t.repo, detail)}
	}
	return r
}

// CheckContext is the name of changegate's check run.
const CheckContext = "changegate"
