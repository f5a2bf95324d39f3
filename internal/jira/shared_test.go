package jira_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jira"
	"github.com/changegate/changegate/internal/testenv"
)

// readBody reads a response body from the shared test material, unwrapping
// the {_source, example} envelope of the OpenAPI examples.
func readBody(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if ex, ok := m["example"].(map[string]any); ok && m["_source"] != nil {
		return ex
	}
	return m
}

// serveIssue answers GET /rest/api/2/issue/{key} with body. Like Jira, it
// keeps only the fields the request names, unless raw.
func serveIssue(t *testing.T, body map[string]any, raw bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/rest/api/2/issue/") {
			http.NotFound(w, r)
			return
		}
		out := body
		if fields, ok := body["fields"].(map[string]any); ok && !raw {
			want := map[string]bool{}
			for _, f := range strings.Split(r.URL.Query().Get("fields"), ",") {
				want[f] = true
			}
			kept := map[string]any{}
			for k, v := range fields {
				if want[k] {
					kept[k] = v
				}
			}
			out = map[string]any{}
			for k, v := range body {
				out[k] = v
			}
			out["fields"] = kept
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRealIssueBodies maps the issue bodies Atlassian documents and go-jira
// tests with. None of them carries every field we read; what is absent must
// map to empty values, never to a different ticket or an error.
func TestRealIssueBodies(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testenv.RequireSharedTestdata(t), "jira")
	sprint := func(t *testing.T) map[string]any {
		m := readBody(t, filepath.Join(dir, "go-jira/mock-data/issues_in_sprint.json"))
		return m["issues"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name   string
		body   func(*testing.T) map[string]any
		raw    bool // serve every field, ignoring ?fields=
		key    string
		want   *change.Ticket // nil: unreachable
		errHas string
	}{
		{
			// Cloud v3 example: key ED-1 in project EX, so the project comes
			// from the issue, not from the key.
			name: "openapi getIssue (v3)",
			body: func(t *testing.T) map[string]any {
				return readBody(t, filepath.Join(dir, "openapi-examples/getIssue.get.200.response.json"))
			},
			key:  "ED-1",
			want: &change.Ticket{Key: "ED-1", Project: "EX"},
		},
		{
			// Unfiltered, the v3 example does not fit go-jira's v2 types
			// (description is rich text, comment a list, updated a number):
			// that is why we ask for our fields only. Should Jira ignore the
			// filter, the lookup fails closed.
			name: "openapi getIssue (v3) with every field",
			body: func(t *testing.T) map[string]any {
				return readBody(t, filepath.Join(dir, "openapi-examples/getIssue.get.200.response.json"))
			},
			raw: true, key: "ED-1", errHas: "malformed",
		},
		{
			name: "go-jira issue_get",
			body: func(t *testing.T) map[string]any {
				return readBody(t, filepath.Join(dir, "go-jira/inline-test-responses/issue_get.json"))
			},
			key:  "EX-1",
			want: &change.Ticket{Key: "EX-1", Project: "EX"},
		},
		{
			name: "go-jira issue_get with every field",
			body: func(t *testing.T) map[string]any {
				return readBody(t, filepath.Join(dir, "go-jira/inline-test-responses/issue_get_expand_renderedfields.json"))
			},
			raw: true, key: "EX-1",
			want: &change.Ticket{Key: "EX-1", Project: "EX"},
		},
		{
			name: "go-jira issue_get_custom_field_option with every field",
			body: func(t *testing.T) map[string]any {
				return readBody(t, filepath.Join(dir, "go-jira/inline-test-responses/issue_get_custom_field_option.json"))
			},
			raw: true, key: "EX-1",
			want: &change.Ticket{Key: "EX-1", Project: "EX"},
		},
		{
			name: "go-jira sprint issue (Cloud v2)",
			body: sprint, key: "AR-86",
			want: &change.Ticket{Key: "AR-86", Project: "AR", Type: "Task", Status: "Ready",
				Created: time.Date(2015, 12, 2, 15, 39, 15, 0, time.UTC)},
		},
		{
			name: "go-jira sprint issue with every field",
			body: sprint, raw: true, key: "AR-86",
			want: &change.Ticket{Key: "AR-86", Project: "AR", Type: "Task", Status: "Ready",
				Created: time.Date(2015, 12, 2, 15, 39, 15, 0, time.UTC)},
		},
		{
			// Asked for fields, got none: not an issue we can judge.
			name: "go-jira issue_get_expand_changelog (no fields)",
			body: func(t *testing.T) map[string]any {
				return readBody(t, filepath.Join(dir, "go-jira/inline-test-responses/issue_get_expand_changelog.json"))
			},
			key: "EX-1", errHas: "malformed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := serveIssue(t, tc.body(t), tc.raw)
			c, err := jira.New(jira.Config{URL: url, User: "bot@example.com", Token: "t"}, jira.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := c.Lookup(t.Context(), tc.key, jira.LookupOptions{})
			if tc.want == nil {
				if got.Result != change.LookupUnreachable || !strings.Contains(got.Error, tc.errHas) {
					t.Fatalf("Lookup = %+v, want unreachable with %q", got, tc.errHas)
				}
				return
			}
			tc.want.URL = url + "/browse/" + tc.want.Key
			want := change.TicketLookup{Key: tc.key, Result: change.LookupFound, Ticket: tc.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Lookup (-want +got):\n%s", diff)
			}
		})
	}
}
