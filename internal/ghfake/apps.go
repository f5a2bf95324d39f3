package ghfake

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// routes registers the endpoints the fake implements itself.
func (s *Server) routes() {
	s.Handle("GET", "/app/installations", s.listInstallations)
	s.Handle("GET", "/app/installations/{installation_id}", s.getInstallation)
	s.Handle("POST", "/app/installations/{installation_id}/access_tokens", s.createToken)
	s.Handle("GET", "/installation/repositories", s.listInstallationRepos)
	s.Handle("GET", "/repos/{owner}/{repo}", s.getRepo)
	s.Handle("GET", "/repos/{owner}/{repo}/installation", s.getRepoInstallation)
	s.pullRoutes()
	s.checkRunRoutes()
	s.gateRoutes()
	s.manifestRoutes()
	s.gitRoutes()
	s.hookRoutes()
	s.ruleRoutes()
}

func (s *Server) listInstallations(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.installations))
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.installationJSON(s.installations[id]))
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, Paginate(w, r, out))
}

// installationPath looks up {installation_id}; it writes the 404 itself.
func (s *Server) installationPath(w http.ResponseWriter, r *http.Request) (*installation, bool) {
	id, _ := strconv.ParseInt(r.PathValue("installation_id"), 10, 64)
	s.mu.Lock()
	in := s.installations[id]
	s.mu.Unlock()
	if in == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return nil, false
	}
	return in, true
}

func (s *Server) getInstallation(w http.ResponseWriter, r *http.Request) {
	in, ok := s.installationPath(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	body := s.installationJSON(in)
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, body)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	in, ok := s.installationPath(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	suspended, perms, selection := in.Suspended, maps.Clone(in.Permissions), in.RepositorySelection
	s.mu.Unlock()
	if suspended {
		writeError(w, http.StatusForbidden, "This installation has been suspended")
		return
	}
	tok, exp := s.issueToken(in.ID)
	WriteJSON(w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           exp.UTC().Format(time.RFC3339),
		"permissions":          perms,
		"repository_selection": selection,
	})
}

func (s *Server) listInstallationRepos(w http.ResponseWriter, r *http.Request) {
	id, _ := CallerInstallation(r)
	s.mu.Lock()
	in := s.installations[id]
	all := make([]map[string]any, 0, len(in.repos))
	for _, repo := range in.repos {
		all = append(all, s.repoJSON(in, repo))
	}
	selection := in.RepositorySelection
	s.mu.Unlock()
	page := Paginate(w, r, all)
	WriteJSON(w, http.StatusOK, map[string]any{
		"total_count":          len(all),
		"repository_selection": selection,
		"repositories":         page,
	})
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	id, _ := CallerInstallation(r)
	s.mu.Lock()
	in := s.installations[id]
	repo := in.repo(r.PathValue("owner"), r.PathValue("repo"))
	var body map[string]any
	if repo != nil {
		body = s.repoJSON(in, *repo)
	}
	s.mu.Unlock()
	if body == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	WriteJSON(w, http.StatusOK, body)
}

func (s *Server) getRepoInstallation(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var body map[string]any
	for _, in := range s.installations {
		if in.repo(r.PathValue("owner"), r.PathValue("repo")) != nil {
			body = s.installationJSON(in)
			break
		}
	}
	s.mu.Unlock()
	if body == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	WriteJSON(w, http.StatusOK, body)
}

// ts formats times as GitHub does: UTC, seconds, Z.
func ts(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// accountJSON is GitHub's simple-user.
func (s *Server) accountJSON(login string, id int64, typ string) map[string]any {
	api := s.srv.URL
	return map[string]any{
		"login":               login,
		"id":                  id,
		"node_id":             fmt.Sprintf("MDQ6VXNlcjE%d", id),
		"avatar_url":          "https://avatars.githubusercontent.com/u/" + strconv.FormatInt(id, 10) + "?v=4",
		"gravatar_id":         "",
		"url":                 api + "/users/" + login,
		"html_url":            "https://github.com/" + login,
		"followers_url":       api + "/users/" + login + "/followers",
		"following_url":       api + "/users/" + login + "/following{/other_user}",
		"gists_url":           api + "/users/" + login + "/gists{/gist_id}",
		"starred_url":         api + "/users/" + login + "/starred{/owner}{/repo}",
		"subscriptions_url":   api + "/users/" + login + "/subscriptions",
		"organizations_url":   api + "/users/" + login + "/orgs",
		"repos_url":           api + "/users/" + login + "/repos",
		"events_url":          api + "/users/" + login + "/events{/privacy}",
		"received_events_url": api + "/users/" + login + "/received_events",
		"type":                typ,
		"site_admin":          false,
	}
}

// installationJSON is GitHub's installation schema; callers hold s.mu.
func (s *Server) installationJSON(in *installation) map[string]any {
	api := s.srv.URL
	var suspendedAt, suspendedBy any
	if in.Suspended {
		suspendedAt = ts(in.createdAt)
		suspendedBy = s.accountJSON("octocat", 1, "User")
	}
	htmlURL := "https://github.com/settings/installations/" + strconv.FormatInt(in.ID, 10)
	if in.AccountType == "Organization" {
		htmlURL = "https://github.com/organizations/" + in.Account + "/settings/installations/" + strconv.FormatInt(in.ID, 10)
	}
	return map[string]any{
		"id":                   in.ID,
		"account":              s.accountJSON(in.Account, in.AccountID, in.AccountType),
		"app_id":               s.appID,
		"app_slug":             "changegate",
		"target_id":            in.AccountID,
		"target_type":          in.AccountType,
		"repository_selection": in.RepositorySelection,
		"access_tokens_url":    api + "/app/installations/" + strconv.FormatInt(in.ID, 10) + "/access_tokens",
		"repositories_url":     api + "/installation/repositories",
		"html_url":             htmlURL,
		"permissions":          maps.Clone(in.Permissions),
		"events":               []string{"check_run", "check_suite", "deployment_protection_rule", "pull_request", "pull_request_review", "push"},
		"single_file_name":     nil,
		"created_at":           ts(in.createdAt),
		"updated_at":           ts(in.createdAt),
		"suspended_at":         suspendedAt,
		"suspended_by":         suspendedBy,
	}
}

// repoJSON is the part of GitHub's repository schema changegate reads, plus
// the URLs clients follow; callers hold s.mu.
func (s *Server) repoJSON(in *installation, r Repo) map[string]any {
	api := s.srv.URL + "/repos/" + r.FullName()
	ownerType := "User"
	if strings.EqualFold(r.Owner, in.Account) {
		ownerType = in.AccountType
	}
	visibility := "public"
	if r.Private {
		visibility = "private"
	}
	return map[string]any{
		"id":                r.ID,
		"node_id":           fmt.Sprintf("R_kgDO%d", r.ID),
		"name":              r.Name,
		"full_name":         r.FullName(),
		"owner":             s.accountJSON(r.Owner, in.AccountID, ownerType),
		"private":           r.Private,
		"visibility":        visibility,
		"html_url":          "https://github.com/" + r.FullName(),
		"description":       nil,
		"fork":              false,
		"url":               api,
		"pulls_url":         api + "/pulls{/number}",
		"commits_url":       api + "/commits{/sha}",
		"statuses_url":      api + "/statuses/{sha}",
		"deployments_url":   api + "/deployments",
		"contents_url":      api + "/contents/{+path}",
		"default_branch":    r.DefaultBranch,
		"archived":          false,
		"disabled":          false,
		"created_at":        ts(in.createdAt),
		"updated_at":        ts(in.createdAt),
		"pushed_at":         ts(in.createdAt),
		"clone_url":         "https://github.com/" + r.FullName() + ".git",
		"open_issues_count": 0,
	}
}
