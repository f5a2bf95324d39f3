package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Completeness is the rest of a store, with the deliveries its sweep
// checks against.
type Completeness interface {
	store.Deliveries
	store.Completeness
}

// RunCompleteness runs the suite of the rest of a store.
func RunCompleteness(t *testing.T, open func(t *testing.T) Completeness) {
	t.Run("gates and reviews", func(t *testing.T) { t.Parallel(); testGates(t, open(t)) })
	t.Run("sweep and reconciliation", func(t *testing.T) { t.Parallel(); testSweep(t, open(t)) })
	t.Run("controls and server state", func(t *testing.T) { t.Parallel(); testControls(t, open(t)) })
}

func ctx(t *testing.T) context.Context { return t.Context() }

func testGates(t *testing.T, s Completeness) {
	in := func(fn func(tx jobs.Tx) error) {
		t.Helper()
		if err := s.InTx(ctx(t), fn); err != nil {
			t.Fatal(err)
		}
	}
	first := change.GateAnswer{DeploymentID: 7, Environment: "production", SHA: "abc", State: "approved", Comment: "ok",
		Pulls: []int{3, 5}, DeliveryID: "d1", AnsweredAt: t0}
	second := first
	second.State, second.DeliveryID = "rejected", "d2"
	in(func(tx jobs.Tx) error { return s.PutGate(ctx(t), tx, "acme/api", first) })
	in(func(tx jobs.Tx) error { return s.PutGate(ctx(t), tx, "acme/api", second) })
	got, ok, err := s.Gate(ctx(t), "acme/api", 7, "production")
	if err != nil || !ok || got.State != "approved" || got.DeliveryID != "d1" || !slices.Equal(got.Pulls, first.Pulls) || !got.AnsweredAt.Equal(t0) {
		t.Errorf("gate: %+v %v %v, want the first answer", got, ok, err)
	}
	if _, ok, err := s.Gate(ctx(t), "acme/api", 7, "staging"); ok || err != nil {
		t.Errorf("gate of another environment: %v %v", ok, err)
	}

	older := change.MergeGroup{HeadSHA: "g1", HeadRef: "gh-readonly-queue/main/pr-3", BaseSHA: "b1", Pulls: []int{3, 4}}
	newer := change.MergeGroup{HeadSHA: "g2", HeadRef: "gh-readonly-queue/main/pr-4", BaseSHA: "b2", Pulls: []int{4}}
	in(func(tx jobs.Tx) error { return s.PutMergeGroup(ctx(t), tx, "acme/api", older) })
	in(func(tx jobs.Tx) error { return s.PutMergeGroup(ctx(t), tx, "acme/api", newer) })
	for _, c := range []struct {
		pr   int
		sha  string
		want string
	}{{4, "g1", "g1"}, {4, "zzz", "g2"}, {3, "zzz", "g1"}} {
		if g, ok, err := s.MergeGroupOf(ctx(t), "acme/api", c.pr, c.sha); err != nil || !ok || g.HeadSHA != c.want {
			t.Errorf("merge group of #%d at %s: %+v %v %v, want %s", c.pr, c.sha, g, ok, err, c.want)
		}
	}
	if g, _, _ := s.MergeGroupOf(ctx(t), "acme/api", 3, "g1"); !slices.Equal(g.Pulls, []int{3, 4}) || g.BaseSHA != "b1" {
		t.Errorf("merge group of #3: %+v", g)
	}

	reviews := []change.DeploymentReview{
		{Environment: "production", State: "approved", Reviewer: "dave", Comment: "go", At: t0.Add(time.Minute)},
		{Environment: "production", State: "rejected", Reviewer: "erin", Comment: "stop", At: t0},
	}
	for i, r := range reviews {
		in(func(tx jobs.Tx) error {
			return s.PutDeploymentReview(ctx(t), tx, "acme/api", "abc", []string{"r1", "r2"}[i], r)
		})
	}
	in(func(tx jobs.Tx) error { return s.PutDeploymentReview(ctx(t), tx, "acme/api", "abc", "r1", reviews[1]) }) // redelivered
	got2, err := s.DeploymentReviews(ctx(t), "acme/api", "abc", "production")
	if err != nil || len(got2) != 2 || got2[0].Reviewer != "erin" || got2[1].Reviewer != "dave" || !got2[1].At.Equal(reviews[0].At) {
		t.Errorf("deployment reviews: %+v %v, want erin then dave", got2, err)
	}
}

func testSweep(t *testing.T, s Completeness) {
	if err := s.InTx(ctx(t), func(tx jobs.Tx) error {
		_, err := s.InsertDeliveries(ctx(t), tx, []store.Delivery{delivery("known-1", 1), delivery("known-2", 0)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.KnownDeliveries(ctx(t), []string{"known-1", "lost", "known-2"}); err != nil || !maps.Equal(got, map[string]bool{"known-1": true, "known-2": true}) {
		t.Errorf("known deliveries: %v %v", got, err)
	}
	if c, err := s.SweepCursor(ctx(t)); err != nil || c != 0 {
		t.Errorf("cursor before any sweep: %d %v", c, err)
	}
	for _, c := range []int64{500, 0, 300} { // 0 keeps it; a lower one does not move it back
		if err := s.InTx(ctx(t), func(tx jobs.Tx) error {
			return s.RecordSweep(ctx(t), tx, c, []store.Redelivery{{GUID: "g-1", DeliveryID: 11, Event: "push"}}, t0)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := s.SweepCursor(ctx(t)); err != nil || c != 500 {
		t.Errorf("cursor: %d %v, want 500", c, err)
	}
	if got, err := s.Redelivered(ctx(t), []string{"g-1", "g-2"}); err != nil || !maps.Equal(got, map[string]bool{"g-1": true}) {
		t.Errorf("redelivered: %v %v", got, err)
	}

	if _, _, ok, err := s.ReconcilePoint(ctx(t), "acme/api", "main"); ok || err != nil {
		t.Errorf("point before any run: %v %v", ok, err)
	}
	for _, sha := range []string{"c1", "c2"} {
		if err := s.SetReconcilePoint(ctx(t), "acme/api", "main", sha, t0); err != nil {
			t.Fatal(err)
		}
	}
	if sha, at, ok, err := s.ReconcilePoint(ctx(t), "acme/api", "main"); err != nil || !ok || sha != "c2" || !at.Equal(t0) {
		t.Errorf("point: %s %v %v %v", sha, at, ok, err)
	}
	if err := s.MarkPushed(ctx(t), "acme/api", "cr-9", []string{"p1", "p2", "p1"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RecordedCommits(ctx(t), "acme/api", []string{"p1", "p2", "p3"}); err != nil || !maps.Equal(got, map[string]bool{"p1": true, "p2": true}) {
		t.Errorf("recorded commits: %v %v", got, err)
	}
	if got, err := s.RecordedCommits(ctx(t), "acme/web", []string{"p1"}); err != nil || len(got) != 0 {
		t.Errorf("recorded commits of another repository: %v %v", got, err)
	}
}

func testControls(t *testing.T, s Completeness) {
	a := store.ControlState{Repo: "acme/api", Target: "branch:main", Enforced: true, Detail: "ruleset 7", Since: t0, CheckedAt: t0}
	b := store.ControlState{Repo: "acme/api", Target: "environment:production", Detail: "no rule", Since: t0, CheckedAt: t0, RecordID: "cr-1"}
	for _, c := range []store.ControlState{b, a} {
		if err := s.PutControlState(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	a.Enforced, a.CheckedAt = false, t0.Add(time.Hour)
	if err := s.PutControlState(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.ControlState(ctx(t), "acme/api", "branch:main")
	if err != nil || !ok || got.Enforced || !got.CheckedAt.Equal(a.CheckedAt) || !got.Since.Equal(t0) || got.Detail != "ruleset 7" {
		t.Errorf("control state: %+v %v %v", got, ok, err)
	}
	all, err := s.Coverage(ctx(t))
	if err != nil || len(all) != 2 || all[0].Target != "branch:main" || all[1].RecordID != "cr-1" {
		t.Errorf("coverage: %+v %v", all, err)
	}
	for _, c := range []struct{ value, old string }{{"a", ""}, {"b", "a"}, {"b", "b"}} {
		if old, err := s.SwapServerState(ctx(t), "credentials", c.value); err != nil || old != c.old {
			t.Errorf("swap to %s: %q %v, want %q", c.value, old, err, c.old)
		}
	}
}
