package ghfake

import (
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GitHub's caps on the pull request lists: the PR's own counts go on.
const (
	MaxPullFiles   = 3000
	MaxPullCommits = 250
)

// pullRoutes registers the pull-request, commit-evidence, contents and team
// endpoints. The check-run endpoints live in checkruns.go.
func (s *Server) pullRoutes() {
	s.Handle("GET", "/repos/{owner}/{repo}/pulls", s.listPulls)
	s.Handle("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", s.getPull)
	s.Handle("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files", s.listPullFiles)
	s.Handle("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", s.listPullCommits)
	s.Handle("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", s.listPullReviews)
	s.Handle("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls", s.listCommitPulls)
	s.Handle("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", s.listStatuses)
	s.Handle("GET", "/repos/{owner}/{repo}/deployments", s.listDeployments)
	s.Handle("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses", s.listDeploymentStatuses)
	s.Handle("GET", "/repos/{owner}/{repo}/contents/{path...}", s.getContent)
	s.Handle("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}", s.getTeamMembership)
	s.Handle("GET", "/orgs/{org}/teams/{team_slug}/members", s.listTeamMembers)
}

// pullPath looks up {owner}/{repo}#{pull_number} for the caller; it writes
// the 404 itself. It returns with s.mu held when ok.
func (s *Server) pullPath(w http.ResponseWriter, r *http.Request) (*installation, *Repo, *pull, bool) {
	n, err := strconv.Atoi(r.PathValue("pull_number"))
	s.mu.Lock()
	in, repo := s.callerRepo(r)
	var p *pull
	if err == nil && repo != nil {
		p = s.dataOf(repo.Owner, repo.Name).pulls[n]
	}
	if p == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return nil, nil, nil, false
	}
	return in, repo, p, true
}

// callerRepo is the {owner}/{repo} of r as the caller's installation sees
// it; callers hold s.mu. The auth layer already answered 404 for others.
func (s *Server) callerRepo(r *http.Request) (*installation, *Repo) {
	id, _ := CallerInstallation(r)
	in := s.installations[id]
	if in == nil {
		return nil, nil
	}
	return in, in.repo(r.PathValue("owner"), r.PathValue("repo"))
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	in, repo, p, ok := s.pullPath(w, r)
	if !ok {
		return
	}
	body := s.pullJSON(in, *repo, p, true)
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, body)
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := cmp.Or(q.Get("state"), "open")
	s.mu.Lock()
	in, repo := s.callerRepo(r)
	var out []map[string]any
	if repo != nil {
		d := s.dataOf(repo.Owner, repo.Name)
		nums := slices.Sorted(maps.Keys(d.pulls))
		slices.Reverse(nums) // GitHub's default: newest first
		for _, n := range nums {
			p := d.pulls[n]
			switch {
			case state != "all" && p.State != state,
				q.Get("base") != "" && q.Get("base") != p.BaseRef,
				q.Get("head") != "" && !strings.EqualFold(q.Get("head"), repo.Owner+":"+p.HeadRef):
				continue
			}
			out = append(out, s.pullJSON(in, *repo, p, false))
		}
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, nonNil(Paginate(w, r, out)))
}

func (s *Server) listPullFiles(w http.ResponseWriter, r *http.Request) {
	_, repo, p, ok := s.pullPath(w, r)
	if !ok {
		return
	}
	files := p.files[:min(len(p.files), MaxPullFiles)]
	out := make([]map[string]any, 0, len(files))
	for _, f := range files {
		out = append(out, s.fileJSON(*repo, p, f))
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, Paginate(w, r, out))
}

func (s *Server) listPullCommits(w http.ResponseWriter, r *http.Request) {
	_, repo, p, ok := s.pullPath(w, r)
	if !ok {
		return
	}
	commits := p.commits[:min(len(p.commits), MaxPullCommits)]
	out := make([]map[string]any, 0, len(commits))
	for i, c := range commits {
		parents := c.Parents
		if parents == nil && i > 0 {
			parents = []string{commits[i-1].SHA}
		}
		out = append(out, s.commitJSON(*repo, c, parents))
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, Paginate(w, r, out))
}

func (s *Server) listPullReviews(w http.ResponseWriter, r *http.Request) {
	_, repo, p, ok := s.pullPath(w, r)
	if !ok {
		return
	}
	out := make([]map[string]any, 0, len(p.reviews))
	for _, rv := range p.reviews {
		out = append(out, s.reviewJSON(*repo, p, rv))
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, Paginate(w, r, out))
}

// listCommitPulls answers the pull requests a commit belongs to: those
// whose commits include it, whose head it is, or that it merged.
func (s *Server) listCommitPulls(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("commit_sha")
	s.mu.Lock()
	in, repo := s.callerRepo(r)
	var out []map[string]any
	if repo != nil {
		d := s.dataOf(repo.Owner, repo.Name)
		for _, n := range slices.Sorted(maps.Keys(d.pulls)) {
			p := d.pulls[n]
			if p.HeadSHA == sha || p.MergeCommitSHA == sha || slices.ContainsFunc(p.commits, func(c Commit) bool { return c.SHA == sha }) {
				out = append(out, s.pullJSON(in, *repo, p, false))
			}
		}
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, nonNil(Paginate(w, r, out)))
}

// listStatuses answers a commit's statuses, newest first. ref may be a SHA
// or the head branch of a pull request.
func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	var out []map[string]any
	if repo != nil {
		d := s.dataOf(repo.Owner, repo.Name)
		sha := d.resolve(r.PathValue("ref"))
		for i := len(d.statuses) - 1; i >= 0; i-- {
			if st := d.statuses[i]; st.SHA == sha {
				out = append(out, s.statusJSON(*repo, st))
			}
		}
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, nonNil(Paginate(w, r, out)))
}

// resolve turns a pull request's head branch into its SHA; anything else is
// taken as a SHA. Callers hold s.mu.
func (d *repoData) resolve(ref string) string {
	ref = strings.TrimPrefix(ref, "heads/")
	for _, p := range d.pulls {
		if p.State == "open" && p.HeadRef == ref {
			return p.HeadSHA
		}
	}
	return ref
}

// listDeployments answers deployments newest first, filtered by sha, ref,
// task and environment.
func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	match := func(want, got string) bool { return want == "" || want == got }
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	var out []map[string]any
	if repo != nil {
		d := s.dataOf(repo.Owner, repo.Name)
		for i := len(d.deployments) - 1; i >= 0; i-- {
			dep := d.deployments[i]
			if match(q.Get("sha"), dep.SHA) && match(q.Get("ref"), dep.Ref) &&
				match(q.Get("task"), dep.Task) && match(q.Get("environment"), dep.Environment) {
				out = append(out, s.deploymentJSON(*repo, dep.Deployment))
			}
		}
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, nonNil(Paginate(w, r, out)))
}

// listDeploymentStatuses answers a deployment's statuses, newest first.
func (s *Server) listDeploymentStatuses(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("deployment_id"), 10, 64)
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	var dep *deployment
	if repo != nil {
		d := s.dataOf(repo.Owner, repo.Name)
		if i := slices.IndexFunc(d.deployments, func(x *deployment) bool { return x.ID == id }); i >= 0 {
			dep = d.deployments[i]
		}
	}
	if dep == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	out := make([]map[string]any, 0, len(dep.statuses))
	for i := len(dep.statuses) - 1; i >= 0; i-- {
		out = append(out, s.deploymentStatusJSON(*repo, dep.Deployment, dep.statuses[i]))
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, Paginate(w, r, out))
}

// getContent answers a file's contents on ?ref= (default: the default
// branch), base64 as GitHub sends it.
func (s *Server) getContent(w http.ResponseWriter, r *http.Request) {
	p := strings.Trim(r.PathValue("path"), "/")
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	var data []byte
	found := false
	var body any
	if repo != nil {
		ref := cmp.Or(r.URL.Query().Get("ref"), repo.DefaultBranch)
		tree := s.dataOf(repo.Owner, repo.Name).contents[strings.TrimPrefix(ref, "heads/")]
		if data, found = tree[p]; found {
			body = s.contentJSON(*repo, r.URL.Query().Get("ref"), p, data)
		} else if dir := s.dirJSON(*repo, ref, p, tree); len(dir) > 0 {
			body, found = dir, true
		}
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	WriteJSON(w, http.StatusOK, body)
}

// getTeamMembership answers a user's membership of a team. Installations
// see only the teams of their own organisation.
func (s *Server) getTeamMembership(w http.ResponseWriter, r *http.Request) {
	org, slug, user := r.PathValue("org"), r.PathValue("team_slug"), r.PathValue("username")
	id, _ := CallerInstallation(r)
	s.mu.Lock()
	in := s.installations[id]
	state, ok := s.pulls.teams[strings.ToLower(org+"/"+slug+"/"+user)]
	if in == nil || !strings.EqualFold(in.Account, org) {
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"url":   s.srv.URL + "/organizations/" + org + "/team/" + slug + "/memberships/" + user,
		"role":  "member",
		"state": state,
	})
}

// listTeamMembers lists a team's active members (pending invitations are
// not members), sorted, paged. Installations see only the teams of their
// own organisation; an unknown team is 404.
func (s *Server) listTeamMembers(w http.ResponseWriter, r *http.Request) {
	org, slug := r.PathValue("org"), r.PathValue("team_slug")
	id, _ := CallerInstallation(r)
	prefix := strings.ToLower(org + "/" + slug + "/")
	s.mu.Lock()
	in := s.installations[id]
	known := false
	var logins []string
	for k, state := range s.pulls.teams {
		if user, ok := strings.CutPrefix(k, prefix); ok {
			known = true
			if state == "active" {
				logins = append(logins, user)
			}
		}
	}
	s.mu.Unlock()
	if in == nil || !strings.EqualFold(in.Account, org) || !known {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	slices.Sort(logins)
	users := make([]any, 0, len(logins))
	for _, l := range Paginate(w, r, logins) {
		users = append(users, s.userJSON(l))
	}
	WriteJSON(w, http.StatusOK, users)
}

// userJSON is a simple-user for a login with a stable made-up ID; logins
// ending in [bot] are Bots.
func (s *Server) userJSON(login string) any {
	if login == "" {
		return nil
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(login)))
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return s.accountJSON(login, 100000+int64(h.Sum32()%100000000), typ)
}

// pullJSON is GitHub's pull-request schema, or pull-request-simple when
// full is false; callers hold s.mu.
func (s *Server) pullJSON(in *installation, repo Repo, p *pull, full bool) map[string]any {
	api := s.srv.URL + "/repos/" + repo.FullName()
	html := "https://github.com/" + repo.FullName() + "/pull/" + strconv.Itoa(p.Number)
	url := api + "/pulls/" + strconv.Itoa(p.Number)
	labels := make([]map[string]any, 0, len(p.Labels))
	for i, l := range p.Labels {
		labels = append(labels, map[string]any{
			"id": 9000 + i, "node_id": "LA_" + strconv.Itoa(9000+i), "url": api + "/labels/" + l,
			"name": l, "description": nil, "color": "ededed", "default": false,
		})
	}
	repoJSON := s.repoJSON(in, repo)
	branch := func(ref, sha string) map[string]any {
		return map[string]any{
			"label": repo.Owner + ":" + ref, "ref": ref, "sha": sha,
			"user": repoJSON["owner"], "repo": repoJSON,
		}
	}
	body := map[string]any{
		"url":                 url,
		"id":                  repo.ID*1000 + int64(p.Number),
		"node_id":             fmt.Sprintf("PR_kwDO%d", repo.ID*1000+int64(p.Number)),
		"html_url":            html,
		"diff_url":            html + ".diff",
		"patch_url":           html + ".patch",
		"issue_url":           api + "/issues/" + strconv.Itoa(p.Number),
		"commits_url":         url + "/commits",
		"review_comments_url": url + "/comments",
		"review_comment_url":  api + "/pulls/comments{/number}",
		"comments_url":        api + "/issues/" + strconv.Itoa(p.Number) + "/comments",
		"statuses_url":        api + "/statuses/" + p.HeadSHA,
		"number":              p.Number,
		"state":               p.State,
		"locked":              false,
		"title":               p.Title,
		"user":                s.userJSON(p.Author),
		"body":                nullable(p.Body),
		"labels":              labels,
		"milestone":           nil,
		"active_lock_reason":  nil,
		"created_at":          ts(p.CreatedAt),
		"updated_at":          ts(latest(p.CreatedAt, p.MergedAt, p.ClosedAt)),
		"closed_at":           tsOrNil(p.ClosedAt),
		"merged_at":           tsOrNil(p.MergedAt),
		"merge_commit_sha":    nullable(p.MergeCommitSHA),
		"assignee":            nil,
		"assignees":           []any{},
		"requested_reviewers": []any{},
		"requested_teams":     []any{},
		"head":                branch(p.HeadRef, p.HeadSHA),
		"base":                branch(p.BaseRef, p.BaseSHA),
		"_links": map[string]any{
			"self":     map[string]string{"href": url},
			"html":     map[string]string{"href": html},
			"commits":  map[string]string{"href": url + "/commits"},
			"statuses": map[string]string{"href": api + "/statuses/" + p.HeadSHA},
		},
		"author_association": "MEMBER",
		"auto_merge":         nil,
		"draft":              p.Draft,
	}
	if full {
		var add, del int
		for _, f := range p.files {
			add, del = add+f.Additions, del+f.Deletions
		}
		var mergedBy any
		if p.Merged {
			mergedBy = s.userJSON(p.MergedBy)
		}
		body["merged"] = p.Merged
		body["mergeable"] = nil
		body["rebaseable"] = nil
		body["mergeable_state"] = "unknown"
		body["merged_by"] = mergedBy
		body["comments"] = 0
		body["review_comments"] = 0
		body["maintainer_can_modify"] = false
		body["commits"] = len(p.commits)
		body["additions"] = add
		body["deletions"] = del
		body["changed_files"] = len(p.files)
	}
	return body
}

func (s *Server) fileJSON(repo Repo, p *pull, f File) map[string]any {
	sum := sha1.Sum([]byte(f.Filename))
	body := map[string]any{
		"sha":          hex.EncodeToString(sum[:]),
		"filename":     f.Filename,
		"status":       f.Status,
		"additions":    f.Additions,
		"deletions":    f.Deletions,
		"changes":      f.Additions + f.Deletions,
		"blob_url":     "https://github.com/" + repo.FullName() + "/blob/" + p.HeadSHA + "/" + f.Filename,
		"raw_url":      "https://github.com/" + repo.FullName() + "/raw/" + p.HeadSHA + "/" + f.Filename,
		"contents_url": s.srv.URL + "/repos/" + repo.FullName() + "/contents/" + f.Filename + "?ref=" + p.HeadSHA,
	}
	if f.PreviousFilename != "" {
		body["previous_filename"] = f.PreviousFilename
	}
	return body
}

func (s *Server) commitJSON(repo Repo, c Commit, parents []string) map[string]any {
	api := s.srv.URL + "/repos/" + repo.FullName()
	gitPerson := func(p Person) map[string]any {
		return map[string]any{"name": p.Name, "email": p.Email, "date": ts(c.Date)}
	}
	ps := make([]map[string]any, 0, len(parents))
	for _, sha := range parents {
		ps = append(ps, map[string]any{"sha": sha, "url": api + "/commits/" + sha, "html_url": "https://github.com/" + repo.FullName() + "/commit/" + sha})
	}
	return map[string]any{
		"sha":          c.SHA,
		"node_id":      "C_" + c.SHA,
		"url":          api + "/commits/" + c.SHA,
		"html_url":     "https://github.com/" + repo.FullName() + "/commit/" + c.SHA,
		"comments_url": api + "/commits/" + c.SHA + "/comments",
		"commit": map[string]any{
			"url":           api + "/git/commits/" + c.SHA,
			"author":        gitPerson(c.Author),
			"committer":     gitPerson(c.Committer),
			"message":       c.Message,
			"comment_count": 0,
			"tree":          map[string]any{"sha": c.SHA, "url": api + "/git/trees/" + c.SHA},
			"verification":  map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil},
		},
		"author":    s.userJSON(c.Author.Login),
		"committer": s.userJSON(c.Committer.Login),
		"parents":   ps,
	}
}

func (s *Server) reviewJSON(repo Repo, p *pull, rv Review) map[string]any {
	html := "https://github.com/" + repo.FullName() + "/pull/" + strconv.Itoa(p.Number) + "#pullrequestreview-" + strconv.FormatInt(rv.ID, 10)
	prURL := s.srv.URL + "/repos/" + repo.FullName() + "/pulls/" + strconv.Itoa(p.Number)
	body := map[string]any{
		"id":                 rv.ID,
		"node_id":            fmt.Sprintf("PRR_kwDO%d", rv.ID),
		"user":               s.userJSON(rv.User),
		"body":               rv.Body,
		"state":              rv.State,
		"html_url":           html,
		"pull_request_url":   prURL,
		"_links":             map[string]any{"html": map[string]string{"href": html}, "pull_request": map[string]string{"href": prURL}},
		"commit_id":          rv.CommitID,
		"author_association": "MEMBER",
	}
	if rv.State != "PENDING" {
		body["submitted_at"] = ts(rv.SubmittedAt)
	}
	return body
}

func (s *Server) statusJSON(repo Repo, st Status) map[string]any {
	return map[string]any{
		"url":         s.srv.URL + "/repos/" + repo.FullName() + "/statuses/" + st.SHA,
		"avatar_url":  nil,
		"id":          st.ID,
		"node_id":     fmt.Sprintf("SC_kwDO%d", st.ID),
		"state":       st.State,
		"description": nullable(st.Description),
		"target_url":  nullable(st.TargetURL),
		"context":     st.Context,
		"created_at":  ts(st.CreatedAt),
		"updated_at":  ts(st.CreatedAt),
		"creator":     s.userJSON(st.Creator),
	}
}

func (s *Server) deploymentJSON(repo Repo, d Deployment) map[string]any {
	api := s.srv.URL + "/repos/" + repo.FullName()
	url := api + "/deployments/" + strconv.FormatInt(d.ID, 10)
	return map[string]any{
		"url":                    url,
		"id":                     d.ID,
		"node_id":                fmt.Sprintf("DE_kwDO%d", d.ID),
		"sha":                    d.SHA,
		"ref":                    d.Ref,
		"task":                   d.Task,
		"payload":                map[string]any{},
		"original_environment":   d.Environment,
		"environment":            d.Environment,
		"description":            nullable(d.Description),
		"creator":                s.userJSON(d.Creator),
		"created_at":             ts(d.CreatedAt),
		"updated_at":             ts(d.CreatedAt),
		"statuses_url":           url + "/statuses",
		"repository_url":         api,
		"transient_environment":  false,
		"production_environment": d.Environment == "production",
	}
}

func (s *Server) deploymentStatusJSON(repo Repo, d Deployment, st DeploymentStatus) map[string]any {
	api := s.srv.URL + "/repos/" + repo.FullName()
	depURL := api + "/deployments/" + strconv.FormatInt(d.ID, 10)
	return map[string]any{
		"url":             depURL + "/statuses/" + strconv.FormatInt(st.ID, 10),
		"id":              st.ID,
		"node_id":         fmt.Sprintf("DES_kwDO%d", st.ID),
		"state":           st.State,
		"creator":         s.userJSON(st.Creator),
		"description":     st.Description,
		"environment":     d.Environment,
		"target_url":      st.LogURL,
		"log_url":         st.LogURL,
		"environment_url": st.EnvironmentURL,
		"created_at":      ts(st.CreatedAt),
		"updated_at":      ts(st.CreatedAt),
		"deployment_url":  depURL,
		"repository_url":  api,
	}
}

// contentJSON is GitHub's content-file: base64 wrapped at 60 columns, and
// the git blob SHA of the data.
func (s *Server) contentJSON(repo Repo, ref, p string, data []byte) map[string]any {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60] + "\n")
		enc = enc[60:]
	}
	b.WriteString(enc + "\n")
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	blob := hex.EncodeToString(h.Sum(nil))
	q := ""
	if ref != "" {
		q = "?ref=" + ref
	}
	self := s.srv.URL + "/repos/" + repo.FullName() + "/contents/" + p + q
	gitURL := s.srv.URL + "/repos/" + repo.FullName() + "/git/blobs/" + blob
	html := "https://github.com/" + repo.FullName() + "/blob/" + cmp.Or(ref, repo.DefaultBranch) + "/" + p
	return map[string]any{
		"type":         "file",
		"encoding":     "base64",
		"size":         len(data),
		"name":         path.Base(p),
		"path":         p,
		"content":      b.String(),
		"sha":          blob,
		"url":          self,
		"git_url":      gitURL,
		"html_url":     html,
		"download_url": "https://raw.githubusercontent.com/" + repo.FullName() + "/" + cmp.Or(ref, repo.DefaultBranch) + "/" + p,
		"_links":       map[string]any{"self": self, "git": gitURL, "html": html},
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func tsOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
