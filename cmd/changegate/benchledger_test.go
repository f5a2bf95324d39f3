package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// TestBuildBenchLedger writes a data dir of N change records through the
// server's own ledger wiring, for the verify benchmark in the README:
//
//	CHANGEGATE_BENCH_LEDGER=/var/tmp/cg1m CHANGEGATE_BENCH_RECORDS=1000000 \
//	  go test ./cmd/changegate -run TestBuildBenchLedger -timeout 0 -v
//	/usr/bin/time -v go run ./cmd/changegate audit verify --data-dir /var/tmp/cg1m
//
// 64 callers append at once, as the archive jobs of a busy server do, so
// records share checkpoints as they would there. Records are realistic:
// a merged pull request with commits, reviews, checks, a staging
// deployment, a ticket with its approval, and the four control results.
// Without CHANGEGATE_BENCH_LEDGER it skips.
func TestBuildBenchLedger(t *testing.T) {
	dir := os.Getenv("CHANGEGATE_BENCH_LEDGER")
	if dir == "" {
		t.Skip("set CHANGEGATE_BENCH_LEDGER=DIR (and CHANGEGATE_BENCH_RECORDS=N) to build a ledger for the verify benchmark")
	}
	n, err := strconv.Atoi(os.Getenv("CHANGEGATE_BENCH_RECORDS"))
	if err != nil || n <= 0 {
		t.Fatalf("CHANGEGATE_BENCH_RECORDS=%q: want a positive count", os.Getenv("CHANGEGATE_BENCH_RECORDS"))
	}
	ctx := t.Context()
	store, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := openLedger(ctx, config.Config{DataDir: dir}, sqliteStorage{store}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := int(l.Size())
	var next atomic.Int64
	next.Store(int64(start))
	began := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || t.Failed() {
					return
				}
				if _, err := l.Append(ctx, benchRecord(i)); err != nil {
					t.Errorf("record %d: %v", i, err)
					return
				}
				if i%50000 == 0 {
					t.Logf("%d records, %.0f/s", i, float64(i-start)/time.Since(began).Seconds())
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d records in %s (%.0f appends/s)", n, time.Since(began).Round(time.Second),
		float64(n-start)/time.Since(began).Seconds())
}

// benchRecord is the archived record of pull request i.
func benchRecord(i int) *evidence.Record {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One merge every 30 s: a month is about 86k records, as the audit
	// benchmarks want.
	at := func(sec int) time.Time {
		return t0.Add(time.Duration(i)*30*time.Second + time.Duration(sec)*time.Second)
	}
	sha := func(tag string) string { return fmt.Sprintf("%032x%08x", i, len(tag)*7919)[:40] }
	repo := change.Repo{Owner: "acme", Name: fmt.Sprintf("svc-%d", i%40)}
	head, merge := sha("head"), sha("merge")
	key := fmt.Sprintf("PAY-%d", 100+i)
	num := 1000 + i
	facts := change.Facts{
		Subject: change.Subject{Installation: 42, Repo: repo, Number: num, BaseRef: "main", HeadRef: "feature/" + key, HeadSHA: head, MergeSHA: merge},
		PR: change.PullRequest{Number: num, URL: fmt.Sprintf("https://github.com/%s/pull/%d", repo, num),
			Title: key + ": fix rounding in ledger totals", Body: "Rounds half-even, as finance asked.\n\nCloses " + key,
			Author: "alice", State: "closed", Merged: true, BaseRef: "main", HeadRef: "feature/" + key, HeadSHA: head,
			MergeCommitSHA: merge, DefaultBranch: "main", ChangedFiles: 2, CommitCount: 2, Labels: []string{"payments"},
			CreatedAt: at(-600), MergedAt: at(30), MergedBy: "bob"},
		Files: []string{"src/pay/round.go", "src/pay/round_test.go"},
		Commits: []change.Commit{
			{SHA: sha("c1"), Author: change.Person{Name: "Alice", Email: "alice@acme.test", Login: "alice"}, Committer: change.Person{Login: "alice"}},
			{SHA: head, Author: change.Person{Name: "Alice", Email: "alice@acme.test", Login: "alice"}, Committer: change.Person{Login: "alice"}},
		},
		Reviews: []change.Review{
			{ID: 9000000000 + int64(i), User: "bob", State: change.ReviewApproved, CommitID: head, SubmittedAt: at(10)},
			{ID: 9100000000 + int64(i), User: "dave", State: change.ReviewApproved, CommitID: head, SubmittedAt: at(20)},
		},
		CheckRuns: []change.CheckRun{{Name: "ci", HeadSHA: head, Status: "completed", Conclusion: "success", App: "github-actions", CompletedAt: at(5)}},
		Deployments: []change.Deployment{{ID: 7000 + int64(i), Environment: "staging", SHA: head, Ref: "feature/" + key, CreatedAt: at(1),
			Statuses: []change.DeploymentStatus{{State: "success", CreatedAt: at(3)}}}},
		Memberships: []change.Membership{{Team: "acme/release-managers", User: "dave", Active: true}},
		Tickets: []change.TicketLookup{{Key: key, Result: change.LookupFound, Ticket: &change.Ticket{Key: key,
			URL: "https://acme.atlassian.net/browse/" + key, Project: "PAY", Type: "Change", Status: "Approved",
			Summary: "Fix rounding", Reporter: "Paula", Created: at(-900),
			Approvals: []change.Approval{{Decision: "approved", Approvers: []string{"dave"}, Completed: at(-100)}}}}},
	}
	decision := change.Decision{Outcome: change.Compliant, PolicyDigest: "sha256:5d41402abc4b2a76b9719d911017c592",
		PolicySource: repo.String() + ":.github/changegate.yml@main",
		Controls: []change.ControlResult{
			{Control: change.ControlTicket, Result: change.Pass, Evidence: []change.Evidence{{Kind: "ticket", Ref: key, Detail: "Approved"}}},
			{Control: change.ControlPeerReview, Result: change.Pass, Evidence: []change.Evidence{{Kind: "review", Ref: "bob", Detail: head}}},
			{Control: change.ControlStaging, Result: change.Pass, Evidence: []change.Evidence{{Kind: "deployment", Ref: "staging", Detail: "success"}}},
			{Control: change.ControlManagerApproval, Result: change.Pass, Evidence: []change.Evidence{{Kind: "review", Ref: "dave", Detail: head}}},
		}}
	r := &evidence.Record{
		Schema: evidence.Schema, Repo: repo,
		Subject:    evidence.Subject{PR: num, BaseRef: "main", HeadSHA: head, MergeSHA: merge},
		ChangeType: evidence.Standard, Facts: facts, Decision: decision,
		Policy:     evidence.Policy{Digest: decision.PolicyDigest, Source: decision.PolicySource},
		ObservedAt: at(31), DeliveryIDs: []string{fmt.Sprintf("d-%d", i)}, AppVersion: "bench",
	}
	if i%500 == 7 { // one merge in 500 bypasses the check
		r.ChangeType = evidence.Bypass
		r.Decision.Outcome = change.NonCompliant
		r.Decision.Controls[3] = change.ControlResult{Control: change.ControlManagerApproval, Result: change.Fail}
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionBypass, OpenedAt: at(30),
			Reason: "merged while changegate's decision was non_compliant (manager_approval fail)"}
	}
	return r
}
