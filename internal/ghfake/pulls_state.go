package ghfake

import (
	"slices"
	"strings"
	"time"
)

// CheckRun is a check run on a commit. Tests seed them with AddCheckRun;
// the check-run endpoints store and read them through storeCheckRun and
// checkRunsFor.
type CheckRun struct {
	ID          int64 // assigned when zero
	Name        string
	HeadSHA     string
	Status      string // queued, in_progress, completed (default)
	Conclusion  string // success, failure, neutral, …; empty until completed
	AppSlug     string // default "changegate"
	StartedAt   time.Time
	CompletedAt time.Time
	DetailsURL  string
	ExternalID  string
	// Output of the check run, as the Checks API takes it.
	OutputTitle, OutputSummary, OutputText string
}

// PullRequest is a pull request as a test seeds it. Its changed_files and
// commits counts are those of the files and commits added to it, however
// many the list endpoints return.
type PullRequest struct {
	Number    int    // assigned when zero: the repository's next number
	Title     string // default "Change"
	Body      string
	Author    string // login; default "octocat"
	BaseRef   string // default "main"
	BaseSHA   string
	HeadRef   string // default "feature"
	HeadSHA   string // required
	Draft     bool
	State     string // "open" (default) or "closed"
	Labels    []string
	CreatedAt time.Time // default: now
	// Set by MergePullRequest.
	Merged         bool
	MergeCommitSHA string
	MergedBy       string
	MergedAt       time.Time
	ClosedAt       time.Time
}

// Person is a git identity on a commit. Login is the GitHub account GitHub
// linked the email to; empty gives a null author or committer, as GitHub
// does for unknown emails.
type Person struct {
	Name, Email, Login string
}

// Commit is a commit of a pull request.
type Commit struct {
	SHA       string // required
	Message   string // trailers included
	Author    Person
	Committer Person    // default: the author
	Date      time.Time // default: now
	Parents   []string
}

// File is a file a pull request changes.
type File struct {
	Filename         string
	Status           string // added, removed, modified (default), renamed, …
	PreviousFilename string // for renames
	Additions        int
	Deletions        int
}

// Review is a submitted pull request review.
type Review struct {
	ID          int64  // assigned when zero
	User        string // login
	State       string // APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
	CommitID    string // default: the pull request's head SHA
	Body        string
	SubmittedAt time.Time // default: now
}

// Status is a commit status.
type Status struct {
	ID          int64 // assigned when zero
	SHA         string
	Context     string // default "default"
	State       string // error, failure, pending, success
	Description string
	TargetURL   string
	Creator     string    // login; default "octocat"
	CreatedAt   time.Time // default: now
}

// Deployment is a GitHub deployment.
type Deployment struct {
	ID          int64 // assigned when zero
	SHA         string
	Ref         string // default: SHA
	Environment string // default "production"
	Task        string // default "deploy"
	Description string
	Creator     string    // login; default "octocat"
	CreatedAt   time.Time // default: now
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID             int64  // assigned when zero
	State          string // error, failure, inactive, in_progress, queued, pending, success
	Description    string
	EnvironmentURL string
	LogURL         string
	Creator        string    // login; default "octocat"
	CreatedAt      time.Time // default: now
}

// pull is a pull request with what hangs off it.
type pull struct {
	PullRequest
	files   []File
	commits []Commit
	reviews []Review
}

type deployment struct {
	Deployment
	statuses []DeploymentStatus // oldest first
}

// repoData is what the fake knows about one repository beyond its
// metadata: pull requests and the evidence attached to commits.
type repoData struct {
	owner, name string
	pulls       map[int]*pull
	checkRuns   []CheckRun
	statuses    []Status // oldest first
	deployments []*deployment
	contents    map[string]map[string][]byte // ref → path → bytes
	git         map[string]*gitCommit        // pushed commits by SHA
	branches    map[string]string            // branch → its newest pushed commit
	rules       map[string][]RequiredCheck   // branch → required status checks in force
	classic     map[string][]RequiredCheck   // branch → classic protection's checks; nil: not readable
	openAdmins  map[string]bool              // branch → classic protection does not include administrators
	bypass      []BypassActor                // who may bypass the repository's ruleset
}

// pullsState is the Server's pull-request and repository-content state;
// it is guarded by Server.mu.
type pullsState struct {
	repos map[string]*repoData // key: lower-case "owner/repo"
	teams map[string]string    // lower-case "org/slug/user" → active, pending
}

// dataOf returns the state of owner/repo, creating it; callers hold s.mu.
func (s *Server) dataOf(owner, repo string) *repoData {
	if s.pulls.repos == nil {
		s.pulls.repos = map[string]*repoData{}
	}
	k := strings.ToLower(owner + "/" + repo)
	d := s.pulls.repos[k]
	if d == nil {
		d = &repoData{owner: owner, name: repo, pulls: map[int]*pull{}, contents: map[string]map[string][]byte{}}
		s.pulls.repos[k] = d
	}
	return d
}

// storeCheckRun adds cr to owner/repo, or replaces the run with its ID, and
// returns it with its ID and defaults filled in. It takes s.mu.
func (s *Server) storeCheckRun(owner, repo string, cr CheckRun) CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cr.ID == 0 {
		cr.ID = s.newID()
	}
	if cr.Status == "" {
		cr.Status = "completed"
	}
	if cr.AppSlug == "" {
		cr.AppSlug = "changegate"
	}
	d := s.dataOf(owner, repo)
	for i, old := range d.checkRuns {
		if old.ID == cr.ID {
			d.checkRuns[i] = cr
			return cr
		}
	}
	d.checkRuns = append(d.checkRuns, cr)
	return cr
}

// checkRunsFor returns copies of owner/repo's check runs on sha, oldest
// first. It takes s.mu.
func (s *Server) checkRunsFor(owner, repo, sha string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, cr := range s.dataOf(owner, repo).checkRuns {
		if cr.HeadSHA == sha {
			out = append(out, cr)
		}
	}
	return out
}

// AddCheckRun seeds a check run, for example a staging deployment reported
// by Flux or Argo CD, and returns it with its ID and defaults filled in.
func (s *Server) AddCheckRun(owner, repo string, cr CheckRun) CheckRun {
	return s.storeCheckRun(owner, repo, cr)
}

// pullOf finds a pull request or fails the test; callers hold s.mu.
func (s *Server) pullOf(owner, repo string, number int) *pull {
	s.tb.Helper()
	p := s.dataOf(owner, repo).pulls[number]
	if p == nil {
		s.tb.Fatalf("ghfake: no pull request %s/%s#%d", owner, repo, number)
	}
	return p
}

// AddPullRequest adds or replaces a pull request (keeping the files,
// commits and reviews of one it replaces) and returns it with defaults
// filled in.
func (s *Server) AddPullRequest(owner, repo string, pr PullRequest) PullRequest {
	s.tb.Helper()
	if pr.HeadSHA == "" {
		s.tb.Fatalf("ghfake: pull request needs a head SHA")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dataOf(owner, repo)
	if pr.Number == 0 {
		pr.Number = 1
		for n := range d.pulls {
			pr.Number = max(pr.Number, n+1)
		}
	}
	if pr.Title == "" {
		pr.Title = "Change"
	}
	if pr.Author == "" {
		pr.Author = "octocat"
	}
	if pr.BaseRef == "" {
		pr.BaseRef = "main"
	}
	if pr.HeadRef == "" {
		pr.HeadRef = "feature"
	}
	if pr.State == "" {
		pr.State = "open"
	}
	if pr.CreatedAt.IsZero() {
		pr.CreatedAt = now
	}
	p := &pull{PullRequest: pr}
	if old := d.pulls[pr.Number]; old != nil {
		p.files, p.commits, p.reviews = old.files, old.commits, old.reviews
	}
	d.pulls[pr.Number] = p
	return pr
}

// SetHead moves a pull request's head, as a push does. Add the pushed
// commits with AddCommit.
func (s *Server) SetHead(owner, repo string, number int, sha string) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pullOf(owner, repo, number).HeadSHA = sha
}

// AddCommit appends a commit to a pull request, or replaces the one with
// its SHA.
func (s *Server) AddCommit(owner, repo string, number int, c Commit) {
	s.tb.Helper()
	if c.SHA == "" {
		s.tb.Fatalf("ghfake: commit needs a SHA")
	}
	if c.Committer == (Person{}) {
		c.Committer = c.Author
	}
	if c.Date.IsZero() {
		c.Date = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullOf(owner, repo, number)
	if i := slices.IndexFunc(p.commits, func(o Commit) bool { return o.SHA == c.SHA }); i >= 0 {
		p.commits[i] = c
		return
	}
	p.commits = append(p.commits, c)
}

// AddFile adds a changed file to a pull request, or replaces the one with
// its name.
func (s *Server) AddFile(owner, repo string, number int, f File) {
	s.tb.Helper()
	if f.Status == "" {
		f.Status = "modified"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullOf(owner, repo, number)
	if i := slices.IndexFunc(p.files, func(o File) bool { return o.Filename == f.Filename }); i >= 0 {
		p.files[i] = f
		return
	}
	p.files = append(p.files, f)
}

// AddReview submits a review and returns it with its ID and defaults.
func (s *Server) AddReview(owner, repo string, number int, r Review) Review {
	s.tb.Helper()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullOf(owner, repo, number)
	if r.ID == 0 {
		r.ID = s.newID()
	}
	if r.State == "" {
		r.State = "APPROVED"
	}
	if r.CommitID == "" {
		r.CommitID = p.HeadSHA
	}
	if r.SubmittedAt.IsZero() {
		r.SubmittedAt = now
	}
	p.reviews = append(p.reviews, r)
	return r
}

// DismissReview dismisses a review: its state becomes DISMISSED, as on
// GitHub.
func (s *Server) DismissReview(id int64) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.pulls.repos {
		for _, p := range d.pulls {
			for i := range p.reviews {
				if p.reviews[i].ID == id {
					p.reviews[i].State = "DISMISSED"
					return
				}
			}
		}
	}
	s.tb.Fatalf("ghfake: no review %d", id)
}

// AddStatus adds a commit status and returns it with its ID and defaults.
func (s *Server) AddStatus(owner, repo string, st Status) Status {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.ID == 0 {
		st.ID = s.newID()
	}
	if st.Context == "" {
		st.Context = "default"
	}
	if st.Creator == "" {
		st.Creator = "octocat"
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = now
	}
	d := s.dataOf(owner, repo)
	d.statuses = append(d.statuses, st)
	return st
}

// AddDeployment adds a deployment and returns it with its ID and defaults.
func (s *Server) AddDeployment(owner, repo string, dep Deployment) Deployment {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if dep.ID == 0 {
		dep.ID = s.newID()
	}
	if dep.Ref == "" {
		dep.Ref = dep.SHA
	}
	if dep.Environment == "" {
		dep.Environment = "production"
	}
	if dep.Task == "" {
		dep.Task = "deploy"
	}
	if dep.Creator == "" {
		dep.Creator = "octocat"
	}
	if dep.CreatedAt.IsZero() {
		dep.CreatedAt = now
	}
	d := s.dataOf(owner, repo)
	d.deployments = append(d.deployments, &deployment{Deployment: dep})
	return dep
}

// AddDeploymentStatus adds a status to a deployment and returns it with its
// ID and defaults.
func (s *Server) AddDeploymentStatus(owner, repo string, deploymentID int64, st DeploymentStatus) DeploymentStatus {
	s.tb.Helper()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dataOf(owner, repo)
	i := slices.IndexFunc(d.deployments, func(dep *deployment) bool { return dep.ID == deploymentID })
	if i < 0 {
		s.tb.Fatalf("ghfake: no deployment %d in %s/%s", deploymentID, owner, repo)
		return st
	}
	if st.ID == 0 {
		st.ID = s.newID()
	}
	if st.Creator == "" {
		st.Creator = "octocat"
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = now
	}
	d.deployments[i].statuses = append(d.deployments[i].statuses, st)
	return st
}

// SetTeamMember sets user's membership of the team org/slug: "active",
// "pending" (invited, not yet accepted), or "" to remove it.
func (s *Server) SetTeamMember(org, slug, user, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pulls.teams == nil {
		s.pulls.teams = map[string]string{}
	}
	k := strings.ToLower(org + "/" + slug + "/" + user)
	if state == "" {
		delete(s.pulls.teams, k)
		return
	}
	s.pulls.teams[k] = state
}

// SetContent stores a file at path on ref (a branch name or a SHA; the
// contents API answers only for the ref it was stored under). nil data
// removes it.
func (s *Server) SetContent(owner, repo, ref, path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dataOf(owner, repo)
	path = strings.Trim(path, "/")
	if data == nil {
		delete(d.contents[ref], path)
		return
	}
	if d.contents[ref] == nil {
		d.contents[ref] = map[string][]byte{}
	}
	d.contents[ref][path] = slices.Clone(data)
}

// MergePullRequest merges a pull request as mergedBy, with mergeSHA the
// merge commit on the base branch.
func (s *Server) MergePullRequest(owner, repo string, number int, mergeSHA, mergedBy string) {
	s.tb.Helper()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullOf(owner, repo, number)
	p.State, p.Merged, p.MergeCommitSHA, p.MergedBy = "closed", true, mergeSHA, mergedBy
	p.MergedAt, p.ClosedAt = now, now
}
