package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/change"
)

// TestPromotionKeys: promotion pairs are validated at their lines, and
// merge tighten-only: pairs may be added and soaks lengthened, never
// removed or shortened.
func TestPromotionKeys(t *testing.T) {
	t.Parallel()
	const pair = "staging:\n  promotion:\n    - production: overlays/production/**\n      staging: overlays/staging/**\n      soak: 2h\n"
	org := mustParse(t, "org.yml", "version: 1\n"+pair)
	if got := org.Staging.Promotion; len(got) != 1 || got[0].Soak != 2*time.Hour || got[0].Staging != "overlays/staging/**" {
		t.Fatalf("parsed %+v", got)
	}
	for name, tc := range map[string]struct{ file, wantErr string }{
		"no staging path":   {"staging:\n  promotion:\n    - production: overlays/production/**\n", "org.yml:4:"},
		"a bad soak":        {"staging:\n  promotion:\n    - {production: a/**, staging: b/**, soak: soon}\n", "not a duration"},
		"the same path":     {"staging:\n  promotion:\n    - {production: a/**, staging: a/**}\n", "its own staging evidence"},
		"an unknown key":    {"staging:\n  promotion:\n    - {production: a/**, staging: b/**, sok: 2h}\n", `"staging.promotion[0].sok"`},
		"a bad values path": {"staging:\n  promotion:\n    - {production: a/**, staging: b/**, values: [\"a..b\"]}\n", "not a dotted YAML path"},
	} {
		if _, err := Parse("org.yml", []byte("version: 1\n"+tc.file)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want %q", name, err, tc.wantErr)
		}
	}
	for name, tc := range map[string]struct{ repo, wantErr string }{
		"a longer soak and another pair": {"staging:\n  promotion:\n    - {production: overlays/production/**, staging: overlays/staging/**, soak: 4h}\n    - {production: apps/prod/**, staging: apps/stage/**}\n", ""},
		"a shorter soak":                 {"staging:\n  promotion:\n    - {production: overlays/production/**, staging: overlays/staging/**, soak: 1h}\n", "repo.yml:4:"},
		"the pair dropped":               {"staging:\n  promotion: []\n", "drops the baseline's pair"},
	} {
		_, err := Merge(org, mustParse(t, "repo.yml", "version: 1\n"+tc.repo))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want %q", name, err, tc.wantErr)
		}
	}
}

// TestPromotionEvaluate: the staging control follows the artifact; a
// soak keeps it pending until it ends, and says when; a pull request that
// sets no artifact keeps the exact-SHA rule.
func TestPromotionEvaluate(t *testing.T) {
	t.Parallel()
	p := Defaults()
	p.Production.Paths = []string{"overlays/production/**"}
	p.Staging.Checks = []string{"kustomization/staging/*"}
	p.Staging.Promotion = []Promotion{{Production: "overlays/production/**", Staging: "overlays/staging/**", Soak: 2 * time.Hour}}
	synced := time.Date(2026, 3, 1, 9, 12, 0, 0, time.UTC)
	pr := change.Promotion{Production: "overlays/production/**", Staging: "overlays/staging/**", File: "overlays/production/kustomization.yaml",
		To: change.Artifact{Kind: change.ArtifactImage, Name: "app", Version: "v2"}, StagingFile: "overlays/staging/kustomization.yaml", IntroducedBy: "abc1234",
		Statuses: []change.Status{{Context: "kustomization/staging/0c9c2e41", State: "success", SHA: "abc1234", CreatedAt: synced}}}
	facts := func(asOf time.Time, prs ...change.Promotion) *change.Facts {
		return &change.Facts{PR: change.PullRequest{BaseRef: "main", DefaultBranch: "main", HeadSHA: "head"},
			Files: []string{"overlays/production/kustomization.yaml"}, Promotions: prs, AsOf: asOf}
	}
	staging := func(f *change.Facts) (change.ControlResult, change.Decision) {
		d := Evaluate(p, f)
		c, _ := d.Control(change.ControlStaging)
		return c, d
	}
	if c, d := staging(facts(synced.Add(time.Hour), pr)); c.Result != change.Pending || !d.RecheckAt.Equal(synced.Add(2*time.Hour)) ||
		!strings.Contains(c.Reasons[0], "until 2026-03-01 11:12 UTC") {
		t.Errorf("soaking: %s %v, recheck at %v", c.Result, c.Reasons, d.RecheckAt)
	}
	if c, d := staging(facts(synced.Add(2*time.Hour), pr)); c.Result != change.Pass || !d.RecheckAt.IsZero() ||
		!strings.Contains(c.Evidence[0].Detail, "in staging since 2026-03-01 09:12 UTC (commit abc1234, status kustomization/staging/0c9c2e41 success)") {
		t.Errorf("soaked: %s %v %+v", c.Result, c.Reasons, c.Evidence)
	}
	if c, _ := staging(facts(synced)); c.Result != change.Fail || !strings.Contains(strings.Join(c.Reasons, " "), "no staging deployment or check on the head") {
		t.Errorf("no artifact set: the exact-SHA rule: %s %v", c.Result, c.Reasons)
	}
	outside := facts(synced.Add(3*time.Hour), pr)
	outside.Files = []string{"apps/web.yaml"}
	p.Production.Paths = nil
	if c, _ := staging(outside); c.Result != change.Fail || len(c.Evidence) != 0 {
		t.Errorf("outside the pairs: %s %v", c.Result, c.Reasons)
	}
}
