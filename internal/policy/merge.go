package policy

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Merge applies a repository's policy file on top of its baseline (the
// organisation's .github/changegate.yml, or Defaults when there is none).
// A repository may tighten the baseline, never loosen it.
//
// Keys the repository file does not write keep the baseline's value (not the
// server default's). A policy that was not parsed (built in code) counts as
// writing every key. Lists are compared as sets of literal strings: a glob
// is accepted only if the baseline lists the same glob, since deciding
// whether one pattern contains another is beyond what a policy needs. Names
// Jira and GitHub compare case-insensitively (projects, types, statuses,
// environments, teams, logins) are compared that way.
//
// What each key may do, "base" being the baseline's value:
//
//	key                      the repository may                         because
//	production.branches      ⊇ base; over the default branch (empty     more branches gate more changes
//	                         base), the list adds to it
//	production.paths         base empty (every file): stay empty;       more paths gate more changes
//	                         else ⊇ base
//	production.environments  ⊇ base                                     more production environments
//	ticket.sources           ⊆ base                                     fewer places a key may hide
//	ticket.projects          ⊆ base; empty base (any) allows anything;  empty means any
//	ticket.issue_types         a non-empty base forbids an empty list
//	ticket.statuses
//	review.required          ≥ base                                     more reviewers
//	review.keep_on_push      true→false only                            stale approvals stop counting
//	staging.environments     ⊆ base when base is non-empty;             fewer ways to show staging; an empty base
//	staging.checks             anything when base is empty              leaves the choice to the repository
//	staging.promotion        every base pair (same production and       fewer changes judged by their artifact,
//	                         staging), soak ≥ base, values ⊇ base;     or a shorter soak, would loosen staging
//	                         more pairs allowed
//	manager.teams            ⊆ base when base is non-empty; anything    fewer people count as managers
//	                           when base is empty
//	manager.jira_approval    true→false only                            one way fewer to approve
//	manager.jira_group       equal to base while Jira approval is on    another group would be other approvers
//	emergency.label          equal to base                              the exceptions report follows one label
//	emergency.window         ≤ base                                     less time to approve after the fact
//	exempt.authors           ⊆ base                                     fewer exemptions
//	exempt.paths             ⊆ base
//
// Over the built-in default (a fallback, see AsFallback), and over any key
// that no file among the baseline's layers wrote (a floor or organisation
// file binds key by key), a file names what only it knows: production.paths and environments, the ticket lists,
// staging, manager teams and Jira approval are its own. The keys that guard
// a control (review.required, keep_on_push, the emergency window and label,
// exemptions, sources, ignore, freeze) keep the rules above. Branches
// listed over "the default branch" add to it: the default branch stays
// production, which the merged policy remembers.
//
// The error joins one *Error per loosening key, placed at the repository
// file's line.
func Merge(baseline, repo *Policy) (*Policy, error) {
	if baseline == nil {
		baseline = Defaults()
	}
	if repo == nil {
		return baseline.clone(), nil
	}
	merged := baseline.clone()
	overlay(merged, repo)

	c := &mergeCheck{b: baseline, m: merged, repo: repo}
	c.production()
	c.ticket()
	c.review()
	c.staging()
	c.manager()
	c.emergency()
	c.exempt()
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	merged.fallback = false
	merged.set = setUnion(baseline, repo)
	return merged.clone(), nil // share no slice with repo
}

// setUnion is the keys a file among the layers wrote; nil when a layer no
// file made counts every key as set.
func setUnion(baseline, repo *Policy) map[string]bool {
	if repo.pos == nil || !baseline.fallback && baseline.set == nil {
		return nil
	}
	set := keysOf(repo.pos)
	if !baseline.fallback {
		maps.Copy(set, baseline.set)
	}
	return set
}

// overlay copies onto dst every key the repository file sets.
func overlay(dst, repo *Policy) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(repo).Elem()
	for _, path := range leafPaths(reflect.TypeFor[Policy](), "") {
		if repo.pos != nil {
			if _, set := repo.pos[path]; !set {
				continue
			}
		}
		fieldByPath(d, path).Set(fieldByPath(s, path))
	}
}

// mergeCheck compares a merged policy m with its baseline b, one section
// at a time, and collects an error per key the repository file loosened.
type mergeCheck struct {
	b, m, repo *Policy
	errs       []error
}

// loose records that path loosens the baseline, placed at the list item
// when item >= 0 and the file gave it a line.
func (c *mergeCheck) loose(path string, item int, format string, args ...any) {
	at := path
	if item >= 0 {
		if _, ok := c.repo.pos[fmt.Sprintf("%s[%d]", path, item)]; ok {
			at = fmt.Sprintf("%s[%d]", path, item)
		}
	}
	c.errs = append(c.errs, c.repo.errorAt(at, path+": "+fmt.Sprintf(format, args...)))
}

// production: the repository may only widen what is production. Over the
// built-in default it says what production is: only it knows which paths
// and environments deploy. The keys that guard it (review.ignore, freeze)
// keep the baseline's entries.
func (c *mergeCheck) production() {
	b, m := c.b, c.m
	switch {
	case len(b.Production.Branches) == 0 && len(m.Production.Branches) > 0:
		// The default branch is known when the policy is applied: it stays
		// production beside the branches listed.
		m.Production.withDefault = true
	default:
		if i, s := missing(b.Production.Branches, m.Production.Branches, false); i >= 0 {
			c.loose("production.branches", -1, "drops %s, which the baseline treats as production", s)
		}
	}
	switch {
	case b.fallbackFor("production.paths"):
	case len(b.Production.Paths) == 0 && len(m.Production.Paths) > 0:
		c.loose("production.paths", -1, "the baseline treats every file as production; a list would narrow it")
	default:
		if i, s := missing(b.Production.Paths, m.Production.Paths, false); i >= 0 {
			c.loose("production.paths", -1, "drops %s, which the baseline treats as production", s)
		}
	}
	if i, s := missing(b.Production.Environments, m.Production.Environments, true); i >= 0 && !b.fallbackFor("production.environments") {
		c.loose("production.environments", -1, "drops %s, which the baseline treats as production", s)
	}
	if i, s := missing(b.Review.Ignore, m.Review.Ignore, true); i >= 0 {
		c.loose("review.ignore", -1, "drops %s, whose approvals the baseline ignores", s)
	}
	if i, s := missing(b.Freeze, m.Freeze, false); i >= 0 {
		c.loose("freeze", -1, "drops the baseline's freeze window %q", s)
	}
}

// ticket: the repository may only narrow what is accepted.
func (c *mergeCheck) ticket() {
	b, m := c.b, c.m
	if i, s := missing(m.Ticket.Sources, b.Ticket.Sources, false); i >= 0 {
		c.loose("ticket.sources", i, "adds %s, which the baseline does not search for keys", s)
	}
	for _, l := range []struct {
		path, what string
		base, mine []string
	}{
		{"ticket.projects", "project", b.Ticket.Projects, m.Ticket.Projects},
		{"ticket.issue_types", "issue type", b.Ticket.IssueTypes, m.Ticket.IssueTypes},
		{"ticket.statuses", "status", b.Ticket.Statuses, m.Ticket.Statuses},
	} {
		if len(l.base) == 0 || b.fallbackFor(l.path) {
			continue // the baseline allows any, or leaves the names to the file
		}
		if len(l.mine) == 0 {
			c.loose(l.path, -1, "an empty list allows any %s; the baseline allows only %s", l.what, strings.Join(l.base, ", "))
			continue
		}
		if i, s := missing(l.mine, l.base, true); i >= 0 {
			c.loose(l.path, i, "adds %q, which the baseline does not allow", s)
		}
	}
}

// review: no fewer approvals, and none of older commits.
func (c *mergeCheck) review() {
	b, m := c.b, c.m
	if m.Review.Required < b.Review.Required {
		c.loose("review.required", -1, "%d is below the baseline's %d", m.Review.Required, b.Review.Required)
	}
	if m.Review.KeepOnPush && !b.Review.KeepOnPush {
		c.loose("review.keep_on_push", -1, "true would count approvals of older commits; the baseline says false")
	}
}

// staging: only fewer ways to show a staging run; over the built-in
// default, the file names its own.
func (c *mergeCheck) staging() {
	b, m := c.b, c.m
	if len(b.Staging.Environments) > 0 && !b.fallbackFor("staging.environments") {
		if i, s := missing(m.Staging.Environments, b.Staging.Environments, true); i >= 0 {
			c.loose("staging.environments", i, "adds %s, which the baseline does not accept as staging", s)
		}
	}
	if len(b.Staging.Checks) > 0 && !b.fallbackFor("staging.checks") {
		if i, s := missing(m.Staging.Checks, b.Staging.Checks, false); i >= 0 {
			c.loose("staging.checks", i, "adds %s, which the baseline does not accept as staging", s)
		}
	}
	c.promotion()
}

// promotion: every baseline pair stays, with no shorter soak and every
// values path; a repository may add pairs.
func (c *mergeCheck) promotion() {
	for _, bp := range c.b.Staging.Promotion {
		i := slices.IndexFunc(c.m.Staging.Promotion, func(mp Promotion) bool {
			return mp.Production == bp.Production && mp.Staging == bp.Staging
		})
		if i < 0 {
			c.loose("staging.promotion", -1, "drops the baseline's pair %s from %s", bp.Production, bp.Staging)
			continue
		}
		mp, at := c.m.Staging.Promotion[i], fmt.Sprintf("staging.promotion[%d]", i)
		if mp.Soak < bp.Soak {
			c.loose(at+".soak", -1, "%s is shorter than the baseline's %s for %s", formatWindow(mp.Soak), formatWindow(bp.Soak), bp.Production)
		}
		if j, s := missing(bp.Values, mp.Values, false); j >= 0 {
			c.loose(at+".values", -1, "drops %s, which the baseline reads images from", s)
		}
	}
}

// manager: only fewer people may approve; over the built-in default, the
// file names its own teams, and may count Jira approvals (of a group,
// which validation requires).
func (c *mergeCheck) manager() {
	b, m := c.b, c.m
	if len(b.Manager.Teams) > 0 && !b.fallbackFor("manager.teams") {
		if i, s := missing(m.Manager.Teams, b.Manager.Teams, true); i >= 0 {
			c.loose("manager.teams", i, "adds %s, which the baseline does not accept as managers", s)
		}
	}
	if m.Manager.JiraApproval && !b.Manager.JiraApproval && !b.fallbackFor("manager.jira_approval") {
		c.loose("manager.jira_approval", -1, "true would count Jira approvals; the baseline says false")
	}
	if m.Manager.JiraApproval && b.Manager.JiraApproval && !strings.EqualFold(m.Manager.JiraGroup, b.Manager.JiraGroup) {
		c.loose("manager.jira_group", -1, "%q differs from the baseline's %q", m.Manager.JiraGroup, b.Manager.JiraGroup)
	}
}

// emergency: the same label, and no longer a window.
func (c *mergeCheck) emergency() {
	b, m := c.b, c.m
	if m.Emergency.Label != b.Emergency.Label {
		c.loose("emergency.label", -1, "%q differs from the baseline's %q", m.Emergency.Label, b.Emergency.Label)
	}
	if m.Emergency.Window > b.Emergency.Window {
		c.loose("emergency.window", -1, "%s is longer than the baseline's %s", formatWindow(m.Emergency.Window), formatWindow(b.Emergency.Window))
	}
}

// exempt: only fewer exemptions.
func (c *mergeCheck) exempt() {
	b, m := c.b, c.m
	if i, s := missing(m.Exempt.Authors, b.Exempt.Authors, true); i >= 0 {
		c.loose("exempt.authors", i, "adds %s, which the baseline does not exempt", s)
	}
	if i, s := missing(m.Exempt.Paths, b.Exempt.Paths, false); i >= 0 {
		c.loose("exempt.paths", i, "adds %s, which the baseline does not exempt", s)
	}
}

// missing returns the index and value of the first element of want that is
// not in have, or -1. It reports one per key: the message names the key,
// and one example is enough to act on.
func missing(want, have []string, fold bool) (int, string) {
	for i, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return h == w || fold && strings.EqualFold(h, w) }) {
			return i, w
		}
	}
	return -1, ""
}

// leafPaths lists the dotted yaml paths of every non-struct field.
func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, leafPaths(f.Type, join(prefix, key))...)
			continue
		}
		out = append(out, join(prefix, key))
	}
	return out
}

// fieldByPath finds a field by its dotted yaml path.
func fieldByPath(v reflect.Value, path string) reflect.Value {
	for key := range strings.SplitSeq(path, ".") {
		v = v.Field(yamlFields(v.Type())[key])
	}
	return v
}
