package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
)

const gitopsPolicy = `version: 1
production:
  paths: [overlays/production/**]
ticket:
  projects: [PAY]
  statuses: [Approved]
staging:
  checks: ["kustomization/staging/*"]
  promotion:
    - production: overlays/production/**
      staging: overlays/staging/**
      soak: 2h
manager:
  teams: [acme/release-managers]
`

func kustomization(tag string) []byte {
	return fmt.Appendf(nil, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\n"+
		"images:\n  - name: registry.example/app\n    newTag: %s\n", tag)
}

// TestGitOpsPromotion runs promotions through the server: one whose
// artifact soaked in staging long enough is met and archived with its
// artifact; one still soaking waits, and an evaluation is scheduled for
// when the soak ends.
func TestGitOpsPromotion(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	gh := a.gh
	now := time.Now().UTC()
	gh.Push("acme", "api", "main", "", ghfake.GitCommit{SHA: strings.Repeat("1", 40), Date: now.Add(-48 * time.Hour), Files: map[string][]byte{
		".github/changegate.yml": []byte(gitopsPolicy), "overlays/staging/kustomization.yaml": kustomization("v1.4.1"),
		"overlays/production/kustomization.yaml": kustomization("v1.4.1")}})
	stage := func(sha, tag string, syncedAgo time.Duration) {
		gh.Push("acme", "api", "main", "", ghfake.GitCommit{SHA: sha, Date: now.Add(-syncedAgo - time.Minute),
			Files: map[string][]byte{"overlays/staging/kustomization.yaml": kustomization(tag)}})
		gh.AddStatus("acme", "api", ghfake.Status{SHA: sha, Context: "kustomization/staging/0c9c2e41", State: "success", CreatedAt: now.Add(-syncedAgo)})
	}
	promote := func(n int, base, head, tag string) {
		gh.Push("acme", "api", fmt.Sprintf("promote-%d", n), base, ghfake.GitCommit{SHA: head,
			Files: map[string][]byte{"overlays/production/kustomization.yaml": kustomization(tag)}})
		gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: n, Title: "PAY-123 promote " + tag, Author: "alice",
			HeadRef: fmt.Sprintf("promote-%d", n), HeadSHA: head, BaseRef: "main", BaseSHA: base})
		gh.AddCommit("acme", "api", n, ghfake.Commit{SHA: head, Message: "promote", Author: ghfake.Person{Login: "alice"}})
		gh.AddFile("acme", "api", n, ghfake.File{Filename: "overlays/production/kustomization.yaml"})
		gh.AddReview("acme", "api", n, ghfake.Review{User: "bob", State: "APPROVED", CommitID: head})
		gh.AddReview("acme", "api", n, ghfake.Review{User: "carol", State: "APPROVED", CommitID: head})
		a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, head), `"number":51`, fmt.Sprintf(`"number":%d`, n)))
	}
	stage(strings.Repeat("2", 40), "v1.4.2", 3*time.Hour)
	soaked := strings.Repeat("a", 40)
	promote(81, strings.Repeat("2", 40), soaked, "v1.4.2")
	eventually(t, "the soaked promotion's check", 30*time.Second, func() bool { return len(a.conclusionsOn(soaked)) > 0 })
	w := a.latestOn(soaked)
	mustContain(t, w.Title+"\n"+w.Summary, "4 of 4 controls met", "registry.example/app v1.4.1 → v1.4.2: in staging since", "commit 2222222, status kustomization/staging/0c9c2e41 success")

	stage(strings.Repeat("3", 40), "v1.5.0", 30*time.Minute)
	soaking := strings.Repeat("b", 40)
	promote(82, strings.Repeat("3", 40), soaking, "v1.5.0")
	eventually(t, "the soaking promotion's check", 30*time.Second, func() bool { return len(a.conclusionsOn(soaking)) > 0 })
	if w := a.latestOn(soaking); w.Status != "in_progress" || !strings.Contains(w.Title, "soaks in staging until") {
		t.Errorf("a promotion still soaking: %s %q", w.Status, w.Title)
	}
	db := openReadOnly(t, a.dataDir)
	eventually(t, "an evaluation scheduled for the soak's end", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM river_job WHERE kind = 'evaluate_pr' AND state = 'scheduled'
			AND json_extract(args, '$.number') = 82 AND scheduled_at > datetime('now', '+80 minutes')`) == 1
	})

	gh.MergePullRequest("acme", "api", 81, strings.Repeat("c", 40), "alice")
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("closed", 51), sha1, soaked), `"number":51`, `"number":81`))
	eventually(t, "the promotion's record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE pr = '81'`) == 1
	})
	for _, rec := range a.records(t) {
		if p := rec.Facts.Promotions; len(p) != 1 || p[0].To.Version != "v1.4.2" || p[0].From.Version != "v1.4.1" || len(p[0].Statuses) == 0 {
			t.Errorf("the record's promotions: %+v", p)
		}
	}

	// The deployment gate judges a merged promotion by the same rule.
	if ans := a.answerOf(t, a.runFor(t, 4001, strings.Repeat("c", 40), "production")); ans.State != "approved" {
		t.Errorf("deploying the soaked promotion: %+v", ans)
	}
	never := strings.Repeat("d", 40)
	promote(83, strings.Repeat("3", 40), never, "v9.9.9")
	gh.MergePullRequest("acme", "api", 83, strings.Repeat("e", 40), "alice")
	if ans := a.answerOf(t, a.runFor(t, 4002, strings.Repeat("e", 40), "production")); ans.State != "rejected" || !strings.Contains(ans.Comment, "staging fail") {
		t.Errorf("deploying a promotion that never ran in staging: %+v", ans)
	}
}

// latestOn is the latest check written on a head.
func (a *app) latestOn(sha string) ghfake.CheckRunWrite {
	var w ghfake.CheckRunWrite
	for _, x := range a.gh.CheckRunWrites("acme", "api") {
		if x.HeadSHA == sha {
			w = x
		}
	}
	return w
}
