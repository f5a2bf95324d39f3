package change

import "time"

// Controls, in the order they are reported.
const (
	ControlTicket          = "ticket"
	ControlPeerReview      = "peer_review"
	ControlStaging         = "staging"
	ControlManagerApproval = "manager_approval"
)

// Controls lists every control in report order.
var Controls = []string{ControlTicket, ControlPeerReview, ControlStaging, ControlManagerApproval}

// Result of one control.
type Result string

const (
	Pass    Result = "pass"
	Fail    Result = "fail"
	Pending Result = "pending" // could not be decided: a fact is missing; retried
)

// Evidence is one fact a control relied on, with a link for people.
type Evidence struct {
	Kind   string `json:"kind"`   // ticket, review, deployment, check_run, status, team, jira_approval
	Ref    string `json:"ref"`    // key, reviewer, environment, check name, …
	Detail string `json:"detail"` // status, state, SHA, time…
	URL    string `json:"url,omitempty"`
}

// ControlResult is the outcome of one control.
type ControlResult struct {
	Control  string     `json:"control"`
	Result   Result     `json:"result"`
	Reasons  []string   `json:"reasons,omitempty"`
	Evidence []Evidence `json:"evidence,omitempty"`
	// Fix is the single next action that would satisfy the control.
	Fix string `json:"fix,omitempty"`
	// Ignored lists the approvals the control did not count, and why.
	Ignored []Ignored `json:"ignored,omitempty"`
}

// Ignored is an approval a control did not count.
type Ignored struct {
	User string `json:"user"`
	Why  string `json:"why"`
}

// Outcome of a decision as a whole.
type Outcome string

const (
	// Compliant: every control passed.
	Compliant Outcome = "compliant"
	// NonCompliant: at least one control failed.
	NonCompliant Outcome = "non_compliant"
	// Undecided: no control failed, but at least one could not be decided.
	Undecided Outcome = "undecided"
	// NotProduction: the pull request does not change production.
	NotProduction Outcome = "not_production"
	// Exempt: the policy exempts the change; the reason says why.
	Exempt Outcome = "exempt"
	// InvalidPolicy: the policy could not be loaded; nothing was evaluated.
	InvalidPolicy Outcome = "invalid_policy"
)

// Decision is what the policy concluded about one Facts snapshot.
type Decision struct {
	Outcome  Outcome         `json:"outcome"`
	Reason   string          `json:"reason,omitempty"` // for not_production, exempt and invalid_policy
	Controls []ControlResult `json:"controls,omitempty"`
	// Emergency is true when the emergency label applied: only the ticket
	// and one review are required now, and the manager's approval is owed
	// within the policy's window.
	Emergency bool `json:"emergency,omitempty"`
	// EmergencyWindow is the policy's window for that approval.
	EmergencyWindow time.Duration `json:"emergency_window,omitempty"`
	// PolicyDigest is the SHA-256 of the effective policy's canonical form.
	PolicyDigest string `json:"policy_digest"`
	// PolicySource says where the policy came from (repo file, org file,
	// server default), for people.
	PolicySource string `json:"policy_source,omitempty"`
	// RecheckAt is when a pending control will decide by itself (a
	// promotion's soak ends): evaluate again then.
	RecheckAt time.Time `json:"recheck_at,omitzero"`
}

// Control returns the result for one control, if evaluated.
func (d Decision) Control(name string) (ControlResult, bool) {
	for _, c := range d.Controls {
		if c.Control == name {
			return c, true
		}
	}
	return ControlResult{}, false
}
