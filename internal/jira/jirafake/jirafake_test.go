package jirafake_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/jira/jirafake"
	"github.com/changegate/changegate/internal/testenv"
)

type request struct {
	path, user, token, bearer string
}

func get(t *testing.T, f *jirafake.Server, r request) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.URL()+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case r.bearer != "":
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	case r.user != "":
		req.SetBasicAuth(r.user, r.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

func authed(path string) request {
	return request{path: path, user: jirafake.DefaultUser, token: jirafake.DefaultToken}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	cloud := jirafake.New(t)
	cloud404 := jirafake.New(t, jirafake.WithCloudNotFound())
	dc := jirafake.New(t, jirafake.WithBearer("pat"))
	for _, f := range []*jirafake.Server{cloud, cloud404, dc} {
		f.AddIssue(jirafake.Issue{Key: "PAY-1"})
	}
	tests := []struct {
		name string
		f    *jirafake.Server
		req  request
		want int
	}{
		{"cloud basic", cloud, authed("/rest/api/2/issue/PAY-1"), 200},
		{"cloud no auth", cloud, request{path: "/rest/api/2/issue/PAY-1"}, 401},
		{"cloud wrong token", cloud, request{path: "/rest/api/2/issue/PAY-1", user: jirafake.DefaultUser, token: "x"}, 401},
		{"cloud bearer", cloud, request{path: "/rest/api/2/issue/PAY-1", bearer: jirafake.DefaultToken}, 401},
		{"cloud-404 wrong token on issue", cloud404, request{path: "/rest/api/2/issue/PAY-1", user: jirafake.DefaultUser, token: "x"}, 404},
		{"cloud-404 wrong token on myself", cloud404, request{path: "/rest/api/2/myself", user: jirafake.DefaultUser, token: "x"}, 401},
		{"dc bearer", dc, request{path: "/rest/api/2/issue/PAY-1", bearer: "pat"}, 200},
		{"dc basic", dc, request{path: "/rest/api/2/issue/PAY-1", user: "pat", token: "pat"}, 401},
		{"unknown issue", cloud, authed("/rest/api/2/issue/PAY-2"), 404},
		{"not a service desk request", cloud, authed("/rest/servicedeskapi/request/PAY-1/approval"), 404},
		{"unknown group", cloud, authed("/rest/api/2/group/member?groupname=x"), 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, _, _ := get(t, tc.f, tc.req); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFaultsAndCalls(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t)
	f.AddIssue(jirafake.Issue{Key: "PAY-1"})
	f.FailNext(2, http.StatusServiceUnavailable)
	f.FailNextOn("/rest/api/2/myself", 1, http.StatusTooManyRequests)
	var got []int
	for range 3 {
		st, _, _ := get(t, f, authed("/rest/api/2/issue/PAY-1"))
		got = append(got, st)
	}
	st, h, _ := get(t, f, authed("/rest/api/2/myself"))
	got = append(got, st)
	if want := []int{503, 503, 200, 429}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if h.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if n := f.CountCalls("GET", "/rest/api/2/issue/{key}"); n != 3 {
		t.Errorf("CountCalls = %d, want 3", n)
	}
	f.SetStatus("PAY-1", "Done")
	_, _, body := get(t, f, authed("/rest/api/2/issue/PAY-1?fields=status"))
	fields := body["fields"].(map[string]any)
	if len(fields) != 1 || fields["status"].(map[string]any)["name"] != "Done" {
		t.Errorf("fields = %v, want only status Done", fields)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t, jirafake.WithPageSize(2))
	for _, n := range []string{"a", "b", "c"} {
		f.AddGroupMember("g", jirafake.User{AccountID: n})
	}
	var ids []any
	for start := "0"; ; {
		_, _, p := get(t, f, authed("/rest/api/2/group/member?groupname=g&startAt="+start))
		for _, v := range p["values"].([]any) {
			ids = append(ids, v.(map[string]any)["accountId"])
		}
		if p["isLast"] == true {
			break
		}
		start = "2"
	}
	if len(ids) != 3 {
		t.Errorf("members %v", ids)
	}
}

// TestShapesFollowJira compares the fake's answers with Atlassian's
// documented examples and schemas: every key the fake sends must exist
// there, with the same JSON type.
func TestShapesFollowJira(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testenv.RequireSharedTestdata(t), "jira")
	example := func(name string) map[string]any {
		var m struct {
			Example map[string]any `json:"example"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "openapi-examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m.Example
	}
	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "openapi", "jira-cloud-openapi-subset.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	schema := func(name string) map[string]any {
		p := spec.Components.Schemas[name].Properties
		if p == nil {
			t.Fatalf("schema %s absent", name)
		}
		return p
	}

	f := jirafake.New(t)
	reporter := jirafake.User{AccountID: "5b10a2844c20165700ede21g", DisplayName: "Mia Krystof", Email: "mia@example.com"}
	f.AddIssue(jirafake.Issue{Key: "ED-1", Summary: "Main order flow broken", Reporter: reporter,
		Created: time.Date(2022, 10, 6, 7, 32, 47, 0, time.UTC)})

	_, _, me := get(t, f, authed("/rest/api/2/myself"))
	sameShape(t, "myself", me, example("getCurrentUser.get.200.response.json"))

	_, _, is := get(t, f, authed("/rest/api/2/issue/ED-1"))
	ex := example("getIssue.get.200.response.json")
	within(t, "issue", is, schema("IssueBean"))
	fields, exFields := is["fields"].(map[string]any), ex["fields"].(map[string]any)
	top := map[string]any{}
	for k, v := range is {
		if k != "fields" { // the example lacks most of our fields; checked one by one below
			top[k] = v
		}
	}
	sameShape(t, "issue", top, ex)
	sameShape(t, "issue.fields.project", fields["project"], exFields["project"])
	sameShape(t, "issue.fields.reporter", fields["reporter"], example("getCurrentUser.get.200.response.json"))
	within(t, "issue.fields.reporter", fields["reporter"].(map[string]any), schema("UserDetails"))
	within(t, "issue.fields.status", fields["status"].(map[string]any), schema("StatusDetails"))
	within(t, "issue.fields.status.statusCategory", fields["status"].(map[string]any)["statusCategory"].(map[string]any), schema("StatusCategory"))
	within(t, "issue.fields.issuetype", fields["issuetype"].(map[string]any), schema("IssueTypeDetails"))
	exCreated := exFields["attachment"].([]any)[0].(map[string]any)["created"].(string)
	if got := fields["created"].(string); len(got) != len(exCreated) || got != "2022-10-06T07:32:47.000+0000" {
		t.Errorf("created %q, want Jira's format like %q", got, exCreated)
	}
}

// sameShape checks that every key of got exists in want with the same JSON
// type, recursively.
func sameShape(t *testing.T, path string, got, want any) {
	t.Helper()
	switch g := got.(type) {
	case map[string]any:
		w, ok := want.(map[string]any)
		if !ok {
			t.Errorf("%s: object, Jira has %T", path, want)
			return
		}
		for k, v := range g {
			wv, ok := w[k]
			if !ok {
				if path == "issue" { // top-level keys are checked against IssueBean
					continue
				}
				t.Errorf("%s.%s: Jira's example has no such key", path, k)
				continue
			}
			sameShape(t, path+"."+k, v, wv)
		}
	case []any:
		w, ok := want.([]any)
		if !ok {
			t.Errorf("%s: array, Jira has %T", path, want)
			return
		}
		if len(g) > 0 && len(w) > 0 {
			sameShape(t, path+"[0]", g[0], w[0])
		}
	default:
		if kind(got) != kind(want) {
			t.Errorf("%s: %T, Jira has %T", path, got, want)
		}
	}
}

func kind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "?"
}

// within checks that every key of got is a property of a schema.
func within(t *testing.T, path string, got, props map[string]any) {
	t.Helper()
	for k := range got {
		if _, ok := props[k]; !ok {
			t.Errorf("%s.%s: not a property in Jira's schema", path, k)
		}
	}
}
