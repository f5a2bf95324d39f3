package ghfake_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/ghfake"
)

const crSHA = "0123456789abcdef0123456789abcdef01234567"

func checkRunFixture(t *testing.T) (*ghfake.Server, *github.Client) {
	t.Helper()
	s := ghfake.New(t, ghfake.WithAppID(77))
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "payments"})
	return s, newClient(t, s, installationTransport(t, s, in.ID))
}

func statusOf(err error) int {
	var e *github.ErrorResponse
	if errors.As(err, &e) && e.Response != nil {
		return e.Response.StatusCode
	}
	return 0
}

func TestCheckRunCreateGetUpdate(t *testing.T) {
	t.Parallel()
	s, c := checkRunFixture(t)
	ctx := t.Context()
	cr, resp, err := c.Checks.CreateCheckRun(ctx, "acme", "payments", github.CreateCheckRunOptions{
		Name: "changegate", HeadSHA: crSHA, Status: github.String("in_progress"),
		ExternalID: github.String("acme/payments#1"),
		Output:     &github.CheckRunOutput{Title: github.String("Waiting"), Summary: github.String("Jira is down"), Text: github.String("details")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("create: %d, want 201", resp.StatusCode)
	}
	if cr.GetApp().GetID() != 77 || cr.GetApp().GetSlug() != "changegate" || cr.GetStatus() != "in_progress" ||
		cr.Conclusion != nil || cr.CompletedAt != nil || cr.GetOutput().GetTitle() != "Waiting" || cr.GetExternalID() != "acme/payments#1" {
		t.Errorf("created run: %+v", cr)
	}

	up, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "payments", cr.GetID(), github.UpdateCheckRunOptions{
		Name: "changegate", Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String("4 of 4 controls met"), Summary: github.String("all good")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A conclusion completes the run; text left out is kept.
	if up.GetStatus() != "completed" || up.GetConclusion() != "success" || up.CompletedAt == nil || up.GetOutput().GetText() != "details" {
		t.Errorf("updated run: %+v", up)
	}
	got, _, err := c.Checks.GetCheckRun(ctx, "acme", "payments", cr.GetID())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetOutput().GetSummary() != "all good" || got.GetID() != cr.GetID() {
		t.Errorf("get: %+v", got)
	}

	// Back to in_progress: GitHub keeps the conclusion.
	if _, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "payments", cr.GetID(), github.UpdateCheckRunOptions{Name: "changegate", Status: github.String("in_progress")}); err != nil {
		t.Fatal(err)
	}
	out, ok := s.CheckRunOutput("acme", "payments", cr.GetID())
	if !ok || out.Status != "in_progress" || out.Conclusion != "success" {
		t.Errorf("after in_progress: %+v", out)
	}

	var seq []string
	for _, w := range s.CheckRunWrites("acme", "payments") {
		seq = append(seq, w.Method+" "+w.Status+"/"+w.Conclusion)
	}
	if diff := cmp.Diff([]string{"POST in_progress/", "PATCH completed/success", "PATCH in_progress/success"}, seq); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if w := s.CheckRunWrites("acme", "payments")[0]; !strings.Contains(string(w.Body), `"head_sha":"`+crSHA+`"`) {
		t.Errorf("body not recorded: %s", w.Body)
	}
	if runs := s.CheckRuns("acme", "payments", crSHA); len(runs) != 1 || runs[0].AppSlug != "changegate" {
		t.Errorf("runs: %+v", runs)
	}
}

func TestCheckRunValidation(t *testing.T) {
	t.Parallel()
	s, c := checkRunFixture(t)
	ctx := t.Context()
	long := strings.Repeat("é", 65536)
	tests := []struct {
		name string
		opts github.CreateCheckRunOptions
		want int
	}{
		{"no name", github.CreateCheckRunOptions{HeadSHA: crSHA}, 422},
		{"no head sha", github.CreateCheckRunOptions{Name: "changegate"}, 422},
		{"head is not a commit", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: "main"}, 422},
		{"completed without conclusion", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Status: github.String("completed")}, 422},
		{"unknown status", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Status: github.String("done")}, 422},
		{"stale cannot be set", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Conclusion: github.String("stale")}, 422},
		{"output without summary", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Output: &github.CheckRunOutput{Title: github.String("t")}}, 422},
		{"output without title", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Output: &github.CheckRunOutput{Summary: github.String("s")}}, 422},
		{"summary too long", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String(long)}}, 422},
		{"text too long", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Text: github.String(long)}}, 422},
		{"summary at the limit", github.CreateCheckRunOptions{Name: "changegate", HeadSHA: crSHA, Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String(long[2:])}}, 201},
	}
	for _, tt := range tests {
		_, resp, err := c.Checks.CreateCheckRun(ctx, "acme", "payments", tt.opts)
		got := statusOf(err)
		if err == nil {
			got = resp.StatusCode
		}
		if got != tt.want {
			t.Errorf("%s: %d (%v), want %d", tt.name, got, err, tt.want)
		}
	}
	if n := len(s.CheckRunWrites("acme", "payments")); n != 1 {
		t.Errorf("%d writes recorded, want only the accepted one", n)
	}
	if _, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "payments", 999999, github.UpdateCheckRunOptions{Name: "changegate"}); statusOf(err) != 404 {
		t.Errorf("update of an unknown run: %v", err)
	}
	other := s.AddCheckRun("acme", "payments", ghfake.CheckRun{Name: "ci", HeadSHA: crSHA, Conclusion: "success", AppSlug: "github-actions"})
	if _, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "payments", other.ID, github.UpdateCheckRunOptions{Name: "ci", Conclusion: github.String("failure")}); statusOf(err) != 403 {
		t.Errorf("update of another App's run: %v", err)
	}
	if _, _, err := c.Checks.GetCheckRun(ctx, "acme", "elsewhere", other.ID); statusOf(err) != 404 {
		t.Errorf("run in a repository the installation cannot see: %v", err)
	}
}

func TestCheckRunListForRef(t *testing.T) {
	t.Parallel()
	s, c := checkRunFixture(t)
	ctx := t.Context()
	first := s.AddCheckRun("acme", "payments", ghfake.CheckRun{Name: "changegate", HeadSHA: crSHA, Conclusion: "success"})
	second := s.AddCheckRun("acme", "payments", ghfake.CheckRun{Name: "changegate", HeadSHA: crSHA, Status: "in_progress"})
	s.AddCheckRun("acme", "payments", ghfake.CheckRun{Name: "changegate", HeadSHA: crSHA, Conclusion: "success", AppSlug: "impostor"})
	s.AddCheckRun("acme", "payments", ghfake.CheckRun{Name: "deploy-staging", HeadSHA: crSHA, Conclusion: "success", AppSlug: "argo-cd"})
	s.AddCheckRun("acme", "payments", ghfake.CheckRun{Name: "changegate", HeadSHA: strings.Repeat("f", 40), Conclusion: "failure"})

	ids := func(opts *github.ListCheckRunsOptions) (int, []int64) {
		t.Helper()
		res, _, err := c.Checks.ListCheckRunsForRef(ctx, "acme", "payments", crSHA, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, cr := range res.CheckRuns {
			out = append(out, cr.GetID())
		}
		return res.GetTotal(), out
	}
	if n, got := ids(&github.ListCheckRunsOptions{CheckName: github.String("changegate"), AppID: github.Int64(77)}); n != 1 || !cmp.Equal(got, []int64{second.ID}) {
		t.Errorf("latest of ours: total %d, %v; want the newest, %d", n, got, second.ID)
	}
	if n, got := ids(&github.ListCheckRunsOptions{CheckName: github.String("changegate"), AppID: github.Int64(77), Filter: github.String("all")}); n != 2 || !cmp.Equal(got, []int64{second.ID, first.ID}) {
		t.Errorf("all of ours: total %d, %v", n, got)
	}
	if n, _ := ids(&github.ListCheckRunsOptions{CheckName: github.String("changegate")}); n != 2 {
		t.Errorf("changegate by any App: %d, want 2 (ours and the impostor's)", n)
	}
	if n, _ := ids(&github.ListCheckRunsOptions{Status: github.String("completed")}); n != 2 {
		t.Errorf("completed: %d, want 2", n)
	}

	// Paging: total_count is the whole list; Link leads on.
	res, resp, err := c.Checks.ListCheckRunsForRef(ctx, "acme", "payments", crSHA, &github.ListCheckRunsOptions{ListOptions: github.ListOptions{PerPage: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetTotal() != 3 || len(res.CheckRuns) != 2 || resp.NextPage != 2 {
		t.Errorf("page 1: total %d, %d runs, next %d", res.GetTotal(), len(res.CheckRuns), resp.NextPage)
	}
	if _, _, err := c.Checks.ListCheckRunsForRef(ctx, "acme", "payments", crSHA, &github.ListCheckRunsOptions{Filter: github.String("newest")}); statusOf(err) != 422 {
		t.Errorf("bad filter: %v", err)
	}
	if got, ok := s.LatestCheckRun("acme", "payments", crSHA, "changegate"); !ok || got.AppSlug != "impostor" {
		t.Errorf("latest changegate run by any App: %+v", got)
	}
}
