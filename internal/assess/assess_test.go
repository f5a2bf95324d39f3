package assess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
)

// fakes: each records what the workflow asked of it.

type fakeClients struct{}

func (fakeClients) Installation(int64) (*github.Client, error) { return github.NewClient(nil), nil }

type fakePolicy struct{ keys []string }

func (p fakePolicy) Needs() change.Needs                           { return change.Needs{Reviews: true, Commits: true} }
func (p fakePolicy) TicketKeys(change.PullRequest) []string        { return p.keys }
func (p fakePolicy) TicketOptions() (bool, string)                 { return false, "" }
func (p fakePolicy) Evaluate(f *change.Facts) change.Decision      { return decide(f) }
func (p fakePolicy) ProductionBranch(b, def string) bool           { return b == def }
func (p fakePolicy) ProductionEnvironment(env string) bool         { return env == "production" }
func (p fakePolicy) StagingCheck(name string) bool                 { return name == "" || name == "staging" }
func (p fakePolicy) StagingEnvironment(env string) bool            { return env == "staging" }
func (p fakePolicy) ManagerTeam(team string) bool                  { return team == "acme/release-managers" }
func (p fakePolicy) Digest() string                                { return "digest" }
func (p fakePolicy) EmergencyLabel() string                        { return "emergency" }
func (p fakePolicy) FrozenAt(time.Time) (string, bool)             { return "", false }
func (p fakePolicy) LiteralProductionBranches(def string) []string { return []string{def} }
func (p fakePolicy) LiteralProductionEnvironments() []string       { return nil }

// decide is a stand-in policy: compliant when every ticket was found.
func decide(f *change.Facts) change.Decision {
	d := change.Decision{Outcome: change.Compliant}
	for _, t := range f.Tickets {
		switch t.Result {
		case change.LookupUnreachable:
			d.Outcome = change.Undecided
		case change.LookupNotFound:
			d.Outcome = change.NonCompliant
		}
	}
	return d
}

type world struct {
	mu        sync.Mutex
	prs       map[int]change.PullRequest
	gathers   []change.Needs
	published []change.Decision
	tickets   map[string]string // key → lookup result
	policyErr error
	index     map[int]IndexedPR
	lastEval  map[int]time.Time
	now       time.Time
}

func newWorld() *world {
	return &world{prs: map[int]change.PullRequest{}, tickets: map[string]string{}, index: map[int]IndexedPR{},
		lastEval: map[int]time.Time{}, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (w *world) assessor() *Assessor {
	return &Assessor{
		Clients: fakeClients{},
		Policies: func(context.Context, *github.Client, change.Repo, string) (Policy, string, error) {
			if w.policyErr != nil {
				return nil, "", w.policyErr
			}
			return fakePolicy{keys: []string{"PAY-1"}}, "server default", nil
		},
		Pull: func(_ context.Context, _ *github.Client, s change.Subject) (*change.Facts, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			pr, ok := w.prs[s.Number]
			if !ok {
				return nil, errors.New("GitHub 502")
			}
			s.HeadSHA, s.BaseRef = pr.HeadSHA, pr.BaseRef
			return &change.Facts{Subject: s, PR: pr}, nil
		},
		Gather: func(_ context.Context, _ *github.Client, base *change.Facts, n change.Needs) (*change.Facts, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.gathers = append(w.gathers, n)
			f := *base
			return &f, nil
		},
		Tickets: func(_ context.Context, key string, _ bool, _ string) change.TicketLookup {
			w.mu.Lock()
			defer w.mu.Unlock()
			return change.TicketLookup{Key: key, Result: w.tickets[key]}
		},
		Publish: func(_ context.Context, _ *github.Client, _ change.Subject, d change.Decision) (bool, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.published = append(w.published, d)
			return true, nil
		},
		Pulls: func(_ context.Context, _ *github.Client, _ change.Repo, sha string) ([]int, error) {
			var out []int
			for n, pr := range w.prs {
				if pr.HeadSHA == sha {
					out = append(out, n)
				}
			}
			return out, nil
		},
		Store: w,
		Now:   func() time.Time { return w.now },
	}
}

func (w *world) LastEvaluated(_ context.Context, _ string, n int) (time.Time, bool, error) {
	t, ok := w.lastEval[n]
	return t, ok, nil
}

func (w *world) IndexPullRequest(_ context.Context, _ jobs.Tx, pr IndexedPR, _ time.Time) error {
	w.index[pr.Number] = pr
	if !pr.EvaluatedAt.IsZero() {
		w.lastEval[pr.Number] = pr.EvaluatedAt
	}
	return nil
}

func (w *world) OpenPullRequestsOfOwner(context.Context, int64, string) ([]IndexedPR, error) {
	return nil, nil
}

func (w *world) LaterCommitJobs(context.Context, string, string, time.Time) ([]jobs.EvaluateSHA, error) {
	return nil, nil
}

func (w *world) OpenPullRequestsWithHead(_ context.Context, _ string, sha string) ([]IndexedPR, error) {
	var out []IndexedPR
	for _, p := range w.index {
		if p.HeadSHA == sha && p.State == "open" {
			out = append(out, p)
		}
	}
	return out, nil
}

func (w *world) OpenPullRequestsWithKey(_ context.Context, key string) ([]IndexedPR, error) {
	var out []IndexedPR
	for _, p := range w.index {
		for _, k := range p.Keys {
			if k == key && p.State == "open" {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

var log = slog.New(slog.DiscardHandler)

// run executes a job handler and its Apply, as the queue would.
func run(t *testing.T, apply func() (jobs.Apply, error)) error {
	t.Helper()
	a, err := apply()
	if err != nil {
		return err
	}
	if a != nil {
		return a(t.Context(), nil)
	}
	return nil
}

func (w *world) outcomes() []change.Outcome {
	var out []change.Outcome
	for _, d := range w.published {
		out = append(out, d.Outcome)
	}
	return out
}

func TestEvaluatePublishesAndIndexes(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.prs[5] = change.PullRequest{Number: 5, State: "open", HeadSHA: "aaa", BaseRef: "main"}
	w.tickets["PAY-1"] = change.LookupFound
	a := w.assessor()
	err := run(t, func() (jobs.Apply, error) {
		ap, err := a.EvaluatePRJob(t.Context(), log, jobs.EvaluatePR{Installation: 1, Repo: "acme/api", Number: 5, QueuedAt: w.now.Add(-time.Second)})
		return ap, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]change.Outcome{change.Compliant}, w.outcomes()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
	want := IndexedPR{Repo: "acme/api", Number: 5, InstallationID: 1, HeadSHA: "aaa", BaseRef: "main", State: "open", Keys: []string{"PAY-1"}, EvaluatedAt: w.now}
	if diff := cmp.Diff(want, w.index[5]); diff != "" {
		t.Errorf("index (-want +got):\n%s", diff)
	}
	// The pull request first, then only what the policy needs.
	if diff := cmp.Diff([]change.Needs{{Reviews: true, Commits: true}}, w.gathers); diff != "" {
		t.Errorf("gathers (-want +got):\n%s", diff)
	}
}

// serialRecorder is a Serializer that records what it held, and what
// was published while it held it.
type serialRecorder struct {
	w      *world
	events []string
	err    error
}

func (s *serialRecorder) Lock(_ context.Context, key string) (func(), error) {
	if s.err != nil {
		return nil, s.err
	}
	s.events = append(s.events, "lock "+key)
	return func() {
		s.events = append(s.events, fmt.Sprintf("unlock %s after %d publishes", key, len(s.w.published)))
	}, nil
}

// TestEvaluationHoldsTheSharedLock: an evaluation publishes under the
// lock replicas share; when the lock cannot be had, nothing is published
// and the job fails, to run again.
func TestEvaluationHoldsTheSharedLock(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.prs[5] = change.PullRequest{Number: 5, State: "open", HeadSHA: "aaa", BaseRef: "main"}
	w.tickets["PAY-1"] = change.LookupFound
	a := w.assessor()
	serial := &serialRecorder{w: w}
	a.Serial = serial
	job := jobs.EvaluatePR{Installation: 1, Repo: "acme/api", Number: 5, QueuedAt: w.now.Add(-time.Second)}
	if err := run(t, func() (jobs.Apply, error) { return a.EvaluatePRJob(t.Context(), log, job) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"lock acme/api#5", "unlock acme/api#5 after 1 publishes"}, serial.events); diff != "" {
		t.Errorf("lock (-want +got):\n%s", diff)
	}
	serial.err = errors.New("database down")
	job.QueuedAt = w.now.Add(time.Second)
	if err := run(t, func() (jobs.Apply, error) { return a.EvaluatePRJob(t.Context(), log, job) }); err == nil || !strings.Contains(err.Error(), "database down") {
		t.Errorf("without the lock: %v, want the job to fail naming why", err)
	}
	if len(w.published) != 1 {
		t.Errorf("%d publishes, want none without the lock", len(w.published)-1)
	}
}

func TestStaleJobIsCoalesced(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.prs[5] = change.PullRequest{Number: 5, State: "open", HeadSHA: "aaa"}
	w.tickets["PAY-1"] = change.LookupFound
	w.lastEval[5] = w.now.Add(-time.Second) // an evaluation started after the event
	a := w.assessor()
	if err := run(t, func() (jobs.Apply, error) {
		return a.EvaluatePRJob(t.Context(), log, jobs.EvaluatePR{Installation: 1, Repo: "acme/api", Number: 5, QueuedAt: w.now.Add(-time.Minute)})
	}); err != nil {
		t.Fatal(err)
	}
	if len(w.gathers) != 0 || len(w.published) != 0 {
		t.Errorf("a job queued before the latest evaluation ran: %d gathers, %d publishes", len(w.gathers), len(w.published))
	}
}

func TestFailedEvaluationDoesNotCoalesceItsRetry(t *testing.T) {
	t.Parallel()
	w := newWorld()
	a := w.assessor()
	job := jobs.EvaluatePR{Installation: 1, Repo: "acme/api", Number: 5, QueuedAt: w.now.Add(-time.Minute)}
	if err := run(t, func() (jobs.Apply, error) { return a.EvaluatePRJob(t.Context(), log, job) }); err == nil {
		t.Fatal("want the GitHub error")
	}
	w.prs[5] = change.PullRequest{Number: 5, State: "open", HeadSHA: "aaa"}
	w.tickets["PAY-1"] = change.LookupFound
	w.now = w.now.Add(time.Minute)
	if err := run(t, func() (jobs.Apply, error) { return a.EvaluatePRJob(t.Context(), log, job) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]change.Outcome{change.Compliant}, w.outcomes()); diff != "" {
		t.Errorf("the retry must evaluate (-want +got):\n%s", diff)
	}
}

func TestJiraUnreachablePublishesPendingAndRetries(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.prs[5] = change.PullRequest{Number: 5, State: "open", HeadSHA: "aaa"}
	w.tickets["PAY-1"] = change.LookupUnreachable
	a := w.assessor()
	err := run(t, func() (jobs.Apply, error) {
		return a.EvaluatePRJob(t.Context(), log, jobs.EvaluatePR{Installation: 1, Repo: "acme/api", Number: 5})
	})
	if !errors.Is(err, ErrJiraUnreachable) {
		t.Fatalf("err = %v, want ErrJiraUnreachable so the job retries", err)
	}
	if diff := cmp.Diff([]change.Outcome{change.Undecided}, w.outcomes()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
}

func TestInvalidPolicyPublishesFailure(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.prs[5] = change.PullRequest{Number: 5, State: "open", HeadSHA: "aaa"}
	w.policyErr = &InvalidPolicyError{Source: ".github/changegate.yml", Err: errors.New(`line 3: unknown key "reveiw"`)}
	a := w.assessor()
	if err := run(t, func() (jobs.Apply, error) {
		return a.EvaluatePRJob(t.Context(), log, jobs.EvaluatePR{Installation: 1, Repo: "acme/api", Number: 5})
	}); err != nil {
		t.Fatal(err)
	}
	if len(w.published) != 1 || w.published[0].Outcome != change.InvalidPolicy || w.published[0].Reason != `.github/changegate.yml: line 3: unknown key "reveiw"` {
		t.Errorf("published = %+v", w.published)
	}
}

func TestClosedPullRequestIsIndexedNotPublished(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.prs[5] = change.PullRequest{Number: 5, State: "closed", HeadSHA: "aaa"}
	w.index[5] = IndexedPR{Repo: "acme/api", Number: 5, HeadSHA: "aaa", State: "open", Keys: []string{"PAY-1"}}
	a := w.assessor()
	if err := run(t, func() (jobs.Apply, error) {
		return a.EvaluatePRJob(t.Context(), log, jobs.EvaluatePR{Installation: 1, Repo: "acme/api", Number: 5})
	}); err != nil {
		t.Fatal(err)
	}
	if len(w.published) != 0 || w.index[5].State != "closed" {
		t.Errorf("published %d, index state %q", len(w.published), w.index[5].State)
	}
}

func TestCommitEventsFanOutToOpenPullRequests(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.prs[5] = change.PullRequest{Number: 5, State: "open", HeadSHA: "aaa"}
	w.prs[6] = change.PullRequest{Number: 6, State: "open", HeadSHA: "aaa"}
	w.tickets["PAY-1"] = change.LookupFound
	a := w.assessor()
	// Not indexed yet: GitHub is asked which pull requests hold the commit.
	if err := run(t, func() (jobs.Apply, error) {
		return a.EvaluateSHAJob(t.Context(), log, jobs.EvaluateSHA{Installation: 1, Repo: "acme/api", SHA: "aaa"})
	}); err != nil {
		t.Fatal(err)
	}
	if len(w.published) != 2 || len(w.index) != 2 {
		t.Fatalf("published %d, indexed %d; want both pull requests", len(w.published), len(w.index))
	}
	// A Jira transition re-evaluates every open pull request naming the key.
	w.now = w.now.Add(time.Minute)
	w.published = nil
	if err := run(t, func() (jobs.Apply, error) {
		return a.JiraIssueJob(t.Context(), log, jobs.JiraIssue{Key: "PAY-1", QueuedAt: w.now})
	}); err != nil {
		t.Fatal(err)
	}
	if len(w.published) != 2 {
		t.Errorf("jira transition re-evaluated %d pull requests, want 2", len(w.published))
	}
}

func TestKeyedMutexSerialises(t *testing.T) {
	t.Parallel()
	var k keyedMutex
	var inside, max int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			unlock := k.lock("acme/api#5")
			mu.Lock()
			inside++
			if inside > max {
				max = inside
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if max != 1 {
		t.Errorf("%d evaluations of one pull request ran at once", max)
	}
	if len(k.locks) != 0 {
		t.Errorf("%d locks left behind", len(k.locks))
	}
}
