package evidence

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendSummary appends the canonical JSON of s: the bytes
// Canonical(s) gives, written directly. Verify encodes the summary of every
// record it reads, and Canonical, which marshals and then re-encodes, costs
// as much as the rest of a record's check. Keys are in canonical (byte)
// order; empty fields are left out as their omitempty tags say.
// TestSummaryEncoding holds the two equal.
func appendSummary(b []byte, s *Summary) []byte {
	o := object{b: append(b, '{')}
	o.str("author", s.Author, true)
	if s.Backfilled {
		o.key("backfilled")
		o.b = append(o.b, "true"...)
	}
	o.str("base_ref", s.BaseRef, true)
	o.str("change_type", string(s.ChangeType), false)
	o.key("compliant")
	o.b = strconv.AppendBool(o.b, s.Compliant)
	o.str("deployed_at", s.DeployedAt, true)
	o.str("deployer", s.Deployer, true)
	if s.Emergency {
		o.key("emergency")
		o.b = append(o.b, "true"...)
	}
	o.str("environment", s.Environment, true)
	o.str("event_time", s.EventTime, false)
	if e := s.Exception; e != nil {
		o.key("exception")
		o.b = appendException(o.b, e)
	}
	o.str("head_sha", s.HeadSHA, false)
	o.str("id", s.ID, false)
	o.strs("links", s.Links)
	o.key("manager")
	o.b = appendApprover(o.b, &s.Manager)
	o.str("merge_sha", s.MergeSHA, true)
	o.str("merged_at", s.MergedAt, true)
	o.str("merged_by", s.MergedBy, true)
	o.str("observed_at", s.ObservedAt, false)
	o.str("outcome", string(s.Outcome), false)
	o.str("policy", s.Policy, true)
	if s.PR != 0 {
		o.key("pr")
		o.b = strconv.AppendInt(o.b, int64(s.PR), 10)
	}
	o.str("reason", s.Reason, true)
	o.str("repo", s.Repo, false)
	if len(s.Reviewers) > 0 {
		o.key("reviewers")
		o.b = append(o.b, '[')
		for i := range s.Reviewers {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendApprover(o.b, &s.Reviewers[i])
		}
		o.b = append(o.b, ']')
	}
	o.strs("staging", s.Staging)
	o.key("ticket")
	o.b = appendTicket(o.b, &s.Ticket)
	o.str("title", s.Title, true)
	o.str("url", s.URL, true)
	return append(o.b, '}')
}

func appendApprover(b []byte, a *Approver) []byte {
	o := object{b: append(b, '{')}
	o.str("at", a.At, true)
	o.str("login", a.Login, true)
	o.str("source", a.Source, true)
	return append(o.b, '}')
}

func appendTicket(b []byte, t *TicketSummary) []byte {
	o := object{b: append(b, '{')}
	o.str("created", t.Created, true)
	o.str("key", t.Key, true)
	o.str("reporter", t.Reporter, true)
	o.str("status", t.Status, true)
	o.str("summary", t.Summary, true)
	o.str("type", t.Type, true)
	o.str("url", t.URL, true)
	return append(o.b, '}')
}

func appendException(b []byte, e *Exception) []byte {
	o := object{b: append(b, '{')}
	o.str("by", e.By, true)
	o.str("closes", e.Closes, true)
	if !e.DueAt.IsZero() {
		o.str("due_at", jsonTime(e.DueAt), false)
	}
	o.str("justification", e.Justification, true)
	o.str("kind", e.Kind, false)
	o.str("opened_at", jsonTime(e.OpenedAt), false)
	o.str("reason", e.Reason, false)
	return append(o.b, '}')
}

// jsonTime is a time as encoding/json writes it.
func jsonTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

// object writes the members of a JSON object, commas between them.
type object struct {
	b     []byte
	comma bool
}

func (o *object) key(k string) {
	if o.comma {
		o.b = append(o.b, ',')
	}
	o.comma = true
	o.b = append(append(append(o.b, '"'), k...), '"', ':')
}

func (o *object) str(k, v string, omitEmpty bool) {
	if v == "" && omitEmpty {
		return
	}
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

func (o *object) strs(k string, vs []string) {
	if len(vs) == 0 {
		return
	}
	o.key(k)
	o.b = append(o.b, '[')
	for i, v := range vs {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, v)
	}
	o.b = append(o.b, ']')
}

// appendJSONString writes s as Canonical does after encoding/json: invalid
// UTF-8 bytes become U+FFFD, one each, and the escaping is minimal.
func appendJSONString(b []byte, s string) []byte {
	if utf8.ValidString(s) {
		return appendString(b, []byte(s))
	}
	valid := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			valid = utf8.AppendRune(valid, utf8.RuneError)
		} else {
			valid = append(valid, s[i:i+n]...)
		}
		i += n
	}
	return appendString(b, valid)
}
