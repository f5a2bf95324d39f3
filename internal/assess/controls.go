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
	"github.com/changegate/changegate/internal/store"
)

// ControlState is whether changegate is enforced on one production branch
// or environment, and since when.
type ControlState = store.ControlState

// ControlStore keeps the watch's last view.
type ControlStore interface {
	ControlState(ctx context.Context, repo, target string) (ControlState, bool, error)
	PutControlState(ctx context.Context, c ControlState) error
}

// RequiredChecks lists the status checks a branch's rules require
// (ghfacts.RequiredChecks).
type RequiredChecks func(ctx context.Context, client *github.Client, repo change.Repo, branch string) ([]change.RequiredCheck, error)

// Bypass lists who may merge past a ruleset (ghfacts.RulesetBypass);
// visible is false when GitHub does not show the App the list.
type Bypass func(ctx context.Context, client *github.Client, repo change.Repo, rulesetID int64) (actors []string, visible bool, err error)

// ClassicChecks lists the checks classic branch protection requires on a
// branch, and who may merge without them (ghfacts.ClassicRequiredChecks).
type ClassicChecks func(ctx context.Context, client *github.Client, repo change.Repo, branch string) ([]change.RequiredCheck, []string, error)

// WatchControlsJob handles a watch_controls job: a ruleset or branch
// protection changed.
func (a *Assessor) WatchControlsJob(ctx context.Context, log *slog.Logger, j jobs.WatchControls) (jobs.Apply, error) {
	return nil, a.WatchControls(ctx, log, j.Installation, j.Repo, "")
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

// branchEnforced says whether changegate's check is required on a branch,
// by a ruleset or else by classic branch protection, with no one allowed
// to merge past it.
func (a *Assessor) branchEnforced(ctx context.Context, t archiveScope, branch string) (bool, string, error) {
	checks, err := a.RequiredChecks(ctx, t.client, t.repo, branch)
	if noHistory(err) {
		return false, "the branch does not exist", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("rules of %s@%s: %w", t.repo, branch, err)
	}
	ok, ruleDetail := a.requires(checks, "a rule")
	if ok {
		bypass, hidden, err := a.rulesetBypass(ctx, t, checks)
		if err != nil {
			return false, "", err
		}
		return withBypass(ruleDetail+hidden, bypass)
	}
	if a.ClassicChecks == nil {
		return false, ruleDetail, nil
	}
	classic, bypass, err := a.ClassicChecks(ctx, t.client, t.repo, branch)
	if err != nil {
		// Fail closed: what cannot be seen does not enforce.
		return false, ruleDetail + "; " + err.Error(), nil
	}
	if ok, detail := a.requires(classic, "classic branch protection"); ok {
		return withBypass(detail, bypass)
	}
	return false, ruleDetail, nil
}

// withBypass is the verdict on a required check that some may merge
// past: anyone on a bypass list merges without it, so it is not enforced.
func withBypass(detail string, bypass []string) (bool, string, error) {
	if len(bypass) == 0 {
		return true, detail, nil
	}
	return false, detail + ", but these may merge without it: " + strings.Join(bypass, ", "), nil
}

// rulesetBypass lists who may merge past the rulesets that require this
// App's check. A list GitHub does not show is said in hidden, not
// counted as a bypass: the App sees what its permissions allow.
func (a *Assessor) rulesetBypass(ctx context.Context, t archiveScope, checks []change.RequiredCheck) (actors []string, hidden string, err error) {
	if a.Bypass == nil {
		return nil, "", nil
	}
	seen := map[int64]bool{}
	for _, c := range checks {
		if c.Context != CheckContext || c.IntegrationID != a.AppID || c.RulesetID == 0 || seen[c.RulesetID] {
			continue
		}
		seen[c.RulesetID] = true
		list, visible, err := a.Bypass(ctx, t.client, t.repo, c.RulesetID)
		if err != nil {
			return nil, "", fmt.Errorf("ruleset %d of %s: %w", c.RulesetID, t.repo, err)
		}
		if !visible {
			hidden += fmt.Sprintf("; the bypass list of ruleset %d is not visible to the App (GitHub shows it only to callers with write access to the ruleset)", c.RulesetID)
		}
		actors = append(actors, list...)
	}
	return actors, hidden, nil
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

// keepControl stores a target's state. The first sight of a target, and
// every change in it, is a control_config record: a loss of enforcement
// opens a control_off exception, and the restore closes it.
func (a *Assessor) keepControl(ctx context.Context, log *slog.Logger, t archiveScope, target string, enforced bool, detail string) error {
	repo, now := t.repo.String(), a.Now().UTC()
	old, ok, err := a.Controls.ControlState(ctx, repo, target)
	if err != nil {
		return err
	}
	state := ControlState{Repo: repo, Target: target, Enforced: enforced, Detail: detail, Since: now, CheckedAt: now}
	same := ok && old.Enforced == enforced
	if same {
		state.Since, state.RecordID = old.Since, old.RecordID
		if old.Detail == detail {
			return a.Controls.PutControlState(ctx, state)
		}
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
		if !enforced && !same {
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
	return &evidence.Record{
		Schema: evidence.Schema, Repo: t.repo, ChangeType: evidence.ControlConfig,
		Facts:    change.Facts{Subject: change.Subject{Installation: t.installation, Repo: t.repo}, AsOf: now},
		Decision: change.Decision{Outcome: outcome, Reason: reason}, Policy: t.policy(),
		ObservedAt: now, AppVersion: version, Control: c,
		Exception: controlException(target, t.repo, enforced, detail, old, seen, now, reason),
	}
}

// controlException is what a change in enforcement does to the open
// control_off exception: a loss opens one, a restore closes the open one,
// and a change that keeps the target off leaves the open one as it is.
func controlException(target string, repo change.Repo, enforced bool, detail string, old ControlState, seen bool, now time.Time, reason string) *evidence.Exception {
	switch {
	case !enforced && seen && !old.Enforced:
		return nil
	case !enforced:
		return &evidence.Exception{Kind: evidence.ExceptionControlOff, OpenedAt: now, Reason: reason}
	case seen && old.RecordID != "":
		return &evidence.Exception{Kind: evidence.ExceptionControlOff, OpenedAt: now, Closes: old.RecordID,
			Reason: fmt.Sprintf("changegate is enforced again on %s of %s: %s", target, repo, detail)}
	}
	return nil
}

// CheckContext is the name of changegate's check run.
const CheckContext = "changegate"
