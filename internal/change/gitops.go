package change

import (
	"strings"
	"time"
)

// Artifact kinds.
const (
	ArtifactImage  = "image"  // a container image
	ArtifactChart  = "chart"  // a Helm chart
	ArtifactSource = "source" // an Argo CD source or a kustomize remote base, at a revision
)

// Artifact is a versioned thing a manifest deploys.
type Artifact struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`              // registry/app, the chart, the repository URL
	Version string `json:"version,omitempty"` // tag, chart version, revision
	Digest  string `json:"digest,omitempty"`  // sha256:…, for images
}

// Ref is how the artifact is written: v1.4.2, sha256:…, or both.
func (a Artifact) Ref() string {
	switch {
	case a.Digest != "" && a.Version != "":
		return a.Version + "@" + a.Digest
	case a.Digest != "":
		return a.Digest
	}
	return a.Version
}

// String is name and ref.
func (a Artifact) String() string { return a.Name + " " + a.Ref() }

// Runs says whether b is the artifact a names, as staging ran it: the same
// kind and name and, when a is pinned by digest, the same digest; else the
// same version.
func (a Artifact) Runs(b Artifact) bool {
	if a.Kind != b.Kind || !strings.EqualFold(a.Name, b.Name) {
		return false
	}
	if a.Digest != "" {
		return strings.EqualFold(a.Digest, b.Digest)
	}
	return a.Version == b.Version
}

// Promotion is one artifact a pull request sets under a production path,
// and what the base branch shows of it in the paired staging path.
type Promotion struct {
	// Production and Staging are the policy pair's path globs.
	Production string `json:"production"`
	Staging    string `json:"staging"`
	// File is the production file that sets it; From is what the base
	// commit had there (nil: new).
	File string    `json:"file"`
	From *Artifact `json:"from,omitempty"`
	To   Artifact  `json:"to"`
	// AlsoStaged: the pull request itself puts To under the staging path.
	AlsoStaged bool `json:"also_staged,omitempty"`
	// StagingFile is where the base commit has To under the staging path,
	// and IntroducedBy the commit that put it there; empty when it is not.
	StagingFile  string    `json:"staging_file,omitempty"`
	IntroducedBy string    `json:"introduced_by,omitempty"`
	IntroducedAt time.Time `json:"introduced_at,omitzero"`
	// The sync evidence of IntroducedBy: check runs, commit statuses and
	// deployments, as read for it.
	CheckRuns   []CheckRun   `json:"check_runs,omitempty"`
	Statuses    []Status     `json:"statuses,omitempty"`
	Deployments []Deployment `json:"deployments,omitempty"`
	// Problem says why the staging side could not be read completely.
	Problem string `json:"problem,omitempty"`
}

// PromotionPair is a policy's promotion pair as the fact gatherer needs
// it: the globs, and matchers for them.
type PromotionPair struct {
	Production, Staging string
	Values              []string
	// InProduction and InStaging say whether a file is under the globs.
	InProduction, InStaging func(path string) bool
}

// RequiredCheck is a status check a branch's rules require, and the App
// that must post it (0: any source may).
type RequiredCheck struct {
	Context       string `json:"context"`
	IntegrationID int64  `json:"integration_id,omitempty"`
	// RulesetID is the ruleset that requires it (0: classic branch
	// protection).
	RulesetID int64 `json:"-"`
}

// Needs says which facts a policy's controls read, beyond the pull request
// itself: the policy derives it, and the facts are gathered by it, so that
// nothing is read that no control looks at.
type Needs struct {
	Files, Commits, Reviews bool
	CheckRuns, Statuses     bool
	// StagingEnvironments: deployments of the head SHA to these
	// environments, with their statuses.
	StagingEnvironments []string
	// ManagerTeams ("org/slug"): memberships are read for every user whose
	// latest review is an approval.
	ManagerTeams []string
	// Promotions: the artifacts the pull request sets under these pairs'
	// production paths, and their staging evidence (needs Files).
	Promotions []PromotionPair
}
