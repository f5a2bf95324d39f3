package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

func testInventory(t *testing.T, s Store) {
	ctx := t.Context()
	acme := jobs.Installation{ID: 42, Account: "acme", AccountType: "Organization", RepositorySelection: "selected"}
	other := jobs.Installation{ID: 43, Account: "bob", AccountType: "User", RepositorySelection: "all"}
	api, web, ops := jobs.Repo{ID: 1, FullName: "acme/api"}, jobs.Repo{ID: 2, FullName: "acme/web", Private: true}, jobs.Repo{ID: 3, FullName: "acme/ops"}
	tx(t, s, func(tx jobs.Tx) error {
		for _, in := range []jobs.Installation{acme, other} {
			if err := s.UpsertInstallation(ctx, tx, in, t0); err != nil {
				return err
			}
		}
		return s.UpsertRepos(ctx, tx, 42, []jobs.Repo{api, web}, t0)
	})
	// An event without the repository selection keeps the recorded one.
	suspended := acme
	suspended.RepositorySelection, suspended.Suspended = "", true
	tx(t, s, func(tx jobs.Tx) error { return s.UpsertInstallation(ctx, tx, suspended, t0.Add(time.Minute)) })
	ins, err := s.Installations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantAcme := store.Installation{Installation: acme}
	wantAcme.Suspended = true
	if want := []store.Installation{wantAcme, {Installation: other}}; !slices.Equal(ins, want) {
		t.Errorf("installations: %+v, want %+v", ins, want)
	}
	repos := func() []store.Repository {
		t.Helper()
		rs, err := s.Repositories(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	if got, want := repos(), []store.Repository{{Repo: api, InstallationID: 42}, {Repo: web, InstallationID: 42}}; !slices.Equal(got, want) {
		t.Errorf("repositories: %+v, want %+v", got, want)
	}

	// A full listing taken at t0+1m replaces what was there before it, but
	// keeps a repository a webhook added after the listing began.
	tx(t, s, func(tx jobs.Tx) error { return s.UpsertRepos(ctx, tx, 42, []jobs.Repo{ops}, t0.Add(3*time.Minute)) })
	tx(t, s, func(tx jobs.Tx) error {
		return s.ReplaceRepos(ctx, tx, 42, []jobs.Repo{web}, t0.Add(2*time.Minute), t0.Add(4*time.Minute))
	})
	if got, want := repos(), []store.Repository{{Repo: ops, InstallationID: 42}, {Repo: web, InstallationID: 42}}; !slices.Equal(got, want) {
		t.Errorf("after the replace: %+v, want %+v", got, want)
	}
	tx(t, s, func(tx jobs.Tx) error { return s.RemoveRepos(ctx, tx, 42, []jobs.Repo{ops}) })
	if got, want := repos(), []store.Repository{{Repo: web, InstallationID: 42}}; !slices.Equal(got, want) {
		t.Errorf("after the removal: %+v, want %+v", got, want)
	}

	// A sync that no longer lists 42 deletes it and forgets its repositories.
	tx(t, s, func(tx jobs.Tx) error {
		return s.MarkMissingInstallationsDeleted(ctx, tx, []int64{43}, t0.Add(5*time.Minute))
	})
	ins, err = s.Installations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || !ins[0].Deleted || ins[1].Deleted {
		t.Errorf("after the sync: %+v, want 42 deleted and 43 not", ins)
	}
	if got := repos(); len(got) != 0 {
		t.Errorf("repositories of a deleted installation: %+v", got)
	}
	// Installed again, it is live again.
	tx(t, s, func(tx jobs.Tx) error { return s.UpsertInstallation(ctx, tx, acme, t0.Add(6*time.Minute)) })
	if ins, err = s.Installations(ctx); err != nil || ins[0].Deleted {
		t.Errorf("reinstalled: %+v, %v", ins, err)
	}
}

func testPRIndex(t *testing.T, s Store) {
	ctx := t.Context()
	index := func(pr store.PullRequest, now time.Time) {
		t.Helper()
		tx(t, s, func(tx jobs.Tx) error { return s.IndexPullRequest(ctx, tx, pr, now) })
	}
	numbers := func(prs []store.PullRequest, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range prs {
			out = append(out, fmt.Sprintf("%s#%d", p.Repo, p.Number))
		}
		return out
	}
	head := "0123456789abcdef0123456789abcdef01234567"
	pr := func(repo string, n int, keys ...string) store.PullRequest {
		return store.PullRequest{Repo: repo, Number: n, InstallationID: 42, HeadSHA: head, BaseRef: "main", State: "open", Keys: keys, EvaluatedAt: t0}
	}
	index(pr("acme/api", 1, "PAY-1", "OPS-2"), t0)
	index(pr("acme/api", 2, "PAY-1"), t0)
	index(pr("Acme/web", 3), t0)
	index(pr("other/api", 4, "PAY-1"), t0)

	if got := numbers(s.OpenPullRequestsWithHead(ctx, "acme/api", head)); !slices.Equal(got, []string{"acme/api#1", "acme/api#2"}) {
		t.Errorf("with head: %v", got)
	}
	if got := numbers(s.OpenPullRequestsWithKey(ctx, "PAY-1")); !slices.Equal(got, []string{"acme/api#1", "acme/api#2", "other/api#4"}) {
		t.Errorf("with key PAY-1: %v", got)
	}
	if got := numbers(s.OpenPullRequestsOfOwner(ctx, 42, "ACME")); !slices.Equal(got, []string{"Acme/web#3", "acme/api#1", "acme/api#2"}) {
		t.Errorf("of owner acme: %v", got)
	}
	if got := numbers(s.OpenPullRequestsOfOwner(ctx, 43, "acme")); len(got) != 0 {
		t.Errorf("of owner acme in another installation: %v", got)
	}
	if last, ok, err := s.LastEvaluated(ctx, "acme/api", 1); err != nil || !ok || !last.Equal(t0) {
		t.Errorf("last evaluated: %v %v %v, want %v", last, ok, err, t0)
	}
	if _, ok, err := s.LastEvaluated(ctx, "acme/api", 99); err != nil || ok {
		t.Errorf("last evaluated of an unknown pull request: %v %v", ok, err)
	}

	// Indexed again without an evaluation time, it keeps the recorded one;
	// its keys are replaced.
	again := pr("acme/api", 1, "OPS-2")
	again.EvaluatedAt = time.Time{}
	index(again, t0.Add(time.Minute))
	if last, _, _ := s.LastEvaluated(ctx, "acme/api", 1); !last.Equal(t0) {
		t.Errorf("last evaluated after an index without a time: %v, want %v", last, t0)
	}
	if got := numbers(s.OpenPullRequestsWithKey(ctx, "PAY-1")); !slices.Equal(got, []string{"acme/api#2", "other/api#4"}) {
		t.Errorf("with key PAY-1 after #1 dropped it: %v", got)
	}
	// Closed, it leaves the open lists and its keys.
	closed := pr("acme/api", 2, "PAY-1")
	closed.State, closed.EvaluatedAt = "closed", t0.Add(2*time.Minute)
	index(closed, t0.Add(2*time.Minute))
	if got := numbers(s.OpenPullRequestsWithHead(ctx, "acme/api", head)); !slices.Equal(got, []string{"acme/api#1"}) {
		t.Errorf("with head after #2 closed: %v", got)
	}
	if got := numbers(s.OpenPullRequestsWithKey(ctx, "PAY-1")); !slices.Equal(got, []string{"other/api#4"}) {
		t.Errorf("with key PAY-1 after #2 closed: %v", got)
	}
	if last, _, _ := s.LastEvaluated(ctx, "acme/api", 2); !last.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("last evaluated of #2: %v", last)
	}

	// An evaluation that started before the recorded one, and commits
	// after it (another replica, a slow commit), changes nothing: its
	// head, state and keys are older.
	newer := pr("acme/api", 5, "PAY-9")
	newer.HeadSHA, newer.EvaluatedAt = "new0000000000000000000000000000000000000", t0.Add(time.Second)
	index(newer, t0.Add(3*time.Second))
	older := pr("acme/api", 5, "PAY-8")
	older.HeadSHA, older.EvaluatedAt = "old0000000000000000000000000000000000000", t0.Add(500*time.Millisecond)
	index(older, t0.Add(4*time.Second))
	if got := numbers(s.OpenPullRequestsWithHead(ctx, "acme/api", newer.HeadSHA)); !slices.Equal(got, []string{"acme/api#5"}) {
		t.Errorf("an older evaluation replaced the newer head: with the newer head %v", got)
	}
	if got := numbers(s.OpenPullRequestsWithKey(ctx, "PAY-8")); len(got) != 0 {
		t.Errorf("an older evaluation replaced the keys: with its key %v", got)
	}
	if last, _, _ := s.LastEvaluated(ctx, "acme/api", 5); !last.Equal(newer.EvaluatedAt) {
		t.Errorf("last evaluated of #5: %v, want the newer %v", last, newer.EvaluatedAt)
	}
}

func testCheckRuns(t *testing.T, s Store) {
	ctx := t.Context()
	if _, ok, err := s.CheckRun(ctx, "acme/api", "abc"); err != nil || ok {
		t.Fatalf("an unknown check run: %v %v", ok, err)
	}
	for _, c := range []store.CheckRun{{ID: 7, Digest: "d1"}, {ID: 8, Digest: "d2"}} {
		if err := s.PutCheckRun(ctx, "acme/api", "abc", c, t0); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.CheckRun(ctx, "acme/api", "abc"); err != nil || !ok || got != c {
			t.Errorf("check run: %+v %v %v, want %+v", got, ok, err, c)
		}
	}
}
