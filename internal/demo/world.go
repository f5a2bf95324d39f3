// Package demo is `changegate demo`: a first look at the whole job. It
// starts a fake GitHub and a fake Jira on 127.0.0.1 (the ones the tests
// use), and a script that walks pull requests through a real changegate
// with signed webhooks: one that becomes compliant step by step, one whose
// reviewer wrote part of it, an admin bypass, an emergency closed in time,
// a direct push and a production deployment. It prints each check's title
// as it changes.
package demo

import (
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/jira/jirafake"
	"github.com/changegate/changegate/internal/testenv"
)

// The demo's organisation and repository.
const (
	Owner          = "acme"
	Repo           = "payments"
	installationID = 42
	managersTeam   = "release-managers"
)

// repoPolicy is the repository's .github/changegate.yml: PAY tickets in
// status Approved, and a release manager's approval.
const repoPolicy = `version: 1
ticket:
  projects: [PAY]
  statuses: [Approved]
manager:
  teams: [acme/release-managers]
`

// World is the fake GitHub and the fake Jira the demo runs against.
type World struct {
	GitHub *ghfake.Server
	Jira   *jirafake.Server
	host   *testenv.Process
}

// NewWorld starts the fakes, with acme/payments installed, its policy,
// carol as a release manager, and the Jira tickets the script uses. What
// the fakes report goes to log.
func NewWorld(log io.Writer) *World {
	host := testenv.NewProcess(log)
	gh := ghfake.New(host)
	inst := gh.AddInstallation(ghfake.Installation{ID: installationID, Account: Owner, AccountType: "Organization"})
	gh.AddRepo(inst.ID, ghfake.Repo{ID: 1001, Owner: Owner, Name: Repo})
	gh.SetContent(Owner, Repo, "main", ".github/changegate.yml", []byte(repoPolicy))
	gh.SetTeamMember(Owner, managersTeam, "carol", "active")
	gh.SetProtectionRules(Owner, Repo, "production", gh.AppID())
	jf := jirafake.New(host)
	for _, is := range []jirafake.Issue{
		{Key: "PAY-101", Type: "Story", Status: "In Progress", Summary: "Add rate limiting to the payments API"},
		{Key: "PAY-102", Type: "Story", Status: "Approved", Summary: "Retry failed card captures"},
		{Key: "PAY-104", Type: "Bug", Status: "Approved", Summary: "Card captures fail after the TLS rotation"},
	} {
		is.Reporter = jirafake.User{AccountID: "r1", DisplayName: "Pat Reporter"}
		jf.AddIssue(is)
	}
	return &World{GitHub: gh, Jira: jf, host: host}
}

// Close stops the fakes.
func (w *World) Close() { w.host.Close() }

// Unexpected counts the requests the fakes did not understand.
func (w *World) Unexpected() int { return w.host.Errors() }

// ServerEnv is the environment that points a changegate at the fakes, as
// the App, keeping its data in dataDir. It writes the App's private key
// under dataDir/demo.
func (w *World) ServerEnv(dataDir, jiraSecret string) (map[string]string, error) {
	dir := filepath.Join(dataDir, "demo")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, w.GitHub.PrivateKeyPEM(), 0o600); err != nil {
		return nil, err
	}
	return map[string]string{
		"CHANGEGATE_DATA_DIR":                dataDir,
		"CHANGEGATE_GITHUB_APP_ID":           strconv.FormatInt(w.GitHub.AppID(), 10),
		"CHANGEGATE_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"CHANGEGATE_GITHUB_API_URL":          w.GitHub.URL(),
		"CHANGEGATE_JIRA_URL":                w.Jira.URL(),
		"CHANGEGATE_JIRA_USER":               w.Jira.User(),
		"CHANGEGATE_JIRA_TOKEN":              w.Jira.Token(),
		"CHANGEGATE_JIRA_WEBHOOK_SECRET":     jiraSecret,
		// The scenes are the story; the periodic completeness jobs would
		// add records of their own at a time of their choosing.
		"CHANGEGATE_RECONCILE_INTERVAL":  "0",
		"CHANGEGATE_REDELIVERY_INTERVAL": "0",
	}, nil
}
