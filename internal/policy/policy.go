// Package policy reads changegate's policy file, merges a repository's file
// into its organisation's baseline (tighten-only), and evaluates the four
// CC8.1 controls over a change.Facts snapshot.
//
// Everything here is pure: no I/O (except CheckFile, for the CLI), no clock,
// no logging. The same policy and facts always give the same decision, which
// is what lets an auditor re-derive a recorded decision.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Version is the only policy file format version this package reads.
const Version = 1

// Ticket sources: where TicketKeys looks for Jira keys.
const (
	SourceTitle  = "title"
	SourceBranch = "branch" // the head branch name, e.g. feature/PAY-123-fix
	SourceBody   = "body"
)

// Sources lists every ticket source in the order TicketKeys reads them.
var Sources = []string{SourceTitle, SourceBranch, SourceBody}

// Policy is one effective policy. The zero value is not useful: start from
// Defaults or Parse. The yaml tags are the file's keys; the json tags give
// the canonical form Digest hashes.
type Policy struct {
	Version    int        `yaml:"version" json:"version"`
	Production Production `yaml:"production" json:"production"`
	Ticket     Ticket     `yaml:"ticket" json:"ticket"`
	Review     Review     `yaml:"review" json:"review"`
	Staging    Staging    `yaml:"staging" json:"staging"`
	Manager    Manager    `yaml:"manager" json:"manager"`
	Emergency  Emergency  `yaml:"emergency" json:"emergency"`
	Exempt     Exempt     `yaml:"exempt" json:"exempt"`
	// Freeze lists windows during which the deployment gate rejects
	// production deployments that are not emergencies (see freeze.go).
	Freeze []string `yaml:"freeze" json:"freeze"`

	// source names the file Parse read, for Merge's messages.
	source string
	// fallback marks the built-in default: a fallback for what only the
	// organisation or repository knows, not a floor (see Merge).
	fallback bool
	// pos holds where each key (and list item, as "key[i]") was written,
	// for messages. A nil pos means the policy was not parsed: Merge then
	// treats every key as set.
	pos map[string]position
	// set holds the keys some file among this policy's layers wrote. A key
	// no file wrote holds the built-in default, which stays a fallback,
	// not a floor: a floor or an organisation file constrains only the keys
	// it sets. Nil for a policy no file made: every key counts as set,
	// unless the policy is the fallback itself.
	set map[string]bool
}

// fallbackFor says whether the value at path is the built-in default's
// (AsFallback) rather than a choice a file made.
func (p *Policy) fallbackFor(path string) bool {
	if p.fallback {
		return true
	}
	return p.set != nil && !p.set[path]
}

// Production says which changes are production changes.
type Production struct {
	// Branches are base branch globs; empty means the default branch.
	Branches []string `yaml:"branches" json:"branches"`
	// Paths are file globs; empty means every file is production.
	Paths []string `yaml:"paths" json:"paths"`
	// Environments are the GitHub deployment environments (globs) that are
	// production.
	Environments []string `yaml:"environments" json:"environments"`
	// withDefault says the default branch is production too: a file listed
	// branches over a baseline whose production branch is the default one.
	withDefault bool
}

// Ticket configures the ticket control.
type Ticket struct {
	Sources []string `yaml:"sources" json:"sources"`
	// Projects, IssueTypes and Statuses are allowlists; empty allows any.
	Projects   []string `yaml:"projects" json:"projects"`
	IssueTypes []string `yaml:"issue_types" json:"issue_types"`
	Statuses   []string `yaml:"statuses" json:"statuses"`
}

// Review configures the peer review control.
type Review struct {
	Required int `yaml:"required" json:"required"`
	// KeepOnPush lets approvals on older commits count.
	KeepOnPush bool `yaml:"keep_on_push" json:"keep_on_push"`
	// Ignore lists logins whose approvals never count (bots' never do).
	Ignore []string `yaml:"ignore" json:"ignore"`
}

// Staging configures the staging control.
type Staging struct {
	// Environments are deployment environment globs.
	Environments []string `yaml:"environments" json:"environments"`
	// Checks are check-run name or commit-status context globs.
	Checks []string `yaml:"checks" json:"checks"`
	// Promotion pairs production paths with the staging paths their
	// artifacts must have run from (GitOps). A pull request that sets an
	// artifact under a pair's production path is judged by the artifact,
	// not by its own head commit.
	Promotion []Promotion `yaml:"promotion" json:"promotion"`
}

// Promotion is one pair of a GitOps repository's paths: what is set under
// Production must already run under Staging.
type Promotion struct {
	Production string `yaml:"production" json:"production"`
	Staging    string `yaml:"staging" json:"staging"`
	// Soak is how long an artifact must have run in staging; 0: no soak.
	Soak time.Duration `yaml:"soak" json:"soak"`
	// Values are extra YAML paths (dotted) in Helm values files that hold
	// an image: a string "repo:tag", or a mapping with repository and tag
	// or digest.
	Values []string `yaml:"values" json:"values"`
}

// Manager configures the manager approval control.
type Manager struct {
	// Teams are "org/team-slug".
	Teams        []string `yaml:"teams" json:"teams"`
	JiraApproval bool     `yaml:"jira_approval" json:"jira_approval"`
	JiraGroup    string   `yaml:"jira_group" json:"jira_group"`
}

// Emergency configures emergency changes.
type Emergency struct {
	Label string `yaml:"label" json:"label"`
	// Window is how long after the merge a manager has to approve.
	Window time.Duration `yaml:"window" json:"window"`
}

// Exempt lists changes the policy does not gate.
type Exempt struct {
	Authors []string `yaml:"authors" json:"authors"`
	Paths   []string `yaml:"paths" json:"paths"`
}

// AsFallback marks p as the built-in default: a fallback for what only an
// organisation or repository knows (Jira names, staging, managers, what
// production is), not a floor. A file over it still may not weaken a
// control. See Merge.
func (p *Policy) AsFallback() *Policy {
	c := p.clone()
	c.fallback = true
	return c
}

// Defaults is the server's default policy; config/policy.default.yml is the
// same policy written out (a test keeps them equal).
func Defaults() *Policy {
	return &Policy{
		Version:  Version,
		fallback: true,
		Production: Production{
			Branches:     []string{},
			Paths:        []string{},
			Environments: []string{"production"},
		},
		Ticket: Ticket{
			Sources:    []string{SourceTitle, SourceBranch, SourceBody},
			Projects:   []string{},
			IssueTypes: []string{},
			Statuses:   []string{"Approved", "In Progress", "Done"},
		},
		Review:    Review{Required: 1, KeepOnPush: false, Ignore: []string{}},
		Staging:   Staging{Environments: []string{"staging"}, Checks: []string{}, Promotion: []Promotion{}},
		Manager:   Manager{Teams: []string{}, JiraApproval: false, JiraGroup: ""},
		Emergency: Emergency{Label: "emergency", Window: 48 * time.Hour},
		Exempt:    Exempt{Authors: []string{}, Paths: []string{}},
		Freeze:    []string{},
	}
}

// clone returns a deep copy without the parse positions.
func (p *Policy) clone() *Policy {
	c := *p
	c.Production.Branches = slices.Clone(p.Production.Branches)
	c.Production.Paths = slices.Clone(p.Production.Paths)
	c.Production.Environments = slices.Clone(p.Production.Environments)
	c.Ticket.Sources = slices.Clone(p.Ticket.Sources)
	c.Ticket.Projects = slices.Clone(p.Ticket.Projects)
	c.Ticket.IssueTypes = slices.Clone(p.Ticket.IssueTypes)
	c.Ticket.Statuses = slices.Clone(p.Ticket.Statuses)
	c.Staging.Environments = slices.Clone(p.Staging.Environments)
	c.Staging.Checks = slices.Clone(p.Staging.Checks)
	c.Staging.Promotion = slices.Clone(p.Staging.Promotion)
	for i := range c.Staging.Promotion {
		c.Staging.Promotion[i].Values = slices.Clone(p.Staging.Promotion[i].Values)
	}
	c.Manager.Teams = slices.Clone(p.Manager.Teams)
	c.Exempt.Authors = slices.Clone(p.Exempt.Authors)
	c.Exempt.Paths = slices.Clone(p.Exempt.Paths)
	c.Freeze = slices.Clone(p.Freeze)
	c.Review.Ignore = slices.Clone(p.Review.Ignore)
	c.source, c.pos = "", nil
	c.set = maps.Clone(p.set)
	return &c
}

// Digest is the hex SHA-256 of the policy's canonical JSON. Every list is a
// set to the evaluator (TicketKeys reads sources in a fixed order), so lists
// are sorted and deduplicated first: two files that mean the same policy
// have the same digest.
func (p *Policy) Digest() string {
	c := p.clone()
	for _, l := range []*[]string{
		&c.Production.Branches, &c.Production.Paths, &c.Production.Environments,
		&c.Ticket.Sources, &c.Ticket.Projects, &c.Ticket.IssueTypes, &c.Ticket.Statuses,
		&c.Staging.Environments, &c.Staging.Checks, &c.Manager.Teams,
		&c.Exempt.Authors, &c.Exempt.Paths, &c.Freeze, &c.Review.Ignore,
	} {
		s := slices.Clone(*l)
		if s == nil {
			s = []string{} // nil and empty mean the same
		}
		slices.Sort(s)
		*l = slices.Compact(s)
	}
	b, err := json.Marshal(struct {
		*Policy
		DefaultBranch bool `json:"production_default_branch,omitempty"`
	}{c, c.Production.withDefault})
	if err != nil {
		panic(fmt.Sprintf("policy: encode canonical form: %v", err)) // strings, ints and bools always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Error is one problem in a policy file, at a place a person can open.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, "%d:", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

type position struct{ line, column int }

// errorAt builds an Error for a key path of p, placed where Parse saw it.
func (p *Policy) errorAt(path, msg string) *Error {
	at := p.pos[path]
	return &Error{File: p.source, Line: at.line, Column: at.column, Msg: msg}
}

// formatWindow writes a duration the way people write it in the file:
// 48h rather than 48h0m0s.
func formatWindow(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
