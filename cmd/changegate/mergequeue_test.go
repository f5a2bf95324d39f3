package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
)

// mergeGroup queues a merge group of the given pull requests on the fake
// (one commit each, as the queue makes them) and sends checks_requested.
func (a *app) mergeGroup(t *testing.T, base, head string, prs ...int) {
	t.Helper()
	msgs, order := map[string]string{}, []string{}
	for i, n := range prs {
		sha := fmt.Sprintf("%039d%d", n, i)
		order = append(order, sha)
		msgs[sha] = fmt.Sprintf("Merge pull request #%d from acme/feature-%d\n\nChange", n, n)
		if i%2 == 1 {
			msgs[sha] = fmt.Sprintf("Change %d (#%d)", n, n) // squashed
		}
	}
	a.gh.SetCompare("acme", "api", base, head, msgs, order)
	ref := fmt.Sprintf("refs/heads/gh-readonly-queue/main/pr-%d-%s", prs[len(prs)-1], strings.Repeat("9", 40))
	a.github(t, "merge_group", fmt.Sprintf(`{"action":"checks_requested","merge_group":{"head_sha":%q,"head_ref":%q,"base_sha":%q,"base_ref":"refs/heads/main",`+
		`"head_commit":{"id":%q,"message":"x"}},%s}`, head, ref, base, head, repoJSON))
}

// TestMergeQueue: a merge group of two compliant pull requests gets a
// passing changegate check on its head commit; a group with one that is
// not compliant fails, and the summary names it.
func TestMergeQueue(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	a.compliantPR(91, strings.Repeat("1", 40))
	a.compliantPR(92, strings.Repeat("2", 40))
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 93, Title: "PAY-123 unreviewed", Author: "alice",
		HeadRef: "feature/z", HeadSHA: strings.Repeat("3", 40), BaseRef: "main"})
	a.gh.AddCommit("acme", "api", 93, ghfake.Commit{SHA: strings.Repeat("3", 40), Message: "z", Author: ghfake.Person{Login: "alice"}})

	base := strings.Repeat("0", 39) + "b"
	good, bad := strings.Repeat("6", 40), strings.Repeat("7", 40)
	a.gh.ResetCalls()
	a.mergeGroup(t, base, good, 91, 92)
	eventually(t, "the check on the first group", 30*time.Second, func() bool { return len(a.conclusionsOn(good)) > 0 })
	t.Logf("GitHub calls for one merge-group check (two pull requests): %s", callSummary(a.gh.Calls()))
	a.mergeGroup(t, base, bad, 91, 93)
	for sha, want := range map[string]string{good: "success", bad: "failure"} {
		eventually(t, "the check on group "+sha[:4], 30*time.Second, func() bool {
			got := a.conclusionsOn(sha)
			return len(got) > 0 && got[len(got)-1] == want
		})
	}
	var summary string
	for _, w := range a.gh.CheckRunWrites("acme", "api") {
		if w.HeadSHA == bad && w.Summary != "" {
			summary = w.Summary
		}
	}
	if !strings.Contains(summary, "#93") || strings.Contains(summary, "#91: ") && !strings.Contains(summary, "#93: ") {
		t.Errorf("the failing group's summary does not name #93:\n%s", summary)
	}
}

// TestMergeQueueRecord: a pull request merged through the queue has a
// merge record naming the group it merged in.
func TestMergeQueueRecord(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	a.compliantPR(96, strings.Repeat("1", 40))
	a.compliantPR(97, strings.Repeat("2", 40))
	base, group := strings.Repeat("0", 39)+"b", strings.Repeat("6", 40)
	a.mergeGroup(t, base, group, 96, 97)
	eventually(t, "the group's check", 30*time.Second, func() bool { return len(a.conclusionsOn(group)) > 0 })
	time.Sleep(200 * time.Millisecond) // the group is remembered when its job commits
	a.gh.MergePullRequest("acme", "api", 97, group, "github-merge-queue[bot]")
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 97), sha1, group))
	db := openReadOnly(t, a.dataDir)
	eventually(t, "the merge record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) == 1
	})
	rec := a.records(t)[0]
	if g := rec.MergeGroup; g == nil || g.HeadSHA != group || fmt.Sprint(g.Pulls) != "[96 97]" || rec.Subject.MergeSHA != group || rec.Subject.HeadSHA != strings.Repeat("2", 40) {
		t.Errorf("merge record: subject %+v, group %+v", rec.Subject, rec.MergeGroup)
	}
}
