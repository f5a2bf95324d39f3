package checks_test

import (
	"time"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/policy"
)

// promotionCases are the evaluator's decisions on a GitOps promotion of
// registry.example/app from v1.4.1 to v1.4.2, one per way it can stand.
func promotionCases() map[string]change.Decision {
	const head, intro = "3f2c9a1e0d4b5c6a7f8e9d0c1b2a3f4e5d6c7b8a", "abc1234d4e5f60718293a4b5c6d7e8f9012345678"
	synced := time.Date(2026, 3, 1, 9, 12, 0, 0, time.UTC)
	p := policy.Defaults()
	p.Production.Paths = []string{"overlays/production/**"}
	p.Staging.Checks = []string{"kustomization/staging/*"}
	p.Manager.Teams = []string{"acme/release-managers"}
	p.Staging.Promotion = []policy.Promotion{{Production: "overlays/production/**", Staging: "overlays/staging/**", Soak: 2 * time.Hour}}
	from := change.Artifact{Kind: change.ArtifactImage, Name: "registry.example/app", Version: "v1.4.1"}
	inStaging := change.Promotion{Production: "overlays/production/**", Staging: "overlays/staging/**",
		File: "overlays/production/kustomization.yaml", From: &from,
		To:          change.Artifact{Kind: change.ArtifactImage, Name: "registry.example/app", Version: "v1.4.2"},
		StagingFile: "overlays/staging/kustomization.yaml", IntroducedBy: intro, IntroducedAt: synced.Add(-5 * time.Minute),
		Statuses: []change.Status{{Context: "kustomization/staging/0c9c2e41", State: "success", SHA: intro, CreatedAt: synced}}}
	base := func(asOf time.Time, prs ...change.Promotion) *change.Facts {
		return &change.Facts{
			Subject:     change.Subject{Repo: change.Repo{Owner: "acme", Name: "gitops"}, Number: 42, BaseRef: "main", HeadSHA: head},
			PR:          change.PullRequest{Number: 42, Author: "alice", BaseRef: "main", HeadSHA: head, DefaultBranch: "main", Title: "PAY-123 Promote app v1.4.2"},
			Files:       []string{"overlays/production/kustomization.yaml"},
			Commits:     []change.Commit{{SHA: head, Author: change.Person{Login: "alice"}, Committer: change.Person{Login: "alice"}}},
			Tickets:     []change.TicketLookup{{Key: "PAY-123", Result: change.LookupFound, Ticket: &change.Ticket{Key: "PAY-123", Project: "PAY", Type: "Story", Status: "Approved", URL: "https://acme.atlassian.net/browse/PAY-123"}}},
			Reviews:     []change.Review{{ID: 1, User: "bob", State: change.ReviewApproved, CommitID: head, SubmittedAt: synced}, {ID: 2, User: "carol", State: change.ReviewApproved, CommitID: head, SubmittedAt: synced}},
			Memberships: []change.Membership{{Team: "acme/release-managers", User: "carol", Active: true}},
			Promotions:  prs,
			AsOf:        asOf,
		}
	}
	notStaged := inStaging
	notStaged.StagingFile, notStaged.IntroducedBy, notStaged.Statuses = "", "", nil
	failed := inStaging
	failed.Statuses = []change.Status{{Context: "kustomization/staging/0c9c2e41", State: "failure", SHA: intro, CreatedAt: synced}}
	both := inStaging
	both.AlsoStaged = true
	unreadable := base(synced.Add(3 * time.Hour))
	unreadable.Gaps = []change.Gap{{Source: "manifests", Reason: "overlays/production/kustomization.yaml: not YAML: line 3: did not find expected key"}}
	eval := func(f *change.Facts) change.Decision {
		d := policy.Evaluate(p, f)
		d.PolicyDigest, d.PolicySource = digest, "acme/gitops .github/changegate.yml@main"
		return d
	}
	return map[string]change.Decision{
		"promotion_met":                 eval(base(synced.Add(3*time.Hour), inStaging)),
		"promotion_soaking":             eval(base(synced.Add(time.Hour), inStaging)),
		"promotion_not_in_staging":      eval(base(synced.Add(3*time.Hour), notStaged)),
		"promotion_sync_failed":         eval(base(synced.Add(3*time.Hour), failed)),
		"promotion_staged_at_once":      eval(base(synced.Add(3*time.Hour), both)),
		"promotion_unreadable_manifest": eval(unreadable),
	}
}
