package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/inventory"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/testenv"
	"github.com/changegate/changegate/internal/webhook"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func now() time.Time { return t0 }

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	s, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// apply runs a handler's effects in a transaction, as the queue does.
func apply[T jobs.Args](t *testing.T, s *sqlite.DB, h jobs.Handler[T], args T) error {
	t.Helper()
	ctx := t.Context()
	a, err := h(ctx, slog.New(slog.DiscardHandler), args)
	if err != nil {
		return err
	}
	tx, err := s.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := a(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

type snapshot struct {
	Installations []sqlite.Installation
	Repos         []sqlite.Repository
}

func snap(t *testing.T, s *sqlite.DB) snapshot {
	t.Helper()
	ins, err := s.Installations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Repositories(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{ins, rs}
}

func acme(suspended bool) jobs.Installation {
	return jobs.Installation{ID: 7, Account: "acme", AccountType: "Organization", RepositorySelection: "selected", Suspended: suspended}
}

func TestEventHandlerLifecycle(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	h := inventory.EventHandler(s, now, nil)
	steps := []struct {
		name string
		ev   jobs.InstallationEvent
		want snapshot
	}{
		{
			name: "created with repositories",
			ev: jobs.InstallationEvent{Event: "installation", Action: "created", Installation: acme(false),
				Repos: []jobs.Repo{{ID: 1, FullName: "acme/api", Private: true}, {ID: 2, FullName: "acme/web"}}},
			want: snapshot{
				Installations: []sqlite.Installation{{Installation: acme(false)}},
				Repos: []sqlite.Repository{
					{Repo: jobs.Repo{ID: 1, FullName: "acme/api", Private: true}, InstallationID: 7},
					{Repo: jobs.Repo{ID: 2, FullName: "acme/web"}, InstallationID: 7},
				},
			},
		},
		{
			name: "repository added and one removed",
			ev: jobs.InstallationEvent{Event: "installation_repositories", Action: "added", Installation: acme(false),
				Added: []jobs.Repo{{ID: 3, FullName: "acme/cli"}}, Removed: []jobs.Repo{{ID: 2, FullName: "acme/web"}}},
			want: snapshot{
				Installations: []sqlite.Installation{{Installation: acme(false)}},
				Repos: []sqlite.Repository{
					{Repo: jobs.Repo{ID: 1, FullName: "acme/api", Private: true}, InstallationID: 7},
					{Repo: jobs.Repo{ID: 3, FullName: "acme/cli"}, InstallationID: 7},
				},
			},
		},
		{
			name: "suspended",
			ev:   jobs.InstallationEvent{Event: "installation", Action: "suspend", Installation: acme(true)},
			want: snapshot{
				Installations: []sqlite.Installation{{Installation: acme(true)}},
				Repos: []sqlite.Repository{
					{Repo: jobs.Repo{ID: 1, FullName: "acme/api", Private: true}, InstallationID: 7},
					{Repo: jobs.Repo{ID: 3, FullName: "acme/cli"}, InstallationID: 7},
				},
			},
		},
		{
			name: "unsuspended",
			ev:   jobs.InstallationEvent{Event: "installation", Action: "unsuspend", Installation: acme(false)},
			want: snapshot{
				Installations: []sqlite.Installation{{Installation: acme(false)}},
				Repos: []sqlite.Repository{
					{Repo: jobs.Repo{ID: 1, FullName: "acme/api", Private: true}, InstallationID: 7},
					{Repo: jobs.Repo{ID: 3, FullName: "acme/cli"}, InstallationID: 7},
				},
			},
		},
		{
			name: "deleted",
			ev:   jobs.InstallationEvent{Event: "installation", Action: "deleted", Installation: acme(false)},
			want: snapshot{Installations: []sqlite.Installation{{Installation: acme(false), Deleted: true}}},
		},
	}
	for _, st := range steps {
		if err := apply(t, s, h, st.ev); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, snap(t, s)); diff != "" {
			t.Errorf("%s: inventory mismatch (-want +got):\n%s", st.name, diff)
		}
	}
}

// TestEventHandlerGitHubExamples applies every documented installation
// payload through Translate and the handler.
func TestEventHandlerGitHubExamples(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testenv.RequireSharedTestdata(t), "webhooks", "examples")
	files, _ := filepath.Glob(filepath.Join(dir, "installation*", "*.json"))
	if len(files) == 0 {
		t.Fatalf("no installation examples under %s", dir)
	}
	s := openStore(t)
	h := inventory.EventHandler(s, now, nil)
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := webhook.Translate("id", filepath.Base(filepath.Dir(f)), body, t0, webhook.TranslateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ev := d.Jobs[0].(jobs.InstallationEvent)
		if err := apply(t, s, h, ev); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	got := snap(t, s)
	if len(got.Installations) == 0 {
		t.Error("no installation recorded from the examples")
	}
}

type fakeLister struct {
	installs []jobs.Installation
	repos    map[int64][]jobs.Repo
	failOn   int64
}

func (f fakeLister) ListInstallations(context.Context) ([]jobs.Installation, error) {
	return f.installs, nil
}

func (f fakeLister) ListRepos(_ context.Context, id int64) ([]jobs.Repo, error) {
	if id == f.failOn {
		return nil, errors.New("GitHub 502")
	}
	return f.repos[id], nil
}

func TestSyncFailureChangesNothing(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	if err := apply(t, s, inventory.EventHandler(s, now, nil), jobs.InstallationEvent{Event: "installation", Action: "created",
		Installation: acme(false), Repos: []jobs.Repo{{ID: 1, FullName: "acme/api"}}}); err != nil {
		t.Fatal(err)
	}
	before := snap(t, s)
	lister := fakeLister{
		installs: []jobs.Installation{{ID: 8, Account: "b"}, {ID: 9, Account: "c"}},
		repos:    map[int64][]jobs.Repo{8: {{ID: 5, FullName: "b/x"}}},
		failOn:   9,
	}
	if err := apply(t, s, inventory.SyncHandler(s, lister, now), jobs.InstallationSync{}); err == nil {
		t.Fatal("want the listing error")
	}
	if diff := cmp.Diff(before, snap(t, s)); diff != "" {
		t.Errorf("a failed sync changed the inventory (-before +after):\n%s", diff)
	}
}

// TestSyncThroughQueueAgainstFakeGitHub runs the start-up sync as a real job
// against the fake GitHub, through a 502 and a secondary rate limit, with
// more repositories than one page holds.
func TestSyncThroughQueueAgainstFakeGitHub(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(t)
	inst := gh.AddInstallation(ghfake.Installation{ID: 42, Account: "acme", AccountType: "Organization"})
	const nRepos = 150
	for i := range nRepos {
		gh.AddRepo(inst.ID, ghfake.Repo{ID: int64(1000 + i), Owner: "acme", Name: fmt.Sprintf("r%03d", i)})
	}
	suspended := gh.AddInstallation(ghfake.Installation{ID: 43, Account: "paused", AccountType: "User"})
	gh.SuspendInstallation(suspended.ID)
	// Three of each: a read is tried three times before its job fails.
	gh.FailNext(ghfake.MatchRoute("GET /app/installations"), 3, http.StatusBadGateway, nil, `{"message":"Server Error"}`)
	gh.FailNext(ghfake.MatchRoute("GET /installation/repositories"), 3, http.StatusForbidden,
		http.Header{"Retry-After": {"1"}}, ghfake.SecondaryRateLimitBody)

	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()}, ghapp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	w := queue.NewWorkers()
	queue.Add(w, inventory.SyncHandler(s, inventory.GitHubLister{Clients: apps}, now))
	reg := prometheus.NewRegistry()
	q, err := queue.New(queue.NewBackend(riversqlite.New(s.SQL()), s), w, queue.Config{Workers: 2, Classify: ghapp.RetryDelay, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q.Stop(ctx)
	})
	if err := q.Insert(t.Context(), jobs.InstallationSync{Reason: "test"}, true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := snap(t, s)
		if len(got.Repos) == nRepos && len(got.Installations) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not finish: %d installations, %d repositories", len(got.Installations), len(got.Repos))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Job events reach the metrics asynchronously.
	want := map[string]float64{"retry": 1, "snoozed": 1, "completed": 1}
	var outcomes map[string]float64
	for range 100 {
		outcomes = testenv.CounterBy(t, reg, "changegate_jobs_total", "outcome")
		if cmp.Equal(want, outcomes) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("job outcomes (-want +got):\n%s", cmp.Diff(want, outcomes))
}

// hookLister is a fakeLister that runs during its repository listing, as
// a webhook applied while GitHub's list is being read.
type hookLister struct {
	fakeLister
	during func()
}

func (h hookLister) ListRepos(ctx context.Context, id int64) ([]jobs.Repo, error) {
	h.during()
	return h.fakeLister.ListRepos(ctx, id)
}

// TestSyncKeepsWhatAWebhookAddedMeanwhile: a repository added by a webhook
// applied while the sync read GitHub's list (which could not hold it yet)
// is kept; one the list no longer holds, recorded before the listing, goes.
func TestSyncKeepsWhatAWebhookAddedMeanwhile(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	clock := t0
	tick := func() time.Time { clock = clock.Add(time.Second); return clock }
	if err := apply(t, s, inventory.EventHandler(s, tick, nil), jobs.InstallationEvent{Event: "installation", Action: "created",
		Installation: acme(false), Repos: []jobs.Repo{{ID: 1, FullName: "acme/api"}, {ID: 2, FullName: "acme/old"}}}); err != nil {
		t.Fatal(err)
	}
	lister := hookLister{
		fakeLister: fakeLister{installs: []jobs.Installation{acme(false)}, repos: map[int64][]jobs.Repo{acme(false).ID: {{ID: 1, FullName: "acme/api"}}}},
		during: func() {
			if err := apply(t, s, inventory.EventHandler(s, tick, nil), jobs.InstallationEvent{Event: "installation_repositories", Action: "added",
				Installation: acme(false), Added: []jobs.Repo{{ID: 3, FullName: "acme/new"}}}); err != nil {
				t.Fatal(err)
			}
		},
	}
	if err := apply(t, s, inventory.SyncHandler(s, lister, tick), jobs.InstallationSync{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range snap(t, s).Repos {
		names = append(names, r.FullName)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"acme/api", "acme/new"}, names); diff != "" {
		t.Errorf("repositories after the sync (-want +got):\n%s", diff)
	}
}
