// Package evidence is changegate's change record and its tamper evidence: the
// record's canonical JSON, its signed in-toto/DSSE envelope, the RFC 6962
// Merkle log of envelopes, signed C2SP checkpoints, and an offline verifier.
//
// It is storage-agnostic: callers persist envelopes, leaf hashes, checkpoints
// and index rows, and hand them back to Verify through a Source. Verification
// always works on the stored bytes, never on a re-marshalled struct.
package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/changegate/changegate/internal/change"
)

// Schema names the record format. It doubles as the in-toto predicate type:
// the predicate type is what tells a consumer how to read the predicate.
const (
	Schema        = "https://changegate.dev/change-record/v1"
	PredicateType = Schema
	// PayloadType is the DSSE payload type of an in-toto Statement.
	PayloadType = "application/vnd.in-toto+json"
)

// ChangeType says what kind of production change a record is about.
type ChangeType string

const (
	// Standard is a pull request merged into a production branch.
	Standard ChangeType = "standard"
	// Emergency is a merge under the emergency label; a manager's approval
	// is owed within the policy's window.
	Emergency ChangeType = "emergency"
	// Bypass is a merge made while the decision was not success.
	Bypass ChangeType = "bypass"
	// DirectPush is a push to a production branch not covered by a merged PR.
	DirectPush ChangeType = "direct_push"
	// Deployment is a successful deployment to a production environment.
	Deployment ChangeType = "deployment"
	// ControlConfig is a change in whether changegate is enforced on a
	// production branch or environment: the control over the tool itself.
	ControlConfig ChangeType = "control_config"
)

func (t ChangeType) valid() bool {
	switch t {
	case Standard, Emergency, Bypass, DirectPush, Deployment, ControlConfig:
		return true
	}
	return false
}

// Exception kinds.
const (
	ExceptionEmergency  = "emergency"
	ExceptionBypass     = "bypass"
	ExceptionDirectPush = "direct_push"
	// ExceptionUnrecorded is a change reconciliation found on a production
	// branch that no webhook had brought: a merge or a push made while
	// changegate was down, or whose delivery was lost.
	ExceptionUnrecorded = "unrecorded"
	// ExceptionControlOff is a production branch or environment on which
	// changegate stopped being enforced; restoring it closes the exception.
	ExceptionControlOff = "control_off"
)

// Exception states, as the index holds them. They are a property of the whole
// log, not of one record: a record's exception is closed by a later record.
const (
	ExceptionStateNone    = ""
	ExceptionStateOpen    = "open"
	ExceptionStateClosed  = "closed"
	ExceptionStateClosing = "closing" // the record that closes another's exception
)

// Record is one production change, as archived. Once signed it never changes:
// a later fact (an approval after the fact) is a new record that links back.
type Record struct {
	Schema      string          `json:"schema"`
	ID          string          `json:"id"`
	Repo        change.Repo     `json:"repo"`
	Subject     Subject         `json:"subject"`
	ChangeType  ChangeType      `json:"change_type"`
	Facts       change.Facts    `json:"facts"`
	Decision    change.Decision `json:"decision"`
	Policy      Policy          `json:"policy"`
	ObservedAt  time.Time       `json:"observed_at"`
	DeliveryIDs []string        `json:"delivery_ids"`
	AppVersion  string          `json:"app_version"`
	Exception   *Exception      `json:"exception,omitempty"`
	// Control is, for a control_config record, the state that changed.
	Control *ControlChange `json:"control,omitempty"`
	// Backfilled marks a change archived from what GitHub and Jira said
	// after the fact (changegate backfill), not observed live: its event
	// time is the merge or push, ObservedAt when it was archived.
	Backfilled bool `json:"backfilled,omitempty"`
	// Links are the ids of related records, for example the change records
	// of the commit a deployment shipped.
	Links []string `json:"links,omitempty"`
	// Gate is changegate's answer to the deployment's protection rule,
	// when it was asked.
	Gate *change.GateAnswer `json:"gate,omitempty"`
	// DeploymentReviews are the approvals and rejections of the deployment
	// by an environment's required reviewers in GitHub.
	DeploymentReviews []change.DeploymentReview `json:"deployment_reviews,omitempty"`
	// MergeGroup is the merge queue entry a pull request merged in: the
	// merged commit, bound to the pull request's head and evidence above.
	MergeGroup *change.MergeGroup `json:"merge_group,omitempty"`
}

// Subject is the change a record is about. PR is zero for a direct push or
// a deployment; MergeSHA is empty when nothing was merged.
type Subject struct {
	PR       int    `json:"pr,omitempty"`
	BaseRef  string `json:"base_ref"`
	HeadSHA  string `json:"head_sha"`
	MergeSHA string `json:"merge_sha,omitempty"`
}

// SHA is the commit the record attests to: the merge commit when there is
// one, which is what reached production.
func (s Subject) SHA() string {
	if s.MergeSHA != "" {
		return s.MergeSHA
	}
	return s.HeadSHA
}

// Policy identifies the effective policy the decision was made under.
type Policy struct {
	Digest string `json:"digest"`
	Source string `json:"source,omitempty"`
	// Invalid quotes the error of a repository policy that could not be
	// used; Digest and Source are then the baseline's, which decided what
	// production is.
	Invalid string `json:"invalid,omitempty"`
}

// Exception is a change that did not meet policy when it shipped, or the
// record that later closes one (Closes names the record it closes).
type Exception struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// Justification is what the person who bypassed the rules wrote: for
	// a merge, the body of the merge commit's message, where GitHub keeps
	// a ruleset bypass's stated reason.
	Justification string `json:"justification,omitempty"`
	// By is who merged or pushed.
	By       string    `json:"by,omitempty"`
	OpenedAt time.Time `json:"opened_at"`
	DueAt    time.Time `json:"due_at,omitzero"`
	Closes   string    `json:"closes,omitempty"`
}

// ControlChange is a change in whether changegate is enforced on a target
// (branch:NAME or environment:NAME), as the control watch saw it.
type ControlChange struct {
	Target       string    `json:"target"`
	Enforced     bool      `json:"enforced"`
	Detail       string    `json:"detail"`
	WasEnforced  *bool     `json:"was_enforced,omitempty"` // nil: first seen
	BeforeDetail string    `json:"before_detail,omitempty"`
	SeenAt       time.Time `json:"seen_at"`
}

// SubjectKey is what a record is about, for its id and the index's sha
// column: the commit attested to, or for a control_config record, its
// target and when the change was seen.
func SubjectKey(r *Record) string {
	if r.ChangeType == ControlConfig && r.Control != nil {
		return "control:" + r.Control.Target + "@" + FormatTime(r.Control.SeenAt)
	}
	return r.Subject.SHA()
}

// Validate checks what every record must hold to be useful as evidence.
func (r *Record) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.Schema != Schema {
		bad("schema %q is not %q", r.Schema, Schema)
	}
	if r.ID == "" {
		bad("id is empty")
	}
	if r.Repo.Owner == "" || r.Repo.Name == "" {
		bad("repo %q is not owner/name", r.Repo)
	}
	if !r.ChangeType.valid() {
		bad("change_type %q is not one of standard, emergency, bypass, direct_push, deployment, control_config", r.ChangeType)
	}
	switch {
	case r.ChangeType == ControlConfig:
		if r.Control == nil || r.Control.Target == "" || r.Control.SeenAt.IsZero() {
			bad("a control_config record must name its target and when the change was seen")
		}
	case !isCommitSHA(r.Subject.HeadSHA):
		bad("subject.head_sha %q is not a 40-hex commit SHA", r.Subject.HeadSHA)
	}
	if r.Subject.MergeSHA != "" && !isCommitSHA(r.Subject.MergeSHA) {
		bad("subject.merge_sha %q is not a 40-hex commit SHA", r.Subject.MergeSHA)
	}
	if r.ObservedAt.IsZero() {
		bad("observed_at is zero")
	}
	if (r.ChangeType == Bypass || r.ChangeType == DirectPush) && r.Exception == nil {
		bad("a %s record must carry an exception", r.ChangeType)
	}
	if e := r.Exception; e != nil {
		switch e.Kind {
		case ExceptionEmergency, ExceptionBypass, ExceptionDirectPush, ExceptionUnrecorded, ExceptionControlOff:
		default:
			bad("exception.kind %q is not one of emergency, bypass, direct_push, unrecorded, control_off", e.Kind)
		}
		if e.Closes == r.ID && e.Closes != "" {
			bad("exception closes its own record")
		}
	}
	for i, l := range r.Links {
		if l == "" {
			bad("links[%d] is empty", i)
		}
	}
	return errors.Join(errs...)
}

// exceptionState is the record's own contribution to the exception state the
// index holds: closing, open or none. Verify turns open into closed when a
// later record closes it.
func (r *Record) exceptionState() string {
	switch {
	case r.Exception == nil:
		return ExceptionStateNone
	case r.Exception.Closes != "":
		return ExceptionStateClosing
	default:
		return ExceptionStateOpen
	}
}

func isCommitSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Index field names. The SQL index stores these per sequence number, and
// Verify compares them with the records.
const (
	FieldID             = "id"
	FieldRepo           = "repo"
	FieldPR             = "pr"
	FieldSHA            = "sha"
	FieldChangeType     = "change_type"
	FieldMergedAt       = "merged_at"
	FieldObservedAt     = "observed_at"
	FieldOutcome        = "outcome"
	FieldCompliant      = "compliant"
	FieldTicket         = "ticket"
	FieldException      = "exception"
	FieldExceptionDue   = "exception_due"
	FieldCloses         = "closes"
	FieldExceptionState = "exception_state"
	FieldEventTime      = "event_time" // SortableTime
	FieldSummary        = "summary"    // SummaryJSON
)

// IndexFields returns the queryable fields of a record, as strings, the way
// the index must store them. The one field it cannot know is
// FieldExceptionState, which depends on later records: an index writer sets
// it to ExceptionStateOpen or ExceptionStateClosing when it writes the record,
// and to ExceptionStateClosed when a later record closes it.
func IndexFields(r *Record) map[string]string {
	fields := indexFields(r)
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		m[f.name] = f.value
	}
	return m
}

type indexField struct{ name, value string }

// indexFields is IndexFields as a list, in no particular order, which
// Verify compares with every index row without building a map.
func indexFields(r *Record) [15]indexField {
	pr, exception, due, closes := "", "", "", ""
	if r.Subject.PR != 0 {
		pr = strconv.Itoa(r.Subject.PR)
	}
	if e := r.Exception; e != nil {
		exception, due, closes = e.Kind, FormatTime(e.DueAt), e.Closes
	}
	return [...]indexField{
		{FieldID, r.ID},
		{FieldRepo, r.Repo.String()},
		{FieldPR, pr},
		{FieldSHA, SubjectKey(r)},
		{FieldChangeType, string(r.ChangeType)},
		{FieldMergedAt, FormatTime(r.Facts.PR.MergedAt)},
		{FieldObservedAt, FormatTime(r.ObservedAt)},
		{FieldOutcome, string(r.Decision.Outcome)},
		{FieldCompliant, strconv.FormatBool(r.Decision.Outcome == change.Compliant)},
		{FieldTicket, ticketKey(&r.Facts)},
		{FieldException, exception},
		{FieldExceptionDue, due},
		{FieldCloses, closes},
		{FieldEventTime, SortableEventTime(r)},
		{FieldSummary, SummaryJSON(r)},
	}
}

// ticketKey is the ticket an auditor samples by: the first one found in Jira,
// else the first one named.
func ticketKey(f *change.Facts) string {
	for _, t := range f.Tickets {
		if t.Result == change.LookupFound {
			return t.Key
		}
	}
	if len(f.Tickets) > 0 {
		return f.Tickets[0].Key
	}
	return ""
}

// FormatTime is how times appear in index rows and exports: UTC RFC 3339,
// empty when zero.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// RecordID is a record's identity: one record per repository, commit and
// change type, whichever delivery produced it, and for a record that closes
// another's exception, per record closed.
func RecordID(repo, sha string, t ChangeType, closes string) string {
	key := repo + "\x00" + sha + "\x00" + string(t)
	if closes != "" {
		key += "\x00closes\x00" + closes
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
