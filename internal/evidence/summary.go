package evidence

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/change"
)

// Summary is what an auditor reads of a record in a population: the fields
// of one row, derived from the record alone. The index stores it (as
// FieldSummary) so that a population of a month is one query, and Verify
// compares the stored copy with the record, as it does every index field.
//
// Times are UTC RFC 3339 strings, empty when unknown.
type Summary struct {
	ID         string     `json:"id"`
	ChangeType ChangeType `json:"change_type"`
	// EventTime is when the change happened: the merge, the successful
	// deployment, or (for a direct push, whose commit dates the pusher
	// sets) when changegate observed it. A record that closes another's
	// exception happened when it was observed. Populations are periods of
	// event time.
	EventTime  string `json:"event_time"`
	ObservedAt string `json:"observed_at"`
	Repo       string `json:"repo"`
	PR         int    `json:"pr,omitempty"`
	Title      string `json:"title,omitempty"`
	URL        string `json:"url,omitempty"`
	BaseRef    string `json:"base_ref,omitempty"`
	HeadSHA    string `json:"head_sha"`
	Author     string `json:"author,omitempty"`

	Ticket TicketSummary `json:"ticket"`
	// Reviewers are the approvals the peer review control counted.
	Reviewers []Approver `json:"reviewers,omitempty"`
	// Manager is the approval the manager control counted.
	Manager Approver `json:"manager"`
	// Staging is the staging evidence the staging control counted, one
	// line per run.
	Staging []string `json:"staging,omitempty"`

	MergedBy    string `json:"merged_by,omitempty"`
	MergedAt    string `json:"merged_at,omitempty"`
	MergeSHA    string `json:"merge_sha,omitempty"`
	Environment string `json:"environment,omitempty"` // of a deployment
	DeployedAt  string `json:"deployed_at,omitempty"` // of a deployment
	Deployer    string `json:"deployer,omitempty"`

	Outcome   change.Outcome `json:"outcome"`
	Compliant bool           `json:"compliant"`
	Reason    string         `json:"reason,omitempty"`
	Emergency bool           `json:"emergency,omitempty"`
	Exception *Exception     `json:"exception,omitempty"`
	Links     []string       `json:"links,omitempty"`
	Policy    string         `json:"policy,omitempty"`
	// Backfilled: archived after the fact, not observed live.
	Backfilled bool `json:"backfilled,omitempty"`
}

// TicketSummary is the ticket an auditor samples by.
type TicketSummary struct {
	Key      string `json:"key,omitempty"`
	Status   string `json:"status,omitempty"`
	Type     string `json:"type,omitempty"`
	URL      string `json:"url,omitempty"`
	Summary  string `json:"summary,omitempty"`
	Reporter string `json:"reporter,omitempty"`
	Created  string `json:"created,omitempty"`
}

// Approver is one approval: who, when, and where it was given (a review,
// a manager team, a Jira group).
type Approver struct {
	Login  string `json:"login,omitempty"`
	At     string `json:"at,omitempty"`
	Source string `json:"source,omitempty"`
}

// Summarize derives a record's summary. It is pure.
func Summarize(r *Record) Summary {
	f := &r.Facts
	s := Summary{
		ID: r.ID, ChangeType: r.ChangeType,
		EventTime:  FormatTime(EventTime(r)),
		ObservedAt: FormatTime(r.ObservedAt),
		Repo:       r.Repo.String(), PR: r.Subject.PR,
		Title: f.PR.Title, URL: f.PR.URL, BaseRef: r.Subject.BaseRef, HeadSHA: r.Subject.HeadSHA,
		Author: f.PR.Author, Ticket: ticketSummary(f),
		Reviewers: reviewers(r), Manager: managerApproval(r), Staging: stagingEvidence(r),
		MergedBy: f.PR.MergedBy, MergedAt: FormatTime(f.PR.MergedAt), MergeSHA: r.Subject.MergeSHA,
		Outcome: r.Decision.Outcome, Compliant: r.Decision.Outcome == change.Compliant,
		Reason: r.Decision.Reason, Emergency: r.Decision.Emergency || r.ChangeType == Emergency,
		Exception: utcException(r.Exception), Links: r.Links, Policy: r.Policy.Digest, Backfilled: r.Backfilled,
	}
	if r.ChangeType == Deployment {
		if d, at, ok := successfulDeployment(f.Deployments); ok {
			s.Environment, s.DeployedAt, s.Deployer = d.Environment, FormatTime(at), d.Creator
		}
	}
	return s
}

// utcException is a copy of e with UTC times, as a record reads back once
// signed (EncodeRecord writes UTC), so that the summary of a record about
// to be appended is the summary of the record stored.
func utcException(e *Exception) *Exception {
	if e == nil {
		return nil
	}
	c := *e
	c.OpenedAt, c.DueAt = c.OpenedAt.UTC(), c.DueAt.UTC()
	if e.DueAt.IsZero() {
		c.DueAt = time.Time{}
	}
	return &c
}

// SummaryJSON is the summary as the index stores it: canonical JSON, which
// DecodeSummary reads with the plain decoder Verify uses for records.
func SummaryJSON(r *Record) string {
	s := Summarize(r)
	return string(appendSummary(make([]byte, 0, 1024), &s))
}

var decodeSummaryValue = compileDecoder(reflect.TypeFor[Summary](), map[reflect.Type]bool{})

// DecodeSummary decodes what SummaryJSON wrote, faster than json.Unmarshal
// for canonical JSON and exactly as it for anything else.
func DecodeSummary(data []byte, s *Summary) error {
	p := canonParser{data: data}
	if decodeValue(&p, decodeSummaryValue, reflect.ValueOf(s).Elem()) {
		if p.skipSpace(); p.pos == len(data) {
			return nil
		}
	}
	*s = Summary{}
	return json.Unmarshal(data, s)
}

// EventTime is when the change a record is about happened; see
// Summary.EventTime.
func EventTime(r *Record) time.Time {
	switch {
	case r.Exception != nil && r.Exception.Closes != "":
		return r.ObservedAt.UTC()
	case r.ChangeType == Deployment:
		if _, at, ok := successfulDeployment(r.Facts.Deployments); ok {
			return at.UTC()
		}
	case !r.Facts.PR.MergedAt.IsZero():
		return r.Facts.PR.MergedAt.UTC()
	}
	return r.ObservedAt.UTC()
}

// SortableTime is the layout of FieldEventTime in the index: fixed width,
// so that text order is time order.
const SortableTime = "2006-01-02T15:04:05.000000000Z"

// SortableEventTime is a record's FieldEventTime.
func SortableEventTime(r *Record) string { return EventTime(r).Format(SortableTime) }

// successfulDeployment is the earliest success status among a deployment
// record's deployments.
func successfulDeployment(deps []change.Deployment) (change.Deployment, time.Time, bool) {
	var best change.Deployment
	var at time.Time
	for _, d := range deps {
		for _, st := range d.Statuses {
			if st.State == "success" && (at.IsZero() || st.CreatedAt.Before(at)) {
				best, at = d, st.CreatedAt
			}
		}
	}
	return best, at, !at.IsZero()
}

func ticketSummary(f *change.Facts) TicketSummary {
	key := ticketKey(f)
	for _, l := range f.Tickets {
		if l.Key == key && l.Ticket != nil {
			t := l.Ticket
			return TicketSummary{Key: key, Status: t.Status, Type: t.Type, URL: t.URL, Summary: t.Summary,
				Reporter: t.Reporter, Created: FormatTime(t.Created)}
		}
	}
	return TicketSummary{Key: key}
}

// reviewers are the people the peer review control counted, each with the
// time of their latest approval on record.
func reviewers(r *Record) []Approver {
	c, ok := r.Decision.Control(change.ControlPeerReview)
	if !ok {
		return nil
	}
	var out []Approver
	for _, e := range c.Evidence {
		if e.Kind != "review" || slices.ContainsFunc(out, func(a Approver) bool { return a.Login == e.Ref }) {
			continue
		}
		out = append(out, Approver{Login: e.Ref, At: FormatTime(latestApproval(r.Facts.Reviews, e.Ref)), Source: "review"})
	}
	return out
}

func latestApproval(reviews []change.Review, user string) time.Time {
	var at time.Time
	for _, rv := range reviews {
		if rv.State == change.ReviewApproved && strings.EqualFold(rv.User, user) && rv.SubmittedAt.After(at) {
			at = rv.SubmittedAt
		}
	}
	return at
}

// managerApproval is the approval the manager control counted: the
// earliest approval on the head by an active member of a manager team, or
// a Jira approval. Nothing when the control did not pass.
func managerApproval(r *Record) Approver {
	c, ok := r.Decision.Control(change.ControlManagerApproval)
	if !ok || c.Result != change.Pass {
		return Approver{}
	}
	f := &r.Facts
	teams := map[string]string{}
	for _, m := range f.Memberships {
		if m.Active {
			teams[strings.ToLower(m.User)] = m.Team
		}
	}
	var best change.Review
	for _, rv := range f.Reviews {
		team, manager := teams[strings.ToLower(rv.User)]
		if rv.State != change.ReviewApproved || !manager || team == "" || strings.EqualFold(rv.User, f.PR.Author) {
			continue
		}
		if best.User == "" || rv.SubmittedAt.Before(best.SubmittedAt) {
			best = rv
		}
	}
	if best.User != "" {
		return Approver{Login: best.User, At: FormatTime(best.SubmittedAt), Source: "team " + teams[strings.ToLower(best.User)]}
	}
	return jiraApproval(f, c)
}

func jiraApproval(f *change.Facts, c change.ControlResult) Approver {
	for _, e := range c.Evidence {
		if e.Kind != "jira_approval" {
			continue
		}
		for _, l := range f.Tickets {
			if l.Key != e.Ref || l.Ticket == nil {
				continue
			}
			for _, a := range l.Ticket.Approvals {
				if strings.EqualFold(a.Decision, "approved") {
					return Approver{Login: strings.Join(a.Approvers, ", "), At: FormatTime(a.Completed), Source: "jira " + strings.Join(a.Groups, ", ")}
				}
			}
		}
	}
	return Approver{}
}

// stagingEvidence is what the staging control counted, one line per run:
// "deployment staging: success on 1a2b3c4 at … <url>".
func stagingEvidence(r *Record) []string {
	c, ok := r.Decision.Control(change.ControlStaging)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range c.Evidence {
		line := e.Kind + " " + e.Ref
		if e.Detail != "" {
			line += ": " + e.Detail
		}
		if e.URL != "" {
			line += " " + e.URL
		}
		out = append(out, line)
	}
	return out
}
