package checks_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/checks"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/ghfake"
)

// memStore is an in-memory checks.Store.
type memStore struct {
	mu sync.Mutex
	m  map[string]checks.State
}

func newStore() *memStore { return &memStore{m: map[string]checks.State{}} }

func (s *memStore) Get(_ context.Context, repo change.Repo, sha string) (checks.State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[repo.String()+"@"+sha]
	return st, ok, nil
}

func (s *memStore) Put(_ context.Context, repo change.Repo, sha string, st checks.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[repo.String()+"@"+sha] = st
	return nil
}

type fixture struct {
	gh     *ghfake.Server
	client *github.Client
	opts   checks.PublishOptions
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gh := ghfake.New(t)
	in := gh.AddInstallation(ghfake.Installation{Account: "acme"})
	gh.AddRepo(in.ID, ghfake.Repo{Name: "payments"})
	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()}, ghapp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := apps.Installation(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{gh: gh, client: client, opts: checks.PublishOptions{AppID: gh.AppID(), DetailsURL: "https://changegate.acme.test/acme/payments/pull/42"}}
}

func (f *fixture) publish(t *testing.T, store checks.Store, d change.Decision) bool {
	t.Helper()
	wrote, err := checks.Publish(t.Context(), f.client, store, subject(), d, f.opts)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return wrote
}

// conclusions is the sequence of status/conclusion writes GitHub saw.
func (f *fixture) conclusions() []string {
	var out []string
	for _, w := range f.gh.CheckRunWrites("acme", "payments") {
		out = append(out, w.Status+"/"+w.Conclusion)
	}
	return out
}

func (f *fixture) ourRuns() []ghfake.CheckRun {
	var out []ghfake.CheckRun
	for _, cr := range f.gh.CheckRuns("acme", "payments", headSHA) {
		if cr.Name == checks.Name && cr.AppSlug == "changegate" {
			out = append(out, cr)
		}
	}
	return out
}

const (
	postRoute  = "/repos/{owner}/{repo}/check-runs"
	patchRoute = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
)

func TestPublishWritesOnlyWhenTheDecisionChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := newStore()
	cases := renderCases()

	if !f.publish(t, store, cases["missing_manager"]) {
		t.Fatal("first publish wrote nothing")
	}
	runs := f.ourRuns()
	if len(runs) != 1 {
		t.Fatalf("%d changegate runs after the first publish, want 1", len(runs))
	}
	got, ok := f.gh.CheckRunOutput("acme", "payments", runs[0].ID)
	if !ok {
		t.Fatal("no output recorded")
	}
	want := checks.Render(subject(), cases["missing_manager"])
	if diff := cmp.Diff(ghfake.CheckRunOutput{
		Status: want.Status, Conclusion: want.Conclusion, Title: want.Title, Summary: want.Summary, Text: want.Text,
		DetailsURL: f.opts.DetailsURL, ExternalID: "acme/payments#42",
	}, got); diff != "" {
		t.Errorf("posted check (-want +got):\n%s", diff)
	}

	// The same decision again costs nothing at all.
	calls, writes := len(f.gh.Calls()), f.gh.Writes()
	if f.publish(t, store, cases["missing_manager"]) {
		t.Error("unchanged decision was written")
	}
	if n := len(f.gh.Calls()) - calls; n != 0 || f.gh.Writes() != writes {
		t.Errorf("unchanged decision made %d requests (%d writes)", n, f.gh.Writes()-writes)
	}

	// A changed decision updates the same run.
	if !f.publish(t, store, cases["compliant"]) {
		t.Fatal("changed decision was not written")
	}
	if n := f.gh.CountCalls(http.MethodPost, postRoute); n != 1 {
		t.Errorf("%d check runs created, want 1", n)
	}
	if n := f.gh.CountCalls(http.MethodPatch, patchRoute); n != 1 {
		t.Errorf("%d check run updates, want 1", n)
	}
	if runs := f.ourRuns(); len(runs) != 1 || runs[0].Conclusion != "success" {
		t.Errorf("runs after update: %+v", runs)
	}
	if diff := cmp.Diff([]string{"completed/failure", "completed/success"}, f.conclusions()); diff != "" {
		t.Errorf("conclusions posted (-want +got):\n%s", diff)
	}
}

func TestPublishLostStateReusesTheRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cases := renderCases()
	f.publish(t, newStore(), cases["several_missing"])

	// A replica with no state and the same decision finds the run and
	// writes nothing.
	fresh := newStore()
	writes := f.gh.Writes()
	if f.publish(t, fresh, cases["several_missing"]) {
		t.Error("lost state and an unchanged run: wrote anyway")
	}
	if f.gh.Writes() != writes {
		t.Errorf("%d writes, want 0", f.gh.Writes()-writes)
	}
	st, ok, _ := fresh.Get(t.Context(), subject().Repo, headSHA)
	if runs := f.ourRuns(); !ok || len(runs) != 1 || st.CheckRunID != runs[0].ID {
		t.Fatalf("state %+v (found %v), runs %+v", st, ok, runs)
	}

	// With no state and a new decision it updates that run: no duplicate.
	if !f.publish(t, newStore(), cases["missing_manager"]) {
		t.Error("changed decision was not written")
	}
	if n := len(f.ourRuns()); n != 1 {
		t.Errorf("%d changegate runs, want 1", n)
	}
	if n := f.gh.CountCalls(http.MethodPost, postRoute); n != 1 {
		t.Errorf("%d check runs created, want 1", n)
	}
	if diff := cmp.Diff([]string{"completed/failure", "completed/failure"}, f.conclusions()); diff != "" {
		t.Errorf("conclusions posted (-want +got):\n%s", diff)
	}
}

// A success cannot be turned back into pending on GitHub (it keeps the
// conclusion), so an undecided re-evaluation starts a new run, which
// branch protection then reads as the latest.
func TestPublishUndecidedAfterSuccessStartsANewRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := newStore()
	cases := renderCases()
	f.publish(t, store, cases["compliant"])
	f.publish(t, store, cases["undecided_jira"])
	f.publish(t, store, cases["undecided_jira"])
	f.publish(t, store, cases["compliant"])

	if diff := cmp.Diff([]string{"completed/success", "in_progress/", "completed/success"}, f.conclusions()); diff != "" {
		t.Errorf("conclusions posted (-want +got):\n%s", diff)
	}
	runs := f.ourRuns()
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	writes := f.gh.CheckRunWrites("acme", "payments")
	if writes[1].Method != http.MethodPost || writes[2].Method != http.MethodPatch || writes[2].CheckRunID != writes[1].CheckRunID {
		t.Errorf("writes: %+v", writes)
	}
}

func TestPublishIgnoresAnotherAppsCheckOfTheSameName(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.gh.AddCheckRun("acme", "payments", ghfake.CheckRun{Name: checks.Name, HeadSHA: headSHA, Status: "completed", Conclusion: "success", AppSlug: "impostor"})
	f.publish(t, newStore(), renderCases()["missing_manager"])
	if n := f.gh.CountCalls(http.MethodPost, postRoute); n != 1 {
		t.Errorf("%d check runs created, want 1 (the impostor's must not be reused)", n)
	}
	if diff := cmp.Diff([]string{"completed/failure"}, f.conclusions()); diff != "" {
		t.Errorf("conclusions posted (-want +got):\n%s", diff)
	}
}

func TestPublishRecreatesARunGitHubNoLongerHas(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := newStore()
	_ = store.Put(t.Context(), subject().Repo, headSHA, checks.State{CheckRunID: 987654321, Digest: "old"})
	if !f.publish(t, store, renderCases()["compliant"]) {
		t.Fatal("nothing written")
	}
	runs := f.ourRuns()
	st, _, _ := store.Get(t.Context(), subject().Repo, headSHA)
	if len(runs) != 1 || st.CheckRunID != runs[0].ID {
		t.Errorf("state %+v, runs %+v", st, runs)
	}
}

func TestPublishRateLimitedWriteIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := newStore()
	f.gh.FailNext(ghfake.MatchRoute("POST "+postRoute), 1, http.StatusForbidden, nil, ghfake.SecondaryRateLimitBody)
	_, err := checks.Publish(t.Context(), f.client, store, subject(), renderCases()["compliant"], f.opts)
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) {
		t.Fatalf("err = %v, want *github.AbuseRateLimitError", err)
	}
	if _, ok, _ := store.Get(t.Context(), subject().Repo, headSHA); ok {
		t.Error("state saved for a write that failed")
	}
	if !f.publish(t, store, renderCases()["compliant"]) {
		t.Error("retry wrote nothing")
	}
	if n := len(f.ourRuns()); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
}

func TestPublishNeedsAppIDAndHead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := checks.Publish(t.Context(), f.client, newStore(), subject(), renderCases()["compliant"], checks.PublishOptions{}); err == nil {
		t.Error("no app id: no error")
	}
	s := subject()
	s.HeadSHA = ""
	if _, err := checks.Publish(t.Context(), f.client, newStore(), s, renderCases()["compliant"], f.opts); err == nil {
		t.Error("no head sha: no error")
	}
	if f.gh.Writes() != 0 {
		t.Errorf("%d writes", f.gh.Writes())
	}
}
