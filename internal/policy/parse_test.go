package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const repoFile = ".github/changegate.yml"

// policyOpts compares policies by what they mean, not by parse positions.
var policyOpts = cmp.Options{cmpopts.IgnoreUnexported(Policy{}, Production{}), cmpopts.EquateEmpty()}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		edit func(p *Policy) // applied to Defaults() to get the want
	}{
		{name: "version only takes every default", yaml: "version: 1\n", edit: func(*Policy) {}},
		{
			name: "every key",
			yaml: `version: 1
production: {branches: [main, release/*], paths: [clusters/prod/**], environments: [production, prod-*]}
ticket: {sources: [title], projects: [PAY, OPS], issue_types: [Story, Change], statuses: [Approved]}
review: {required: 2, keep_on_push: true}
staging: {environments: [staging], checks: [argocd/*-staging]}
manager: {teams: [acme/release-managers], jira_approval: true, jira_group: change-managers}
emergency: {label: hotfix, window: 24h}
exempt: {authors: ["dependabot[bot]"], paths: [docs/**]}
`,
			edit: func(p *Policy) {
				p.Production = Production{Branches: []string{"main", "release/*"}, Paths: []string{"clusters/prod/**"}, Environments: []string{"production", "prod-*"}}
				p.Ticket = Ticket{Sources: []string{"title"}, Projects: []string{"PAY", "OPS"}, IssueTypes: []string{"Story", "Change"}, Statuses: []string{"Approved"}}
				p.Review = Review{Required: 2, KeepOnPush: true}
				p.Staging = Staging{Environments: []string{"staging"}, Checks: []string{"argocd/*-staging"}}
				p.Manager = Manager{Teams: []string{"acme/release-managers"}, JiraApproval: true, JiraGroup: "change-managers"}
				p.Emergency = Emergency{Label: "hotfix", Window: 24 * time.Hour}
				p.Exempt = Exempt{Authors: []string{"dependabot[bot]"}, Paths: []string{"docs/**"}}
			},
		},
		{
			name: "empty lists replace defaults",
			yaml: "version: 1\nticket: {statuses: []}\nproduction: {environments: []}\n",
			edit: func(p *Policy) { p.Ticket.Statuses = []string{}; p.Production.Environments = []string{} },
		},
		{
			name: "anchors and aliases",
			yaml: "version: 1\nproduction: {environments: &envs [prod, live]}\nstaging: {environments: *envs}\n",
			edit: func(p *Policy) {
				p.Production.Environments = []string{"prod", "live"}
				p.Staging.Environments = []string{"prod", "live"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(repoFile, []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Defaults()
			tt.edit(want)
			if diff := cmp.Diff(want, got, policyOpts); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string // every line of the joined error
	}{
		{name: "empty file", yaml: "", want: []string{`.github/changegate.yml: empty policy file; it must at least say "version: 1"`}},
		{name: "only comments", yaml: "# nothing yet\n", want: []string{`.github/changegate.yml: empty policy file; it must at least say "version: 1"`}},
		{name: "missing version", yaml: "review: {required: 2}\n", want: []string{`.github/changegate.yml:1:1: version: missing; the file must say "version: 1"`}},
		{name: "unsupported version", yaml: "version: 2\n", want: []string{`.github/changegate.yml:1:10: version: 2 is not supported; this changegate reads version 1`}},
		{
			name: "unknown top-level key with its line",
			yaml: "version: 1\nproduction:\n  branches: [main]\n\n\n\nreveiw:\n  required: 2\n",
			want: []string{`.github/changegate.yml:7:1: unknown key "reveiw" (did you mean "review"?)`},
		},
		{
			name: "unknown nested key with its path",
			yaml: "version: 1\nreview:\n  required: 2\n  keep_on_psuh: true\n",
			want: []string{`.github/changegate.yml:4:3: unknown key "review.keep_on_psuh" (did you mean "review.keep_on_push"?)`},
		},
		{name: "unknown key far from any", yaml: "version: 1\ncolour: blue\n", want: []string{`.github/changegate.yml:2:1: unknown key "colour"`}},
		{name: "duplicate key", yaml: "version: 1\nreview: {required: 1}\nreview: {required: 2}\n", want: []string{`.github/changegate.yml:3:1: review: key given twice`}},
		{
			name: "wrong types",
			yaml: `version: "1"
production: {branches: main}
ticket: {sources: [title, 3]}
review: {required: two, keep_on_push: "yes"}
manager: {jira_group: [a]}
emergency: {window: 48}
exempt: []
`,
			want: []string{
				`.github/changegate.yml:1:10: version: expected an integer, got "1"`,
				`.github/changegate.yml:2:24: production.branches: expected a list, got "main"`,
				`.github/changegate.yml:3:27: ticket.sources[1]: expected a string, got 3`,
				`.github/changegate.yml:4:20: review.required: expected an integer, got "two"`,
				`.github/changegate.yml:4:39: review.keep_on_push: expected true or false, got "yes"`,
				`.github/changegate.yml:5:23: manager.jira_group: expected a string, got a list`,
				`.github/changegate.yml:6:21: emergency.window: expected a duration such as "48h", got 48`,
				`.github/changegate.yml:7:9: exempt: expected a mapping of keys, got a list`,
			},
		},
		{name: "null value", yaml: "version: 1\nreview:\n", want: []string{`.github/changegate.yml:2:8: review: no value; give one, or remove the key to take the default`}},
		{name: "top level is a list", yaml: "- version: 1\n", want: []string{`.github/changegate.yml:1:1: the policy: expected a mapping of keys, got a list`}},
		{name: "two documents", yaml: "version: 1\n---\nversion: 1\n", want: []string{`.github/changegate.yml:2:1: a second YAML document; a policy file holds exactly one`}},
		{name: "syntax error", yaml: "version: 1\nreview: {required: [\n", want: []string{`.github/changegate.yml:2: invalid YAML: did not find expected node content`}},
		{
			name: "bad values, all at once",
			yaml: `version: 1
production: {branches: ["release/[", "a**"], paths: [""]}
ticket: {sources: [title, titel], projects: [pay], statuses: [" "]}
review: {required: 11}
staging: {checks: ["change*"]}
manager: {teams: [release-managers], jira_approval: true}
emergency: {label: "", window: 0s}
exempt: {authors: ["not a login"], paths: [docs/**]}
`,
			want: []string{
				`.github/changegate.yml:2:25: production.branches[0]: "release/[": bad pattern syntax (see Go's path.Match)`,
				`.github/changegate.yml:2:38: production.branches[1]: "a**": "**" must be a whole path segment, as in docs/**`,
				`.github/changegate.yml:2:54: production.paths[0]: "": empty pattern`,
				`.github/changegate.yml:3:27: ticket.sources[1]: "titel" is not a source; use title, branch or body`,
				`.github/changegate.yml:3:46: ticket.projects[0]: "pay" is not a Jira project key (2 or more of A-Z, 0-9 and _, starting with a letter, such as PAY)`,
				`.github/changegate.yml:3:63: ticket.statuses[0]: empty value`,
				`.github/changegate.yml:4:20: review.required: 11 is out of range 0..10`,
				`.github/changegate.yml:5:20: staging.checks[0]: "change*" matches changegate's own check run; the gate cannot be its own staging evidence`,
				`.github/changegate.yml:6:19: manager.teams[0]: "release-managers" is not org/team-slug`,
				`.github/changegate.yml:6:53: manager.jira_approval: true needs manager.jira_group: the Jira group whose approvals count`,
				`.github/changegate.yml:7:20: emergency.label: empty; name the label that marks an emergency change`,
				`.github/changegate.yml:7:32: emergency.window: 0s is out of range; give a duration above 0 and at most 720h`,
				`.github/changegate.yml:8:20: exempt.authors[0]: "not a login" is not a GitHub login (such as alice or dependabot[bot])`,
			},
		},
		{name: "window too long", yaml: "version: 1\nemergency: {window: 721h}\n", want: []string{`.github/changegate.yml:2:21: emergency.window: 721h is out of range; give a duration above 0 and at most 720h`}},
		{name: "window not a duration", yaml: "version: 1\nemergency: {window: 2d}\n", want: []string{`.github/changegate.yml:2:21: emergency.window: "2d" is not a duration; write it like 48h or 90m`}},
		{name: "negative reviews", yaml: "version: 1\nreview: {required: -1}\n", want: []string{`.github/changegate.yml:2:20: review.required: -1 is out of range 0..10`}},
		{name: "no sources", yaml: "version: 1\nticket: {sources: []}\n", want: []string{`.github/changegate.yml:2:19: ticket.sources: empty; list at least one of title, branch or body`}},
		{name: "no staging at all", yaml: "version: 1\nstaging: {environments: [], checks: []}\n", want: []string{`.github/changegate.yml:2:10: staging: no environments and no checks: nothing could ever show a staging run`}},
		{name: "merge keys are not keys", yaml: "version: 1\nbase: &b {required: 2}\nreview: {<<: *b}\n", want: []string{
			`.github/changegate.yml:2:1: unknown key "base"`,
			`.github/changegate.yml:3:10: unknown key "review.<<"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse(repoFile, []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", p)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			var perr *Error
			if !errors.As(err, &perr) || perr.File != repoFile {
				t.Errorf("error %v is not an *Error for %s", err, repoFile)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	data := []byte("version: 1\n" + strings.Repeat("# padding\n", maxFileSize/10))
	if _, err := Parse(repoFile, data); err == nil || !strings.Contains(err.Error(), "the limit is") {
		t.Errorf("Parse of %d bytes: %v, want a size error", len(data), err)
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{name: "file line column", err: Error{File: "a.yml", Line: 3, Column: 5, Msg: "m"}, want: "a.yml:3:5: m"},
		{name: "file line", err: Error{File: "a.yml", Line: 3, Msg: "m"}, want: "a.yml:3: m"},
		{name: "file only", err: Error{File: "a.yml", Msg: "m"}, want: "a.yml: m"},
		{name: "message only", err: Error{Msg: "m"}, want: "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// The shipped default file is exactly Defaults.
func TestDefaultFile(t *testing.T) {
	t.Parallel()
	name := filepath.Join("..", "..", "config", "policy.default.yml")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(name, data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(Defaults(), got, cmpopts.IgnoreUnexported(Policy{}, Production{})); diff != "" {
		t.Errorf("config/policy.default.yml differs from Defaults() (-Defaults +file):\n%s", diff)
	}
	if got.Digest() != Defaults().Digest() {
		t.Errorf("digests differ")
	}
	// Every key is written out, so the file documents all of them.
	for _, path := range leafPaths(reflect.TypeFor[Policy](), "") {
		if _, ok := got.pos[path]; !ok {
			t.Errorf("config/policy.default.yml does not write %s", path)
		}
	}
	if err := CheckFile(name); err != nil {
		t.Errorf("CheckFile: %v", err)
	}
}

func TestCheckFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "changegate.yml")
	if err := os.WriteFile(bad, []byte("version: 1\nreveiw: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := CheckFile(bad)
	if want := bad + `:2:1: unknown key "reveiw" (did you mean "review"?)`; err == nil || err.Error() != want {
		t.Errorf("CheckFile = %v, want %s", err, want)
	}
	if err := CheckFile(filepath.Join(dir, "missing.yml")); err == nil {
		t.Error("CheckFile of a missing file succeeded")
	}
}

func TestDigest(t *testing.T) {
	t.Parallel()
	base := Defaults().Digest()
	tests := []struct {
		name string
		edit func(p *Policy)
		same bool
	}{
		{name: "list order does not matter", same: true, edit: func(p *Policy) {
			p.Ticket.Statuses = []string{"Done", "Approved", "In Progress"}
			p.Ticket.Sources = []string{"body", "branch", "title"}
		}},
		{name: "nil equals empty", same: true, edit: func(p *Policy) { p.Exempt.Paths = nil }},
		{name: "duplicates do not matter", same: true, edit: func(p *Policy) { p.Staging.Environments = []string{"staging", "staging"} }},
		{name: "a value changes it", edit: func(p *Policy) { p.Review.Required = 2 }},
		{name: "a list item changes it", edit: func(p *Policy) { p.Exempt.Paths = []string{"docs/**"} }},
		{name: "the window changes it", edit: func(p *Policy) { p.Emergency.Window = time.Hour }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Defaults()
			tt.edit(p)
			if got := p.Digest(); (got == base) != tt.same {
				t.Errorf("Digest() = %s, defaults %s, want same=%v", got, base, tt.same)
			}
		})
	}
	if len(base) != 64 {
		t.Errorf("Digest() = %q, want 64 hex digits", base)
	}
	p := Defaults()
	p.Ticket.Statuses = []string{"Done", "Approved"}
	_ = p.Digest()
	if !slices.Equal(p.Ticket.Statuses, []string{"Done", "Approved"}) {
		t.Errorf("Digest reordered the policy's own list: %v", p.Ticket.Statuses)
	}
}

// The editor schema describes exactly the keys Parse reads, at every level.
func TestSchemaMatchesStruct(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "policy.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if got := schema["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", got)
	}
	compareSchema(t, "", reflect.TypeFor[Policy](), schema)
}

func compareSchema(t *testing.T, path string, typ reflect.Type, node map[string]any) {
	t.Helper()
	if node["additionalProperties"] != false {
		t.Errorf("%s: additionalProperties is not false", orTop(path))
	}
	props, _ := node["properties"].(map[string]any)
	var want, got []string
	for i := range typ.NumField() {
		if key := yamlKey(typ.Field(i)); key != "" {
			want = append(want, key)
		}
	}
	for k := range props {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: schema properties (-struct +schema):\n%s", orTop(path), diff)
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := yamlKey(f)
		sub, ok := props[key].(map[string]any)
		if key == "" || !ok {
			continue
		}
		if d, _ := sub["description"].(string); d == "" {
			t.Errorf("%s: no description", join(path, key))
		}
		if f.Type.Kind() == reflect.Struct {
			compareSchema(t, join(path, key), f.Type, sub)
		}
	}
}

// TestSyntaxErrorLines: a YAML syntax error is reported at the line of the
// token at fault (go-yaml #205 gives an unclosed bracket's line 0-based).
func TestSyntaxErrorLines(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]string{
		"version: 1\nproduction:\n  branches: [main\nreview:\n  required: 2\n": "changegate.yml:3:",
		"version: 1\nmanager: {teams: [a/b]\n":                                 "changegate.yml:2:",
		"version: 1\n  review: x\n":                                            "changegate.yml:2:",
	} {
		_, err := Parse("changegate.yml", []byte(file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %s", file, err, want)
		}
	}
}
