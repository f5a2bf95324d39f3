package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const orgFile = "acme/.github:changegate.yml"

// org is a strict organisation baseline that sets every key.
const org = `version: 1
production: {branches: [main], paths: [apps/**], environments: [production]}
ticket: {sources: [title, branch], projects: [PAY, OPS], issue_types: [Story, Change], statuses: [Approved, Done]}
review: {required: 2, keep_on_push: true}
staging: {environments: [staging, qa], checks: [argocd/staging]}
manager: {teams: [acme/release-managers, acme/leads], jira_approval: true, jira_group: change-managers}
emergency: {label: emergency, window: 48h}
exempt: {authors: ["dependabot[bot]", "renovate[bot]"], paths: [docs/**, "**/*.md"]}
`

func mustParse(t *testing.T, name, data string) *Policy {
	t.Helper()
	p, err := Parse(name, []byte(data))
	if err != nil {
		t.Fatalf("Parse %s: %v", name, err)
	}
	return p
}

func TestMerge(t *testing.T) {
	t.Parallel()
	type problem struct {
		Line int
		Msg  string
	}
	tests := []struct {
		name        string
		defaults    bool   // the baseline is the built-in default (a fallback) rather than org
		orgDefaults bool   // the baseline is an organisation file that writes the default's production.paths and manager.jira_approval
		orgSilent   bool   // the baseline is an organisation file that writes only its version
		repo        string // below "version: 1", on line 2
		want        func(p *Policy)
		problems    []problem
	}{
		{name: "unset keys keep the baseline", repo: "review: {required: 3}", want: func(p *Policy) { p.Review.Required = 3 }},

		{name: "production.branches tighten: add a branch", repo: "production: {branches: [main, release/*]}",
			want: func(p *Policy) { p.Production.Branches = []string{"main", "release/*"} }},
		{name: "production.branches loosen: drop a branch", repo: "production: {branches: [release/*]}",
			problems: []problem{{2, "production.branches: drops main, which the baseline treats as production"}}},
		{name: "production.branches over the default branch: the default branch stays production", defaults: true, repo: "production: {branches: [main]}",
			want: func(p *Policy) { p.Production.Branches = []string{"main"} }},

		{name: "production.paths tighten: add a path", repo: "production: {paths: [apps/**, infra/**]}",
			want: func(p *Policy) { p.Production.Paths = []string{"apps/**", "infra/**"} }},
		{name: "production.paths loosen: drop a path", repo: "production: {paths: [infra/**]}",
			problems: []problem{{2, "production.paths: drops apps/**, which the baseline treats as production"}}},
		{name: "production.paths over the built-in default: a GitOps repository says what production is", defaults: true, repo: "production: {paths: [apps/**]}",
			want: func(p *Policy) { p.Production.Paths = []string{"apps/**"} }},
		{name: "production.paths loosen: narrow every file, which the organisation wrote", orgDefaults: true, repo: "production: {paths: [apps/**]}",
			problems: []problem{{2, "production.paths: the baseline treats every file as production; a list would narrow it"}}},
		{name: "production.paths over an organisation file that does not write it: the default is a fallback", orgSilent: true,
			repo: "production: {paths: [apps/**]}", want: func(p *Policy) { p.Production.Paths = []string{"apps/**"} }},
		{name: "production.paths tighten: every file stays every file", defaults: true, repo: "production: {paths: []}",
			want: func(p *Policy) {}},

		{name: "production.environments tighten: add one", repo: "production: {environments: [production, prod-eu]}",
			want: func(p *Policy) { p.Production.Environments = []string{"production", "prod-eu"} }},
		{name: "production.environments loosen: drop one", repo: "production: {environments: [prod-eu]}",
			problems: []problem{{2, "production.environments: drops production, which the baseline treats as production"}}},

		{name: "ticket.sources tighten: fewer", repo: "ticket: {sources: [title]}",
			want: func(p *Policy) { p.Ticket.Sources = []string{"title"} }},
		{name: "ticket.sources loosen: add body", repo: "ticket: {sources: [title, body]}",
			problems: []problem{{2, "ticket.sources: adds body, which the baseline does not search for keys"}}},

		{name: "ticket.projects tighten: fewer", repo: "ticket: {projects: [PAY]}",
			want: func(p *Policy) { p.Ticket.Projects = []string{"PAY"} }},
		{name: "ticket.projects tighten: any baseline allows a list", defaults: true, repo: "ticket: {projects: [PAY]}",
			want: func(p *Policy) { p.Ticket.Projects = []string{"PAY"} }},
		{name: "ticket.projects loosen: add one", repo: "ticket: {projects: [PAY, WEB]}",
			problems: []problem{{2, `ticket.projects: adds "WEB", which the baseline does not allow`}}},
		{name: "ticket.projects loosen: empty means any", repo: "ticket: {projects: []}",
			problems: []problem{{2, "ticket.projects: an empty list allows any project; the baseline allows only PAY, OPS"}}},

		{name: "ticket.issue_types tighten: fewer", repo: "ticket: {issue_types: [change]}",
			want: func(p *Policy) { p.Ticket.IssueTypes = []string{"change"} }},
		{name: "ticket.issue_types loosen: add one", repo: "ticket: {issue_types: [Bug]}",
			problems: []problem{{2, `ticket.issue_types: adds "Bug", which the baseline does not allow`}}},

		{name: "ticket.statuses tighten: fewer", repo: "ticket: {statuses: [Approved]}",
			want: func(p *Policy) { p.Ticket.Statuses = []string{"Approved"} }},
		{name: "ticket.statuses loosen: add one", repo: `ticket: {statuses: [Approved, "To Do"]}`,
			problems: []problem{{2, `ticket.statuses: adds "To Do", which the baseline does not allow`}}},
		{name: "ticket.statuses loosen: empty means any", repo: "ticket: {statuses: []}",
			problems: []problem{{2, "ticket.statuses: an empty list allows any status; the baseline allows only Approved, Done"}}},

		{name: "review.required tighten: more", repo: "review: {required: 3}", want: func(p *Policy) { p.Review.Required = 3 }},
		{name: "review.required loosen: fewer", repo: "review: {required: 1}",
			problems: []problem{{2, "review.required: 1 is below the baseline's 2"}}},

		{name: "review.keep_on_push tighten: true to false", repo: "review: {keep_on_push: false}",
			want: func(p *Policy) { p.Review.KeepOnPush = false }},
		{name: "review.keep_on_push loosen: false to true", defaults: true, repo: "review: {keep_on_push: true}",
			problems: []problem{{2, "review.keep_on_push: true would count approvals of older commits; the baseline says false"}}},

		{name: "staging.environments tighten: fewer", repo: "staging: {environments: [staging]}",
			want: func(p *Policy) { p.Staging.Environments = []string{"staging"} }},
		{name: "staging.environments loosen: add one", repo: "staging: {environments: [staging, dev]}",
			problems: []problem{{2, "staging.environments: adds dev, which the baseline does not accept as staging"}}},

		{name: "staging.checks tighten: none", repo: "staging: {checks: []}", want: func(p *Policy) { p.Staging.Checks = []string{} }},
		{name: "staging.checks tighten: an empty baseline leaves it to the repository", defaults: true, repo: "staging: {checks: [argocd/staging]}",
			want: func(p *Policy) { p.Staging.Checks = []string{"argocd/staging"} }},
		{name: "staging.checks loosen: add one", repo: "staging: {checks: [argocd/staging, e2e]}",
			problems: []problem{{2, "staging.checks: adds e2e, which the baseline does not accept as staging"}}},

		{name: "manager.teams tighten: fewer", repo: "manager: {teams: [acme/leads]}",
			want: func(p *Policy) { p.Manager.Teams = []string{"acme/leads"} }},
		{name: "manager.teams tighten: an empty baseline leaves it to the repository", defaults: true, repo: "manager: {teams: [acme/devs]}",
			want: func(p *Policy) { p.Manager.Teams = []string{"acme/devs"} }},
		{name: "manager.teams loosen: add one", repo: "manager: {teams: [acme/leads, acme/devs]}",
			problems: []problem{{2, "manager.teams: adds acme/devs, which the baseline does not accept as managers"}}},

		{name: "manager.jira_approval tighten: true to false", repo: "manager: {jira_approval: false}",
			want: func(p *Policy) { p.Manager.JiraApproval = false }},
		{name: "manager.jira_approval over the built-in default: the repository's own group", defaults: true, repo: "manager: {jira_approval: true, jira_group: x}",
			want: func(p *Policy) { p.Manager.JiraApproval, p.Manager.JiraGroup = true, "x" }},
		{name: "manager.jira_approval loosen: false to true, which the organisation wrote", orgDefaults: true, repo: "manager: {jira_approval: true, jira_group: x}",
			problems: []problem{{2, "manager.jira_approval: true would count Jira approvals; the baseline says false"}}},
		{name: "ticket.statuses over an organisation file that does not write them: the repository's own", orgSilent: true,
			repo: "ticket: {statuses: [Ready for Release]}", want: func(p *Policy) { p.Ticket.Statuses = []string{"Ready for Release"} }},

		{name: "manager.jira_group same group", repo: "manager: {jira_group: Change-Managers}",
			want: func(p *Policy) { p.Manager.JiraGroup = "Change-Managers" }},
		{name: "manager.jira_group loosen: another group", repo: "manager: {jira_group: jira-users}",
			problems: []problem{{2, `manager.jira_group: "jira-users" differs from the baseline's "change-managers"`}}},

		{name: "emergency.label same label", repo: "emergency: {label: emergency}", want: func(p *Policy) {}},
		{name: "emergency.label loosen: another label", repo: "emergency: {label: hotfix}",
			problems: []problem{{2, `emergency.label: "hotfix" differs from the baseline's "emergency"`}}},

		{name: "emergency.window tighten: shorter", repo: "emergency: {window: 24h}",
			want: func(p *Policy) { p.Emergency.Window = 24 * time.Hour }},
		{name: "emergency.window loosen: longer", repo: "emergency: {window: 72h}",
			problems: []problem{{2, "emergency.window: 72h is longer than the baseline's 48h"}}},

		{name: "exempt.authors tighten: fewer", repo: `exempt: {authors: ["Dependabot[bot]"]}`,
			want: func(p *Policy) { p.Exempt.Authors = []string{"Dependabot[bot]"} }},
		{name: "exempt.authors loosen: add one", repo: `exempt: {authors: ["dependabot[bot]", alice]}`,
			problems: []problem{{2, "exempt.authors: adds alice, which the baseline does not exempt"}}},

		{name: "exempt.paths tighten: fewer", repo: "exempt: {paths: [docs/**]}",
			want: func(p *Policy) { p.Exempt.Paths = []string{"docs/**"} }},
		{name: "exempt.paths loosen: add one", repo: "exempt: {paths: [docs/**, src/**]}",
			problems: []problem{{2, "exempt.paths: adds src/**, which the baseline does not exempt"}}},

		{
			name: "every loosening is named",
			repo: "review: {required: 0}\nexempt:\n  paths: [src/**]\nemergency: {window: 96h}",
			problems: []problem{
				{2, "review.required: 0 is below the baseline's 2"},
				{5, "emergency.window: 96h is longer than the baseline's 48h"},
				{4, "exempt.paths: adds src/**, which the baseline does not exempt"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := mustParse(t, orgFile, org)
			switch {
			case tt.defaults:
				base = Defaults()
			case tt.orgDefaults:
				base = mustParse(t, orgFile, "version: 1\nproduction: {paths: []}\nmanager: {jira_approval: false}\n")
			case tt.orgSilent:
				base = mustParse(t, orgFile, "version: 1\n")
			}
			repo := mustParse(t, repoFile, "version: 1\n"+tt.repo+"\n")
			got, err := Merge(base, repo)
			var problems []problem
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var pe *Error
					if !errors.As(e, &pe) || pe.File != repoFile {
						t.Fatalf("error %v is not an *Error in %s", e, repoFile)
					}
					problems = append(problems, problem{pe.Line, pe.Msg})
				}
			}
			if diff := cmp.Diff(tt.problems, problems); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if tt.problems != nil {
				return
			}
			want := base.clone()
			tt.want(want)
			if diff := cmp.Diff(want, got, policyOpts); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeEdges(t *testing.T) {
	t.Parallel()
	org := mustParse(t, orgFile, org)
	tests := []struct {
		name           string
		baseline, repo *Policy
		want           *Policy
		wantErr        bool
	}{
		{name: "no repository file", baseline: org, repo: nil, want: org},
		{name: "no baseline means Defaults", baseline: nil, repo: mustParse(t, repoFile, "version: 1\nreview: {required: 2}\n"),
			want: func() *Policy { p := Defaults(); p.Review.Required = 2; return p }()},
		{name: "a policy built in code sets every key", baseline: org, repo: Defaults(), wantErr: true},
		{name: "the baseline itself merges cleanly", baseline: org, repo: org, want: org},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Merge(tt.baseline, tt.repo)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Merge error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(Policy{}, Production{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
		})
	}
}

// The merged policy shares no list with its inputs: callers may keep it.
func TestMergeCopies(t *testing.T) {
	t.Parallel()
	base := Defaults()
	repo := mustParse(t, repoFile, "version: 1\nexempt: {paths: []}\nproduction: {environments: [production, live]}\n")
	got, err := Merge(base, repo)
	if err != nil {
		t.Fatal(err)
	}
	got.Production.Environments[0] = "changed"
	base.Ticket.Statuses[0] = "changed"
	if repo.Production.Environments[0] != "production" {
		t.Error("merged policy shares a list with the repository's")
	}
	if got.Ticket.Statuses[0] == "changed" {
		t.Error("merged policy shares a list with the baseline's")
	}
}
