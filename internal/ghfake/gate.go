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
