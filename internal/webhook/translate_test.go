package webhook

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/testenv"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestTranslate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event string
		body  string
		want  jobs.Delivery
	}{
		{
			name:  "installation created lists its repositories",
			event: "installation",
			body: `{"action":"created","installation":{"id":7,"account":{"login":"acme","type":"Organization"},"repository_selection":"selected"},
				"repositories":[{"id":1,"full_name":"acme/api","private":true},{"id":2,"full_name":"acme/web"}]}`,
			want: jobs.Delivery{ID: "d", Source: "github", Event: "installation", Action: "created", InstallationID: 7, ReceivedAt: t0,
				Jobs: []jobs.Job{jobs.InstallationEvent{DeliveryID: "d", Event: "installation", Action: "created",
					Installation: jobs.Installation{ID: 7, Account: "acme", AccountType: "Organization", RepositorySelection: "selected"},
					Repos:        []jobs.Repo{{ID: 1, FullName: "acme/api", Private: true}, {ID: 2, FullName: "acme/web"}}}}},
		},
		{
			name:  "installation suspended",
			event: "installation",
			body:  `{"action":"suspend","installation":{"id":7,"account":{"login":"acme","type":"Organization"},"suspended_at":"2026-01-01T00:00:00Z"}}`,
			want: jobs.Delivery{ID: "d", Source: "github", Event: "installation", Action: "suspend", InstallationID: 7, ReceivedAt: t0,
				Jobs: []jobs.Job{jobs.InstallationEvent{DeliveryID: "d", Event: "installation", Action: "suspend",
					Installation: jobs.Installation{ID: 7, Account: "acme", AccountType: "Organization", Suspended: true}}}},
		},
		{
			name:  "repositories added and removed",
			event: "installation_repositories",
			body: `{"action":"added","installation":{"id":7,"account":{"login":"acme","type":"Organization"}},
				"repositories_added":[{"id":3,"full_name":"acme/new"}],"repositories_removed":[{"id":1,"full_name":"acme/api"}]}`,
			want: jobs.Delivery{ID: "d", Source: "github", Event: "installation_repositories", Action: "added", InstallationID: 7, ReceivedAt: t0,
				Jobs: []jobs.Job{jobs.InstallationEvent{DeliveryID: "d", Event: "installation_repositories", Action: "added",
					Installation: jobs.Installation{ID: 7, Account: "acme", AccountType: "Organization"},
					Added:        []jobs.Repo{{ID: 3, FullName: "acme/new"}}, Removed: []jobs.Repo{{ID: 1, FullName: "acme/api"}}}}},
		},
		{
			name:  "a ruleset change makes the control watch look",
			event: "repository_ruleset",
			body:  `{"action":"edited","repository_ruleset":{"id":1},"repository":{"full_name":"acme/api"},"installation":{"id":7}}`,
			want: jobs.Delivery{ID: "d", Source: "github", Event: "repository_ruleset", Action: "edited", InstallationID: 7, Repo: "acme/api", ReceivedAt: t0,
				Jobs: []jobs.Job{jobs.WatchControls{DeliveryID: "d", Installation: 7, Repo: "acme/api", Reason: "repository_ruleset.edited"}}},
		},
		{
			name:  "pull request carries log attributes and no job yet",
			event: "pull_request",
			body:  `{"action":"opened","installation":{"id":7},"repository":{"full_name":"acme/api"},"pull_request":{"head":{"sha":"abc"}}}`,
			want:  jobs.Delivery{ID: "d", Source: "github", Event: "pull_request", Action: "opened", InstallationID: 7, Repo: "acme/api", SHA: "abc", ReceivedAt: t0},
		},
		{
			name:  "status sha",
			event: "status",
			body:  `{"sha":"def","repository":{"full_name":"acme/api"}}`,
			want:  jobs.Delivery{ID: "d", Source: "github", Event: "status", Repo: "acme/api", SHA: "def", ReceivedAt: t0},
		},
		{
			name:  "unknown event is irrelevant",
			event: "star",
			body:  `{"action":"created"}`,
			want:  jobs.Delivery{ID: "d", Source: "github", Event: "star", Action: "created", ReceivedAt: t0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Translate("d", tc.event, []byte(tc.body), t0, TranslateOptions{AppID: 99})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Translate mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTranslateMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, event, body string }{
		{"not json", "pull_request", `{"action":`},
		{"array", "pull_request", `[]`},
		{"null", "pull_request", `null`},
		{"empty", "pull_request", ``},
		{"wrong type", "pull_request", `{"action":5}`},
		{"installation without account", "installation", `{"action":"created","installation":{"id":1}}`},
		{"installation without id", "installation_repositories", `{"action":"added","installation":{"account":{"login":"a"}}}`},
		{"installation without action", "installation", `{"installation":{"id":1,"account":{"login":"a"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Translate("d", tc.event, []byte(tc.body), t0, TranslateOptions{AppID: 99}); !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// githubExample is one payload GitHub documents, with its event.
type githubExample struct {
	file, event string
	body        []byte
}

// githubExamples reads every payload under ../shared/testdata.
func githubExamples(t *testing.T) []githubExample {
	t.Helper()
	dir := filepath.Join(testenv.RequireSharedTestdata(t), "webhooks", "examples")
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples under %s: %v", dir, err)
	}
	out := make([]githubExample, 0, len(files))
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, githubExample{file: f, event: filepath.Base(filepath.Dir(f)), body: body})
	}
	return out
}

// TestTranslateGitHubExamples runs every payload GitHub documents.
func TestTranslateGitHubExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range githubExamples(t) {
		d, err := Translate("id", ex.event, ex.body, t0, TranslateOptions{})
		if err != nil {
			t.Errorf("%s: %v", ex.file, err)
			continue
		}
		if ex.event == "installation" || ex.event == "installation_repositories" {
			if len(d.Jobs) != 1 || d.InstallationID == 0 {
				t.Errorf("%s: want one installation job, got %+v", ex.file, d)
			}
		}
	}
}

// TestTranslateTeamExamples: GitHub's membership and team examples that
// an App receives (they name the installation) re-evaluate the team's
// pull requests; adding a team to a repository changes no one's
// membership, and a team already deleted has no slug to look up.
func TestTranslateTeamExamples(t *testing.T) {
	t.Parallel()
	want := map[string]bool{
		"membership/removed.with-installation.payload.json": true,
		"team/created.payload.json":                         true,
		"team/deleted.payload.json":                         true,
		"team/edited.payload.json":                          true,
	}
	seen := 0
	for _, ex := range githubExamples(t) {
		if ex.event != "membership" && ex.event != "team" {
			continue
		}
		seen++
		name := ex.event + "/" + filepath.Base(ex.file)
		d, err := Translate("id", ex.event, ex.body, t0, TranslateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !want[name] {
			if len(d.Jobs) != 0 {
				t.Errorf("%s: jobs %+v, want none", name, d.Jobs)
			}
			continue
		}
		tc := jobs.TeamChanged{DeliveryID: "id", Installation: 1, Org: "Octocoders", Team: "github", Reason: ex.event + "." + d.Action, QueuedAt: t0}
		if len(d.Jobs) != 1 || d.Jobs[0] != tc {
			t.Errorf("%s: jobs %+v, want %+v", name, d.Jobs, tc)
		}
	}
	if seen != 9 {
		t.Errorf("%d membership and team examples, want 9", seen)
	}
}

func FuzzTranslate(f *testing.F) {
	f.Add("installation", []byte(`{"action":"created","installation":{"id":1,"account":{"login":"a"}}}`))
	f.Add("pull_request", []byte(`{"action":"opened"}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		d, err := Translate("id", event, body, t0, TranslateOptions{})
		if err == nil && d.ID != "id" {
			t.Fatalf("lost the delivery id")
		}
	})
}
