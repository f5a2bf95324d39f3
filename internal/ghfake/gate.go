package ghfake

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// GateAnswer is an answer to a deployment protection rule, as posted.
type GateAnswer struct {
	Owner, Repo string
	RunID       int64
	State       string `json:"state"`
	Environment string `json:"environment_name"`
	Comment     string `json:"comment"`
}

func (s *Server) gateRoutes() {
	s.Handle("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule", s.answerGate)
	s.Handle("GET", "/repos/{owner}/{repo}/environments/{environment_name}/deployment_protection_rules", s.listProtectionRules)
	s.Handle("GET", "/repos/{owner}/{repo}/compare/{basehead...}", s.compare)
	s.Handle("GET", "/repos/{owner}/{repo}/commits/{ref}", s.getCommit)
}

// SetProtectionRules makes an environment exist with custom deployment
// protection rules by the given Apps, enabled.
func (s *Server) SetProtectionRules(owner, repo, environment string, appIDs ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.protectionRules == nil {
		s.protectionRules = map[string][]int64{}
	}
	s.protectionRules[owner+"/"+repo+"/"+environment] = appIDs
}

// listProtectionRules answers an environment's custom rules; an unknown
// environment is a 404, as on GitHub.
func (s *Server) listProtectionRules(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	apps, ok := s.protectionRules[r.PathValue("owner")+"/"+r.PathValue("repo")+"/"+r.PathValue("environment_name")]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	rules := make([]map[string]any, len(apps))
	for i, id := range apps {
		rules[i] = map[string]any{"id": 100 + i, "node_id": "CDPR_" + strconv.Itoa(i), "enabled": true,
			"app": map[string]any{"id": id, "slug": appSlug, "integration_url": "https://api.github.com/apps/" + appSlug, "node_id": "A_" + strconv.FormatInt(id, 10)}}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"total_count": len(rules), "custom_deployment_protection_rules": rules})
}

// answerGate takes a protection rule's answer. Like GitHub it wants a
// state of approved or rejected and the environment's name, and answers 204.
func (s *Server) answerGate(w http.ResponseWriter, r *http.Request) {
	var a GateAnswer
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	runID, err := strconv.ParseInt(r.PathValue("run_id"), 10, 64)
	if err != nil || (a.State != "approved" && a.State != "rejected") || a.Environment == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	a.Owner, a.Repo, a.RunID = r.PathValue("owner"), r.PathValue("repo"), runID
	s.mu.Lock()
	s.gateAnswers = append(s.gateAnswers, a)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// GateAnswers are the protection-rule answers posted so far, in order.
func (s *Server) GateAnswers() []GateAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]GateAnswer(nil), s.gateAnswers...)
}

// SetCompare makes GET /repos/{owner}/{repo}/compare/BASE...HEAD answer the
// commits given (a merge group's, for example), each with its message.
func (s *Server) SetCompare(owner, repo, base, head string, messages map[string]string, order []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.compares == nil {
		s.compares = map[string][]compareCommit{}
	}
	var cs []compareCommit
	for _, sha := range order {
		cs = append(cs, compareCommit{sha: sha, message: messages[sha]})
	}
	s.compares[owner+"/"+repo+"/"+base+"..."+head] = cs
}

type compareCommit struct{ sha, message string }

func (s *Server) compare(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	cs, ok := s.compares[r.PathValue("owner")+"/"+r.PathValue("repo")+"/"+r.PathValue("basehead")]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	commits := make([]map[string]any, len(cs))
	for i, c := range cs {
		commits[i] = map[string]any{"sha": c.sha, "node_id": "C_" + c.sha, "commit": map[string]any{"message": c.message}}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"status": "ahead", "ahead_by": len(cs), "behind_by": 0,
		"total_commits": len(cs), "commits": commits, "files": []any{}})
}

// SetCommitMessage gives a commit the message GET
// /repos/{owner}/{repo}/commits/{ref} answers.
func (s *Server) SetCommitMessage(owner, repo, sha, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commitMessages == nil {
		s.commitMessages = map[string]string{}
	}
	s.commitMessages[owner+"/"+repo+"/"+sha] = message
}

// getCommit answers a commit whose message was set; others are unknown
// (422, as GitHub answers a ref it cannot resolve).
func (s *Server) getCommit(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("ref")
	s.mu.Lock()
	msg, ok := s.commitMessages[r.PathValue("owner")+"/"+r.PathValue("repo")+"/"+sha]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"sha": sha, "node_id": "C_" + sha,
		"commit": map[string]any{"message": msg}, "parents": []any{}, "files": []any{}})
}
