package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/jobs"
)

func TestTranslateTriggers(t *testing.T) {
	t.Parallel()
	const (
		appID = 99
		repo  = `"repository":{"full_name":"acme/api"},"installation":{"id":7}`
	)
	evalPR := func(n int, reason string) []jobs.Job {
		return []jobs.Job{jobs.EvaluatePR{DeliveryID: "d", Installation: 7, Repo: "acme/api", Number: n, Reason: reason, QueuedAt: t0}}
	}
	evalSHA := func(sha, reason string, trigger ...string) []jobs.Job {
		j := jobs.EvaluateSHA{DeliveryID: "d", Installation: 7, Repo: "acme/api", SHA: sha, Reason: reason, QueuedAt: t0}
		if len(trigger) > 0 {
			j.Trigger = trigger[0]
		}
		if len(trigger) > 1 {
			j.Name = trigger[1]
		}
		if len(trigger) > 2 {
			j.Environment = trigger[2]
		}
		return []jobs.Job{j}
	}
	tests := []struct {
		name, event, body string
		want              []jobs.Job
	}{
		{"pr opened", "pull_request", `{"action":"opened","number":5,"pull_request":{"number":5,"head":{"sha":"h"}},` + repo + `}`, evalPR(5, "pull_request.opened")},
		{"pr synchronize", "pull_request", `{"action":"synchronize","pull_request":{"number":5},` + repo + `}`, evalPR(5, "pull_request.synchronize")},
		{"pr labeled", "pull_request", `{"action":"labeled","pull_request":{"number":5},` + repo + `}`, evalPR(5, "pull_request.labeled")},
		{"pr closed", "pull_request", `{"action":"closed","pull_request":{"number":5},` + repo + `}`, evalPR(5, "pull_request.closed")},
		{"pr assigned is irrelevant", "pull_request", `{"action":"assigned","pull_request":{"number":5},` + repo + `}`, nil},
		{"review submitted", "pull_request_review", `{"action":"submitted","pull_request":{"number":5},` + repo + `}`, evalPR(5, "pull_request_review.submitted")},
		{"review dismissed", "pull_request_review", `{"action":"dismissed","pull_request":{"number":5},` + repo + `}`, evalPR(5, "pull_request_review.dismissed")},
		{"ci check completed", "check_run", `{"action":"completed","check_run":{"name":"ci","head_sha":"abc","app":{"id":1}},` + repo + `}`, evalSHA("abc", "check_run.completed", "check_run", "ci")},
		{"own check completed is ignored", "check_run", `{"action":"completed","check_run":{"name":"changegate","head_sha":"abc","app":{"id":99}},` + repo + `}`, nil},
		{"re-run button", "check_run", `{"action":"rerequested","check_run":{"name":"changegate","head_sha":"abc","app":{"id":99},"pull_requests":[{"number":5},{"number":6}]},` + repo + `}`,
			append(evalPR(5, "check_run.rerequested"), evalPR(6, "check_run.rerequested")...)},
		{"re-run of another check is ignored", "check_run", `{"action":"rerequested","check_run":{"name":"ci","head_sha":"abc","app":{"id":1}},` + repo + `}`, nil},
		{"suite completed", "check_suite", `{"action":"completed","check_suite":{"head_sha":"abc","app":{"id":1}},` + repo + `}`, evalSHA("abc", "check_suite.completed", "check_suite")},
		{"suite re-requested", "check_suite", `{"action":"rerequested","check_suite":{"head_sha":"abc","app":{"id":1}},` + repo + `}`, evalSHA("abc", "check_suite.rerequested")},
		{"own suite is ignored", "check_suite", `{"action":"completed","check_suite":{"head_sha":"abc","app":{"id":99}},` + repo + `}`, nil},
		{"status success", "status", `{"sha":"abc","state":"success","context":"ci/staging",` + repo + `}`, evalSHA("abc", "status", "status", "ci/staging")},
		{"status pending is ignored", "status", `{"sha":"abc","state":"pending",` + repo + `}`, nil},
		{"deployment status", "deployment_status", `{"action":"created","deployment":{"sha":"abc","environment":"staging"},` + repo + `}`, evalSHA("abc", "deployment_status.created", "deployment_status", "", "staging")},
		{"protection rule requested", "deployment_protection_rule", `{"action":"requested","environment":"production","deployment_callback_url":"https://api.github.com/repos/acme/api/actions/runs/5/deployment_protection_rule","deployment":{"id":9,"sha":"abc","ref":"main","environment":"production"},` + repo + `}`,
			[]jobs.Job{jobs.DeploymentGate{DeliveryID: "d", Installation: 7, Repo: "acme/api", Environment: "production", SHA: "abc", Ref: "main", DeploymentID: 9,
				CallbackURL: "https://api.github.com/repos/acme/api/actions/runs/5/deployment_protection_rule", QueuedAt: t0}}},
		{"merge group checks requested", "merge_group", `{"action":"checks_requested","merge_group":{"head_sha":"abc","head_ref":"refs/heads/gh-readonly-queue/main/pr-7-` + strings.Repeat("9", 40) + `","base_sha":"b0","base_ref":"refs/heads/main"},` + repo + `}`,
			[]jobs.Job{jobs.MergeGroup{DeliveryID: "d", Installation: 7, Repo: "acme/api", HeadSHA: "abc", HeadRef: "refs/heads/gh-readonly-queue/main/pr-7-" + strings.Repeat("9", 40), BaseSHA: "b0", BaseRef: "main", QueuedAt: t0}}},
		{"deployment review approved", "deployment_review", `{"action":"approved","approver":{"login":"olivia"},"comment":"ship it","since":"2026-03-01T10:00:00Z","workflow_run":{"id":9,"head_sha":"abc"},"workflow_job_runs":[{"id":1,"environment":"production"},{"id":2,"environment":"production"}],` + repo + `}`,
			[]jobs.Job{jobs.DeploymentReview{DeliveryID: "d", Installation: 7, Repo: "acme/api", SHA: "abc", Environments: []string{"production"}, State: "approved", Reviewer: "olivia", Comment: "ship it", At: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), QueuedAt: t0}}},
		{"deployment review requested", "deployment_review", `{"action":"requested","workflow_run":{"id":9,"head_sha":"abc"},` + repo + `}`, nil},
		{"merge group destroyed", "merge_group", `{"action":"destroyed","reason":"merged","merge_group":{"head_sha":"abc"},` + repo + `}`, nil},
		{"protection rule without a callback", "deployment_protection_rule", `{"action":"requested","environment":"production","deployment":{"id":9,"sha":"abc"},` + repo + `}`, nil},
		{"production deployment succeeded", "deployment_status", `{"action":"created","deployment_status":{"state":"success"},"deployment":{"id":9,"sha":"abc","environment":"production"},` + repo + `}`,
			append(evalSHA("abc", "deployment_status.created", "deployment_status", "", "production"), jobs.ArchiveDeployment{DeliveryID: "d", Installation: 7, Repo: "acme/api", SHA: "abc", Environment: "production", DeploymentID: 9, QueuedAt: t0})},
		{"push to a branch", "push", `{"ref":"refs/heads/main","before":"b0","after":"a1","commits":[{"id":"c1"},{"id":"a1"}],"pusher":{"name":"mallory"},"repository":{"full_name":"acme/api","default_branch":"main"},"installation":{"id":7}}`,
			[]jobs.Job{jobs.ArchivePush{DeliveryID: "d", Installation: 7, Repo: "acme/api", Branch: "main", DefaultBranch: "main", Before: "b0", After: "a1", Commits: []string{"c1", "a1"}, Pusher: "mallory", QueuedAt: t0}}},
		{"branch deleted", "push", `{"ref":"refs/heads/x","deleted":true,"after":"0000000000000000000000000000000000000000",` + repo + `}`, nil},
		{"tag pushed", "push", `{"ref":"refs/tags/v1","after":"a1",` + repo + `}`, nil},
		{"workflow run completed", "workflow_run", `{"action":"completed","workflow_run":{"name":"deploy-staging","head_sha":"abc"},` + repo + `}`, evalSHA("abc", "workflow_run.completed", "workflow_run", "deploy-staging")},
		{"workflow run requested is ignored", "workflow_run", `{"action":"requested","workflow_run":{"head_sha":"abc"},` + repo + `}`, nil},
		{"recheck comment by a member", "issue_comment", `{"action":"created","issue":{"number":5,"pull_request":{}},"comment":{"body":"thanks\n/changegate recheck\n","author_association":"MEMBER"},` + repo + `}`, evalPR(5, "issue_comment.created")},
		{"recheck comment by an outsider", "issue_comment", `{"action":"created","issue":{"number":5,"pull_request":{}},"comment":{"body":"/changegate recheck","author_association":"NONE"},` + repo + `}`, nil},
		{"recheck on an issue", "issue_comment", `{"action":"created","issue":{"number":5},"comment":{"body":"/changegate recheck","author_association":"OWNER"},` + repo + `}`, nil},
		{"other comment", "issue_comment", `{"action":"created","issue":{"number":5,"pull_request":{}},"comment":{"body":"/changegate recheck please","author_association":"OWNER"},` + repo + `}`, nil},
		{"no installation", "pull_request", `{"action":"opened","pull_request":{"number":5},"repository":{"full_name":"acme/api"}}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := Translate("d", tc.event, []byte(tc.body), t0, TranslateOptions{AppID: appID})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, d.Jobs); diff != "" {
				t.Errorf("jobs (-want +got):\n%s", diff)
			}
		})
	}
}
