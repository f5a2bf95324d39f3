package ghfake

import (
	"net/http"
	"strings"
)

// RequiredCheck is a status check a branch rule requires, and the App
// that must post it (0: any source).
type RequiredCheck struct {
	Context       string
	IntegrationID int64
}

// BypassActor is an actor on a ruleset's bypass list.
type BypassActor struct {
	Type string // Integration, OrganizationAdmin, RepositoryRole, Team, DeployKey, User
	ID   int64
	Mode string // always, pull_request, exempt
}

func (s *Server) ruleRoutes() {
	s.Handle("GET", "/repos/{owner}/{repo}/rules/branches/{branch}", s.branchRules)
	s.Handle("GET", "/repos/{owner}/{repo}/rulesets/{ruleset_id}", s.ruleset)
	s.Handle("GET", "/repos/{owner}/{repo}/branches/{branch}/protection", s.branchProtection)
}

// SetClassicProtection grants the App administration: read on the
// repository, and makes classic branch protection on branch require
// checks (none: the branch is not protected).
func (s *Server) SetClassicProtection(owner, repo, branch string, checks ...RequiredCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dataOf(owner, repo)
	if d.classic == nil {
		d.classic = map[string][]RequiredCheck{}
	}
	d.classic[branch] = checks
}

// SetClassicAdminsExempt makes classic branch protection on branch leave
// out administrators (enforce_admins off), or include them again.
func (s *Server) SetClassicAdminsExempt(owner, repo, branch string, exempt bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dataOf(owner, repo)
	if d.openAdmins == nil {
		d.openAdmins = map[string]bool{}
	}
	d.openAdmins[branch] = exempt
}

// SetBypassActors sets the bypass list of the repository's ruleset (the
// one SetRequiredChecks configures).
func (s *Server) SetBypassActors(owner, repo string, actors ...BypassActor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataOf(owner, repo).bypass = actors
}

// ruleset answers the repository's ruleset, id 1. As on GitHub, its
// bypass list is shown only to a caller that may administer the
// repository (here: an App granted administration by
// SetClassicProtection).
func (s *Server) ruleset(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	if repo == nil || r.PathValue("ruleset_id") != "1" {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	d := s.dataOf(repo.Owner, repo.Name)
	out := map[string]any{"id": 1, "name": "production", "target": "branch", "source_type": "Repository",
		"source": repo.FullName(), "enforcement": "active", "current_user_can_bypass": "never"}
	if d.classic != nil {
		actors := []map[string]any{}
		for _, a := range d.bypass {
			actors = append(actors, map[string]any{"actor_id": a.ID, "actor_type": a.Type, "bypass_mode": a.Mode})
		}
		out["bypass_actors"] = actors
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, out)
}

// branchProtection answers classic branch protection: 403 unless the App
// may read administration (SetClassicProtection), 404 "Branch not
// protected" for a branch without it.
func (s *Server) branchProtection(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	var checks []RequiredCheck
	readable, protected, openAdmins := false, false, false
	if repo != nil {
		d := s.dataOf(repo.Owner, repo.Name)
		readable = d.classic != nil
		checks, protected = d.classic[r.PathValue("branch")]
		protected = protected && len(checks) > 0
		openAdmins = d.openAdmins[r.PathValue("branch")]
	}
	s.mu.Unlock()
	switch {
	case !readable:
		writeError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	case !protected:
		writeError(w, http.StatusNotFound, "Branch not protected")
		return
	}
	list := []map[string]any{}
	for _, c := range checks {
		list = append(list, map[string]any{"context": c.Context, "app_id": c.IntegrationID})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"url": s.srv.URL + r.URL.Path,
		"required_status_checks": map[string]any{"strict": false, "checks": list, "contexts": []string{}},
		"enforce_admins":         map[string]any{"url": s.srv.URL + r.URL.Path + "/enforce_admins", "enabled": !openAdmins}})
}

// SetRequiredChecks makes the rules in force on a branch one
// required_status_checks rule with checks; none removes it.
func (s *Server) SetRequiredChecks(owner, repo, branch string, checks ...RequiredCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dataOf(owner, repo)
	if d.rules == nil {
		d.rules = map[string][]RequiredCheck{}
	}
	if len(checks) == 0 {
		delete(d.rules, branch)
		return
	}
	d.rules[branch] = checks
}

// branchRules answers the rules in force on a branch, as GitHub lists
// them with metadata read.
func (s *Server) branchRules(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	var out []map[string]any
	if repo != nil {
		if checks := s.dataOf(repo.Owner, repo.Name).rules[strings.TrimPrefix(r.PathValue("branch"), "refs/heads/")]; len(checks) > 0 {
			var params []map[string]any
			for _, c := range checks {
				p := map[string]any{"context": c.Context}
				if c.IntegrationID != 0 {
					p["integration_id"] = c.IntegrationID
				}
				params = append(params, p)
			}
			out = append(out, map[string]any{"type": "required_status_checks", "ruleset_source_type": "Repository",
				"ruleset_source": repo.FullName(), "ruleset_id": 1,
				"parameters": map[string]any{"required_status_checks": params, "strict_required_status_checks_policy": false}})
		}
	}
	s.mu.Unlock()
	WriteJSON(w, http.StatusOK, nonNil(out))
}
