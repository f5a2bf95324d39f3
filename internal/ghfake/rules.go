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

func (s *Server) ruleRoutes() {
	s.Handle("GET", "/repos/{owner}/{repo}/rules/branches/{branch}", s.branchRules)
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
