package ghfacts_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/ghfacts"
	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/policy"
)

// scenario is a GitOps repository on the fake GitHub: main holds the
// staging and production paths, a commit promoted an artifact to staging
// (its sync reported on it), and pull request #1 changes production.
type scenario struct {
	layout     string // "kustomize" or "helm"
	staging    string // what the staging commit sets, e.g. "v1.4.2" or "@sha256:aaa"
	production string // what the pull request sets in production
	sync       string // the state of the staging sync on the staging commit; "" reports none
	alsoStage  string // set: the pull request also sets this in staging
	broken     bool   // the pull request's production file is not YAML
}

const synced = "2026-03-01T09:12:00Z"

func (sc scenario) file(env, version string) (string, string) {
	name, tag := "registry.example/app", version
	if strings.HasPrefix(version, "@") {
		tag = ""
	}
	digest := strings.TrimPrefix(version, "@")
	if tag != "" {
		digest = ""
	}
	if sc.layout == "helm" {
		return "apps/" + env + "/values.yaml", fmt.Sprintf("replicas: 2\nweb:\n  image:\n    repository: %s\n    tag: %q\n    digest: %q\n", name, tag, digest)
	}
	return "overlays/" + env + "/kustomization.yaml", fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"+
		"resources: [../../base]\nimages:\n  - name: %s\n    newTag: %q\n    digest: %q\n", name, tag, digest)
}

// build pushes the history and opens the pull request.
func (sc scenario) build(t *testing.T) (env, *policy.Policy, string, time.Time) {
	t.Helper()
	e := setup(t)
	gh := e.gh
	at, _ := time.Parse(time.RFC3339, synced)
	stagingFile, stagingOld := sc.file("staging", "v1.4.1")
	prodFile, prodOld := sc.file("production", "v1.4.1")
	gh.Push(owner, name, "main", "", ghfake.GitCommit{SHA: sha('1'), Message: "initial", Date: at.Add(-48 * time.Hour),
		Files: map[string][]byte{stagingFile: []byte(stagingOld), prodFile: []byte(prodOld), "README.md": []byte("hi")}})
	_, stagingNew := sc.file("staging", sc.staging)
	staged := gh.Push(owner, name, "main", "", ghfake.GitCommit{SHA: sha('2'), Message: "promote to staging", Date: at.Add(-time.Minute),
		Files: map[string][]byte{stagingFile: []byte(stagingNew)}})
	if sc.sync != "" {
		gh.AddStatus(owner, name, ghfake.Status{SHA: staged, Context: "kustomization/staging/0c9c2e41", State: sc.sync, CreatedAt: at})
	}
	base := gh.Push(owner, name, "main", "", ghfake.GitCommit{SHA: sha('3'), Message: "docs", Files: map[string][]byte{"README.md": []byte("hello")}})
	_, prodNew := sc.file("production", sc.production)
	if sc.broken {
		prodNew = "images: [\n"
	}
	files := map[string][]byte{prodFile: []byte(prodNew)}
	if sc.alsoStage != "" {
		_, s := sc.file("staging", sc.alsoStage)
		files[stagingFile] = []byte(s)
	}
	head := gh.Push(owner, name, "promote", "main", ghfake.GitCommit{SHA: sha('4'), Message: "promote to production", Files: files})
	gh.AddPullRequest(owner, name, ghfake.PullRequest{Number: 1, Title: "PAY-1 promote", Author: "alice", BaseRef: "main", BaseSHA: base, HeadRef: "promote", HeadSHA: head})
	for f := range files {
		gh.AddFile(owner, name, 1, ghfake.File{Filename: f})
	}
	p := policy.Defaults()
	p.Staging.Checks = []string{"kustomization/staging/*"}
	pair := policy.Promotion{Production: "overlays/production/**", Staging: "overlays/staging/**", Soak: 2 * time.Hour}
	if sc.layout == "helm" {
		pair = policy.Promotion{Production: "apps/production/**", Staging: "apps/staging/**", Soak: 2 * time.Hour, Values: []string{"web.image"}}
	}
	p.Staging.Promotion = []policy.Promotion{pair}
	p.Production.Paths = []string{pair.Production}
	return e, p, staged, at
}

func sha(c byte) string { return strings.Repeat(string(c), 40) }

// stagingControl gathers the facts of pull request #1 as changegate does,
// and evaluates them as of asOf.
func stagingControl(t *testing.T, e env, p *policy.Policy, asOf time.Time) (change.ControlResult, change.Decision, *change.Facts) {
	t.Helper()
	f, err := ghfacts.Gather(t.Context(), e.client, change.Subject{Installation: e.inst, Repo: repo, Number: 1},
		change.Needs{Files: true, Commits: true, Statuses: true, CheckRuns: true, StagingEnvironments: p.Staging.Environments,
			Promotions: p.PromotionPairs()})
	if err != nil {
		t.Fatal(err)
	}
	f.AsOf = asOf
	d := policy.Evaluate(p, f)
	c, _ := d.Control(change.ControlStaging)
	return c, d, f
}

// TestPromotions: the staging control of a promotion follows the
// artifact, in a kustomize repository and a Helm-values repository.
func TestPromotions(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		sc     scenario
		after  time.Duration // since the staging sync
		result change.Result
		want   string // in the evidence (met) or the reasons
	}{
		"kustomize: in staging and synced": {scenario{layout: "kustomize", staging: "v1.4.2", production: "v1.4.2", sync: "success"}, 3 * time.Hour,
			change.Pass, "v1.4.1 → v1.4.2: in staging since 2026-03-01 09:12 UTC (commit 2222222, status kustomization/staging/0c9c2e41 success)"},
		"helm values: in staging and synced": {scenario{layout: "helm", staging: "v1.4.2", production: "v1.4.2", sync: "success"}, 3 * time.Hour,
			change.Pass, "registry.example/app"},
		"never in staging": {scenario{layout: "kustomize", staging: "v1.4.2", production: "v1.5.0", sync: "success"}, 3 * time.Hour,
			change.Fail, "v1.4.1 → v1.5.0: not in overlays/staging on main"},
		"in staging, the sync failed": {scenario{layout: "helm", staging: "v1.4.2", production: "v1.4.2", sync: "failure"}, 3 * time.Hour,
			change.Fail, "status kustomization/staging/0c9c2e41 is failure on 2222222"},
		"in staging, never synced": {scenario{layout: "kustomize", staging: "v1.4.2", production: "v1.4.2"}, 3 * time.Hour,
			change.Fail, "no staging sync of it succeeded"},
		"soak not elapsed": {scenario{layout: "kustomize", staging: "v1.4.2", production: "v1.4.2", sync: "success"}, time.Hour,
			change.Pending, "soaks in staging until 2026-03-01 11:12 UTC"},
		"staging and production at once": {scenario{layout: "kustomize", staging: "v1.4.2", production: "v1.5.0", sync: "success", alsoStage: "v1.5.0"}, 3 * time.Hour,
			change.Fail, "sets it under overlays/staging and overlays/production at once"},
		"a digest matches only the same digest": {scenario{layout: "kustomize", staging: "@sha256:aaa", production: "@sha256:bbb", sync: "success"}, 3 * time.Hour,
			change.Fail, "registry.example/app v1.4.1 → sha256:bbb: not in overlays/staging"},
		"the same digest": {scenario{layout: "helm", staging: "@sha256:aaa", production: "@sha256:aaa", sync: "success"}, 3 * time.Hour,
			change.Pass, "→ sha256:aaa: in staging since"},
		"an unreadable manifest": {scenario{layout: "kustomize", staging: "v1.4.2", production: "v1.4.2", sync: "success", broken: true}, 3 * time.Hour,
			change.Fail, "overlays/production/kustomization.yaml: not YAML"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, p, _, at := tc.sc.build(t)
			e.gh.ResetCalls()
			c, _, _ := stagingControl(t, e, p, at.Add(tc.after))
			text := strings.Join(c.Reasons, "\n")
			for _, ev := range c.Evidence {
				text += "\n" + ev.Ref + " " + ev.Detail
			}
			if c.Result != tc.result || !strings.Contains(text, tc.want) {
				t.Errorf("staging %s, want %s with %q:\n%s", c.Result, tc.result, tc.want, text)
			}
			if name == "kustomize: in staging and synced" {
				var routes []string
				for _, c := range e.gh.Calls() {
					routes = append(routes, c.Method+" "+c.Route)
				}
				t.Logf("GitHub calls for one promotion evaluation: %d\n  %s", githubCalls(e.gh), strings.Join(routes, "\n  "))
			}
		})
	}
}

// TestPromotionSoak: a soak keeps the control pending until it ends, says
// when, and passes once the (injected) clock has passed it.
func TestPromotionSoak(t *testing.T) {
	t.Parallel()
	e, p, _, at := scenario{layout: "kustomize", staging: "v1.4.2", production: "v1.4.2", sync: "success"}.build(t)
	c, d, _ := stagingControl(t, e, p, at.Add(90*time.Minute))
	if c.Result != change.Pending || !d.RecheckAt.Equal(at.Add(2*time.Hour)) {
		t.Fatalf("during the soak: %s, recheck at %v: %v", c.Result, d.RecheckAt, c.Reasons)
	}
	c, d, f := stagingControl(t, e, p, at.Add(2*time.Hour))
	if c.Result != change.Pass || !d.RecheckAt.IsZero() {
		t.Fatalf("after the soak: %s: %v", c.Result, c.Reasons)
	}
	// The facts, and so the record, carry the artifact and its staging
	// evidence.
	if len(f.Promotions) != 1 || f.Promotions[0].From.Version != "v1.4.1" || f.Promotions[0].IntroducedBy != sha('2') || len(f.Promotions[0].Statuses) != 1 {
		t.Errorf("promotion facts: %+v", f.Promotions)
	}
}
