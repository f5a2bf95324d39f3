package ghfake

import (
	"cmp"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GitCommit is a commit pushed to a branch: the files it changes (nil
// data deletes one). The fake keeps each commit's whole tree, so that the
// contents API answers for any commit or branch, directories included, and
// the commit history API lists the commits that touched a path.
type GitCommit struct {
	SHA     string // required
	Message string
	Author  Person
	Date    time.Time // default: now
	Files   map[string][]byte
}

// gitCommit is a commit as kept: its parent and the paths it changed.
type gitCommit struct {
	GitCommit
	parent  string
	changed []string
}

func (s *Server) gitRoutes() {
	s.Handle("GET", "/repos/{owner}/{repo}/commits", s.listCommits)
}

// Push adds c on top of branch (creating the branch from from, a branch
// or commit, when it does not exist yet; "" starts an empty history) and
// returns c's SHA.
func (s *Server) Push(owner, repo, branch, from string, c GitCommit) string {
	s.tb.Helper()
	if c.SHA == "" {
		s.tb.Fatalf("ghfake: a pushed commit needs a SHA")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dataOf(owner, repo)
	if d.git == nil {
		d.git = map[string]*gitCommit{}
	}
	parent := d.branches[branch]
	if parent == "" {
		parent = cmp.Or(d.branches[from], from)
	}
	if c.Date.IsZero() {
		c.Date = s.now()
	}
	// A new history starts from what SetContent put on the branch.
	tree := maps.Clone(d.contents[cmp.Or(parent, branch)])
	if tree == nil {
		tree = map[string][]byte{}
	}
	var changed []string
	for p, data := range c.Files {
		p = strings.Trim(p, "/")
		changed = append(changed, p)
		if data == nil {
			delete(tree, p)
			continue
		}
		tree[p] = slices.Clone(data)
	}
	slices.Sort(changed)
	d.git[c.SHA] = &gitCommit{GitCommit: c, parent: parent, changed: changed}
	if d.branches == nil {
		d.branches = map[string]string{}
	}
	d.branches[branch] = c.SHA
	d.contents[c.SHA] = tree
	d.contents[branch] = maps.Clone(tree)
	return c.SHA
}

// listCommits answers GET /repos/{owner}/{repo}/commits?sha=&path=&since=&until=:
// the first-parent history from sha (default: the default branch), newest
// first, of the commits that changed path (a file or a directory), dated
// since.
func (s *Server) listCommits(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	if repo == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	d := s.dataOf(repo.Owner, repo.Name)
	if len(d.git) == 0 {
		s.mu.Unlock()
		WriteJSON(w, http.StatusOK, []any{}) // a repository whose history the test did not push
		return
	}
	q := r.URL.Query()
	ref := cmp.Or(q.Get("sha"), repo.DefaultBranch)
	sha := cmp.Or(d.branches[ref], ref)
	p := strings.Trim(q.Get("path"), "/")
	since, _ := time.Parse(time.RFC3339, q.Get("since"))
	until, _ := time.Parse(time.RFC3339, q.Get("until"))
	var out []map[string]any
	for c := d.git[sha]; c != nil; c = d.git[c.parent] {
		if c.Date.Before(since) || !until.IsZero() && c.Date.After(until) {
			continue
		}
		if p == "" || slices.ContainsFunc(c.changed, func(f string) bool { return f == p || strings.HasPrefix(f, p+"/") }) {
			out = append(out, s.gitCommitJSON(*repo, c))
		}
	}
	s.mu.Unlock()
	if out == nil && d.git[sha] == nil {
		writeError(w, http.StatusNotFound, "No commit found for SHA: "+sha)
		return
	}
	WriteJSON(w, http.StatusOK, Paginate(w, r, out))
}

func (s *Server) gitCommitJSON(repo Repo, c *gitCommit) map[string]any {
	who := map[string]any{"name": c.Author.Name, "email": c.Author.Email, "date": c.Date.UTC().Format(time.RFC3339)}
	parents := []any{}
	if c.parent != "" {
		parents = append(parents, map[string]any{"sha": c.parent, "url": s.srv.URL + "/repos/" + repo.FullName() + "/commits/" + c.parent})
	}
	var author any
	if c.Author.Login != "" {
		author = map[string]any{"login": c.Author.Login, "id": 1, "type": "User"}
	}
	return map[string]any{
		"sha": c.SHA, "node_id": "C_" + c.SHA, "url": s.srv.URL + "/repos/" + repo.FullName() + "/commits/" + c.SHA,
		"html_url": "https://github.com/" + repo.FullName() + "/commit/" + c.SHA,
		"commit":   map[string]any{"message": c.Message, "author": who, "committer": who, "comment_count": 0},
		"author":   author, "committer": author, "parents": parents,
	}
}

// dirJSON is the contents API's answer for a directory: its entries.
func (s *Server) dirJSON(repo Repo, ref, dir string, tree map[string][]byte) []map[string]any {
	seen := map[string]bool{}
	var out []map[string]any
	for _, p := range slices.Sorted(maps.Keys(tree)) {
		rest, ok := strings.CutPrefix(p, dir+"/")
		if dir == "" {
			rest, ok = p, true
		}
		if !ok {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		entry := map[string]any{"name": name, "path": path.Join(dir, name), "type": "file", "size": 0,
			"sha": strconv.Itoa(len(p)), "url": s.srv.URL + "/repos/" + repo.FullName() + "/contents/" + path.Join(dir, name) + "?ref=" + ref,
			"html_url": nil, "git_url": nil, "download_url": nil, "_links": map[string]any{"self": "", "git": nil, "html": nil}}
		if isDir {
			entry["type"] = "dir"
		} else {
			entry["size"] = len(tree[p])
		}
		out = append(out, entry)
	}
	return out
}
