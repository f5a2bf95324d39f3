package setup

import "slices"

// AppManifest is a GitHub App manifest, as the manifest flow posts it.
type AppManifest struct {
	Name               string            `json:"name"`
	URL                string            `json:"url"`
	Description        string            `json:"description"`
	HookAttributes     HookAttributes    `json:"hook_attributes"`
	RedirectURL        string            `json:"redirect_url"`
	Public             bool              `json:"public"`
	DefaultPermissions map[string]string `json:"default_permissions"`
	DefaultEvents      []string          `json:"default_events"`
}

// HookAttributes say where GitHub delivers webhooks.
type HookAttributes struct {
	URL    string `json:"url"`
	Active bool   `json:"active"`
}

// Permissions are what the manifest asks for, and why (the README's table).
var permissionRows = []struct{ Name, Access, Why string }{
	{"metadata", "read", "Every App has it."},
	{"administration", "read", "Read classic branch protection, and receive ruleset and protection events, for the watch on changegate's own enforcement."},
	{"checks", "write", "Create and update the changegate check run."},
	{"contents", "read", "Read the policy files, commits, and pushes to production branches."},
	{"pull_requests", "read", "Read pull requests, their files, commits and reviews."},
	{"statuses", "read", "Commit statuses that show a staging run."},
	{"deployments", "write", "Read deployments and answer deployment protection rules."},
	{"actions", "read", "Read workflow runs and environments' protection rules."},
	{"issues", "read", "Receive /changegate recheck comments."},
	{"members", "read", "Check the team membership of managers."},
	{"merge_queues", "read", "Report on merge queue entries."},
}

var events = []string{"branch_protection_configuration", "branch_protection_rule", "check_run", "check_suite", "deployment_protection_rule", "deployment_review", "deployment_status",
	"issue_comment", "membership", "merge_group", "pull_request", "pull_request_review", "push", "repository_ruleset", "status", "team", "workflow_run"}

// Manifest is the manifest of a changegate server at public (its URL as
// GitHub reaches it): the same App as deploy/github-app-manifest.json.
func Manifest(public string) AppManifest {
	perms := map[string]string{}
	for _, p := range permissionRows {
		perms[p.Name] = p.Access
	}
	return AppManifest{
		Name:               "changegate",
		URL:                "https://github.com/changegate/changegate",
		Description:        "Enforces SOC 2 CC8.1 change management on production changes and keeps signed evidence.",
		HookAttributes:     HookAttributes{URL: public + "/webhooks/github", Active: true},
		RedirectURL:        public + "/setup/callback",
		DefaultPermissions: perms,
		DefaultEvents:      slices.Clone(events),
	}
}
