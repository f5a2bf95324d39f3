package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/changegate/changegate/internal/ghfake"
)

// The webhook bodies carry what changegate reads from them; it reads the
// rest from GitHub, as it does for real deliveries.
const repoJSON = `"repository":{"id":1001,"full_name":"acme/payments","name":"payments","owner":{"login":"acme"},` +
	`"default_branch":"main"},"installation":{"id":42}`

func prEvent(action string, number int, head string) string {
	return fmt.Sprintf(`{"action":%q,"number":%d,"pull_request":{"number":%d,"head":{"sha":%q},"base":{"ref":"main"}},%s}`,
		action, number, number, head, repoJSON)
}

func reviewEvent(number int, reviewer string) string {
	return fmt.Sprintf(`{"action":"submitted","review":{"state":"approved","user":{"login":%q}},"pull_request":{"number":%d},%s}`,
		reviewer, number, repoJSON)
}

func deploymentStatusEvent(id int64, sha, env string) string {
	return fmt.Sprintf(`{"action":"created","deployment_status":{"state":"success"},"deployment":{"id":%d,"sha":%q,"environment":%q},%s}`,
		id, sha, env, repoJSON)
}

// sha is a made-up commit id, derived from n.
func sha(n int) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(n)))
	return hex.EncodeToString(sum[:20])
}

// openPR adds a pull request by author, with one commit by each of
// commitAuthors, and sends its opened event.
func (s *Script) openPR(ctx context.Context, n int, title, author string, labels []string, commitAuthors ...string) string {
	head := sha(0xa000 + n)
	s.prOf[head] = n
	gh := s.World.GitHub
	gh.AddPullRequest(Owner, Repo, ghfake.PullRequest{Number: n, Title: title, Author: author, HeadRef: fmt.Sprintf("change-%d", n),
		HeadSHA: head, BaseRef: "main", Labels: labels})
	for i, who := range commitAuthors {
		c := head
		if i < len(commitAuthors)-1 {
			c = sha(0xb000 + 10*n + i)
		}
		gh.AddCommit(Owner, Repo, n, ghfake.Commit{SHA: c, Message: title,
			Author: ghfake.Person{Name: who, Email: who + "@acme.example", Login: who}})
	}
	s.say("%s opens #%d %q", author, n, title)
	s.github(ctx, "pull_request", prEvent("opened", n, head))
	return head
}

func (s *Script) approve(ctx context.Context, n int, head, reviewer string) {
	s.World.GitHub.AddReview(Owner, Repo, n, ghfake.Review{User: reviewer, State: "APPROVED", CommitID: head})
	s.github(ctx, "pull_request_review", reviewEvent(n, reviewer))
}

func (s *Script) stage(ctx context.Context, head string) {
	gh := s.World.GitHub
	dep := gh.AddDeployment(Owner, Repo, ghfake.Deployment{SHA: head, Environment: "staging"})
	gh.AddDeploymentStatus(Owner, Repo, dep.ID, ghfake.DeploymentStatus{State: "success"})
	s.github(ctx, "deployment_status", deploymentStatusEvent(dep.ID, head, "staging"))
}

// merge merges #n as mergedBy and sends the closed event; it returns the
// merge commit.
func (s *Script) merge(ctx context.Context, n int, head, mergedBy string) string {
	m := sha(0xc000 + n)
	s.World.GitHub.MergePullRequest(Owner, Repo, n, m, mergedBy)
	s.github(ctx, "pull_request", strings.Replace(prEvent("closed", n, head), `"action":"closed"`, `"action":"closed","merged":true`, 1))
	return m
}

func (s *Script) compliantStepByStep(ctx context.Context) {
	head := s.openPR(ctx, 1, "PAY-101 Add rate limiting to the payments API", "alice", nil, "alice")
	s.checkChanges(ctx, head)
	s.say("bob reviews and approves")
	s.approve(ctx, 1, head, "bob")
	s.checkChanges(ctx, head)
	s.say("the head commit deploys to staging, successfully")
	s.stage(ctx, head)
	s.checkChanges(ctx, head)
	s.say("carol, a release manager, approves")
	s.approve(ctx, 1, head, "carol")
	s.checkChanges(ctx, head)
	s.say("PAY-101 moves to Approved in Jira")
	s.World.Jira.SetStatus("PAY-101", "Approved")
	s.jiraUpdated(ctx, "PAY-101")
	s.checkChanges(ctx, head)
	s.say("alice merges it: changegate archives a signed change record")
	s.deployable = s.merge(ctx, 1, head, "alice")
	s.newRecords(ctx, 1)
}

func (s *Script) reviewerIsAnAuthor(ctx context.Context) {
	head := s.openPR(ctx, 2, "PAY-102 Retry failed card captures", "dave", nil, "dave", "erin")
	s.checkChanges(ctx, head)
	s.say("erin, who pushed a commit to it, approves: her approval does not count")
	s.approve(ctx, 2, head, "erin")
	s.checkChanges(ctx, head)
	s.quoteSummary(head, "erin approved but")
	s.say("bob, who wrote none of it, approves")
	s.approve(ctx, 2, head, "bob")
	s.checkChanges(ctx, head)
}

func (s *Script) adminBypass(ctx context.Context) {
	head := s.openPR(ctx, 3, "Quick config tweak", "mallory", nil, "mallory")
	s.checkChanges(ctx, head)
	s.say("mallory, a repository admin, merges it anyway, past the required check")
	s.bypassed = s.merge(ctx, 3, head, "mallory")
	s.newRecords(ctx, 1)
}

func (s *Script) emergency(ctx context.Context) {
	head := s.openPR(ctx, 4, "PAY-104 Fix card captures after the TLS rotation", "alice", []string{"emergency"}, "alice")
	s.checkChanges(ctx, head)
	s.say("bob approves, and alice merges at once")
	s.approve(ctx, 4, head, "bob")
	s.checkChanges(ctx, head)
	s.merge(ctx, 4, head, "alice")
	s.newRecords(ctx, 1)
	s.say("carol approves the next morning, inside the 48h window: the exception closes")
	s.approve(ctx, 4, head, "carol")
	s.newRecords(ctx, 1)
}

func (s *Script) directPush(ctx context.Context) {
	s.say("someone pushes a commit straight to main")
	before, after := s.deployable, sha(0xd001)
	s.github(ctx, "push", fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q,"commits":[{"id":%q}],`+
		`"pusher":{"name":"mallory"},%s}`, before, after, after, repoJSON))
	s.newRecords(ctx, 1)
}

func (s *Script) deployments(ctx context.Context) {
	s.say("a workflow asks to deploy #1's merge to production")
	s.gateRequest(ctx, 5001, s.deployable)
	s.gateAnswer(ctx, 5001)
	s.say("it deploys")
	gh := s.World.GitHub
	dep := gh.AddDeployment(Owner, Repo, ghfake.Deployment{SHA: s.deployable, Environment: "production"})
	gh.AddDeploymentStatus(Owner, Repo, dep.ID, ghfake.DeploymentStatus{State: "success"})
	s.github(ctx, "deployment_status", deploymentStatusEvent(5001, s.deployable, "production"))
	s.newRecords(ctx, 1)
	s.say("a workflow asks to deploy #3's merge, the bypass, to production")
	s.gateRequest(ctx, 5002, s.bypassed)
	s.gateAnswer(ctx, 5002)
}

// gateRequest sends GitHub's deployment_protection_rule request for sha
// to production, its callback on the fake GitHub.
func (s *Script) gateRequest(ctx context.Context, runID int64, sha string) {
	callback := fmt.Sprintf("%srepos/%s/%s/actions/runs/%d/deployment_protection_rule", s.World.GitHub.URL(), Owner, Repo, runID)
	s.github(ctx, "deployment_protection_rule", fmt.Sprintf(`{"action":"requested","environment":"production","event":"push",`+
		`"deployment_callback_url":%q,"deployment":{"id":%d,"sha":%q,"ref":"main","environment":"production"},%s}`,
		callback, runID, sha, repoJSON))
}
