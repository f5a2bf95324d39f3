package policy

import (
	"strings"
	"testing"

	"github.com/changegate/changegate/internal/change"
)

// TestLayers: files a team would plausibly write are accepted over the
// built-in default; weakening a control is refused at its line; an
// organisation file below the operator's floor is refused.
func TestLayers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		wantErr    string // empty: accepted
	}{
		{"the default branch named", "version: 1\nproduction:\n  branches: [main]\n", ""},
		{"the team's own Jira status", "version: 1\nticket:\n  statuses: [\"Ready for Release\"]\n", ""},
		{"a GitOps repository says what production is", "version: 1\nproduction:\n  paths: [overlays/production/**]\n  environments: [prod-eu]\n", ""},
		{"its own staging and managers", "version: 1\nstaging:\n  environments: [preprod]\nmanager:\n  teams: [acme/sre-leads]\n", ""},
		{"no review", "version: 1\nreview:\n  required: 0\n", "repo.yml:3:"},
		{"stale approvals", "version: 1\nreview:\n  keep_on_push: true\n", "repo.yml:3:"},
		{"a longer emergency window", "version: 1\nemergency:\n  window: 96h\n", "repo.yml:3:"},
		{"an exemption", "version: 1\nexempt:\n  authors: [\"dependabot[bot]\"]\n", "repo.yml:3:"},
	} {
		repo, err := Parse("repo.yml", []byte(tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err = Effective(Defaults(), nil, nil, repo)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want an error at %s", tc.name, err, tc.wantErr)
		}
	}

	floor := mustParse(t, "floor.yml", "version: 1\nreview:\n  required: 2\n")
	org := mustParse(t, "org.yml", "version: 1\nreview:\n  required: 1\n")
	if _, err := Effective(Defaults(), floor, org, nil); err == nil || !strings.Contains(err.Error(), "org.yml:3:") {
		t.Errorf("an organisation file below the floor: %v", err)
	}
	repo := mustParse(t, "repo.yml", "version: 1\nticket:\n  statuses: [\"Ready for Release\"]\n")
	orgStrict := mustParse(t, "org.yml", "version: 1\nticket:\n  statuses: [Approved]\n")
	if _, err := Effective(Defaults(), nil, orgStrict, repo); err == nil || !strings.Contains(err.Error(), "Ready for Release") {
		t.Errorf("an organisation's statuses still bind: %v", err)
	}

	// Key by key: a floor or an organisation file binds the keys it writes;
	// what it leaves unwritten is the built-in default, still a fallback.
	gitops := mustParse(t, "repo.yml", "version: 1\nproduction:\n  paths: [overlays/production/**]\n")
	if _, err := Effective(Defaults(), floor, nil, repo); err != nil {
		t.Errorf("the team's own status under a floor silent on statuses: %v", err)
	}
	if _, err := Effective(Defaults(), floor, mustParse(t, "org.yml", "version: 1\nreview:\n  required: 3\n"), gitops); err != nil {
		t.Errorf("a GitOps repository under a floor and an organisation file silent on production: %v", err)
	}
	everyFile := mustParse(t, "floor.yml", "version: 1\nproduction:\n  paths: []\n")
	if _, err := Effective(Defaults(), everyFile, nil, gitops); err == nil || !strings.Contains(err.Error(), "repo.yml:3:") {
		t.Errorf("a floor that says every file is production: %v", err)
	}
	floorStatuses := mustParse(t, "floor.yml", "version: 1\nticket:\n  statuses: [Approved]\n")
	if _, err := Effective(Defaults(), floorStatuses, mustParse(t, "org.yml", "version: 1\n"), repo); err == nil || !strings.Contains(err.Error(), "Ready for Release") {
		t.Errorf("the floor's statuses bind the repository through a silent organisation file: %v", err)
	}
}

// TestPolicyFileChangesAreProduction: in a GitOps repository whose policy
// narrows production to some paths, a pull request that edits only the
// policy file still gets the full check.
func TestPolicyFileChangesAreProduction(t *testing.T) {
	t.Parallel()
	repo := mustParse(t, "repo.yml", "version: 1\nproduction:\n  branches: [main]\n  paths: [overlays/production/**]\n")
	p, err := Effective(Defaults(), nil, nil, repo)
	if err != nil {
		t.Fatal(err)
	}
	facts := func(files ...string) *change.Facts {
		return &change.Facts{PR: change.PullRequest{BaseRef: "main", DefaultBranch: "main", HeadSHA: "abc"}, Files: files}
	}
	if d := Evaluate(p, facts(".github/changegate.yml")); d.Outcome == change.NotProduction {
		t.Errorf("a change to the policy file: %s (%s)", d.Outcome, d.Reason)
	}
	if d := Evaluate(p, facts("overlays/staging/app.yaml")); d.Outcome != change.NotProduction {
		t.Errorf("a staging-only change: %s", d.Outcome)
	}
	if !p.ProductionBranch("main", "main") || p.ProductionBranch("feature/x", "main") {
		t.Error("the listed default branch")
	}
	trunk := mustParse(t, "repo.yml", "version: 1\nproduction:\n  branches: [release/*]\n")
	q, err := Effective(Defaults(), nil, nil, trunk)
	if err != nil {
		t.Fatal(err)
	}
	if !q.ProductionBranch("main", "main") || !q.ProductionBranch("release/1", "main") {
		t.Error("branches listed over the default branch must keep the default branch production")
	}
}
