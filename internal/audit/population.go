package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/evidence"
)

// Query is a population request: the records whose event time falls in
// [From, To), optionally of one repository and some change types.
type Query struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Repo  string    `json:"repo,omitempty"`
	Types []string  `json:"types,omitempty"`
}

// ChangeTypes are the types a query may name.
var ChangeTypes = []string{
	string(evidence.Standard), string(evidence.Emergency), string(evidence.Bypass),
	string(evidence.DirectPush), string(evidence.Deployment), string(evidence.ControlConfig),
}

// Validate checks a query as a user gave it, naming the flag at fault.
func (q Query) Validate() error {
	switch {
	case q.From.IsZero():
		return &FlagError{Flag: "from", Problem: "is required"}
	case q.To.IsZero():
		return &FlagError{Flag: "to", Problem: "is required"}
	case !q.From.Before(q.To):
		return &FlagError{Flag: "from", Problem: fmt.Sprintf("%s is not before --to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))}
	}
	if q.Repo != "" {
		if o, n, ok := strings.Cut(q.Repo, "/"); !ok || o == "" || n == "" || strings.Contains(n, "/") {
			return &FlagError{Flag: "repo", Problem: fmt.Sprintf("%q is not owner/name", q.Repo)}
		}
	}
	for _, t := range q.Types {
		if !slices.Contains(ChangeTypes, t) {
			return &FlagError{Flag: "type", Problem: fmt.Sprintf("%q is not one of %s", t, strings.Join(ChangeTypes, ", "))}
		}
	}
	return nil
}

// FlagError is a request that cannot be answered as given: a bad flag, or
// a bad query parameter of the API.
type FlagError struct {
	Flag    string
	Problem string
}

func (e *FlagError) Error() string { return "--" + e.Flag + " " + e.Problem }

// ParseDate reads a period bound: a date (2026-01-31, midnight UTC) or an
// RFC 3339 time.
func ParseDate(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, &FlagError{Flag: flag, Problem: fmt.Sprintf("%q is not a date (2026-01-31) or an RFC 3339 time", s)}
}

// Row is one record of a population.
type Row struct {
	Seq      uint64
	LeafHash []byte
	evidence.Summary
	// DeployedAt is, for a change, when the first production deployment
	// that links it succeeded (as the log knew at the checkpoint); for a
	// deployment, its own time.
	DeployedAt string
	// ExceptionState is "" (none), open, late (open past its due time),
	// closed, or closing (the record that closed another's), at the
	// checkpoint's as-of time.
	ExceptionState string
	ClosedBy       string
}

// Exception states of a row.
const (
	StateOpen    = "open"
	StateLate    = "late"
	StateClosed  = "closed"
	StateClosing = "closing"
)

// Population is the answer to a query at a checkpoint.
type Population struct {
	Query      Query
	Checkpoint Checkpoint
	Rows       []Row
}

// Population reads the records q selects among those cp covers.
func (s *Service) Population(ctx context.Context, q Query, cp Checkpoint) (*Population, error) {
	return s.population(ctx, q, cp, false)
}

func (s *Service) population(ctx context.Context, q Query, cp Checkpoint, exceptionsOnly bool) (*Population, error) {
	p := &Population{Query: q, Checkpoint: cp}
	err := s.eachRow(ctx, q, cp, exceptionsOnly, func(r *Row) error {
		p.Rows = append(p.Rows, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Page reads at most limit rows of q at cp, from sequence number start
// on, and says whether more follow.
func (s *Service) Page(ctx context.Context, q Query, cp Checkpoint, start uint64, limit int) (*Population, bool, error) {
	if err := q.Validate(); err != nil {
		return nil, false, err
	}
	p := &Population{Query: q, Checkpoint: cp}
	lq := evidence.Query{From: q.From, To: q.To, Repo: q.Repo, Types: q.Types, Size: cp.Size, Start: start, Limit: limit + 1}
	err := s.rows(ctx, lq, cp, func(r *Row) error {
		p.Rows = append(p.Rows, *r)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	more := len(p.Rows) > limit
	p.Rows = p.Rows[:min(len(p.Rows), limit)]
	return p, more, nil
}

// eachRow calls fn with each row q selects at cp, in sequence order; fn
// must not keep r.
func (s *Service) eachRow(ctx context.Context, q Query, cp Checkpoint, exceptionsOnly bool, fn func(r *Row) error) error {
	lq := evidence.Query{From: q.From, To: q.To, Repo: q.Repo, Types: q.Types, ExceptionsOnly: exceptionsOnly, Size: cp.Size}
	return s.rows(ctx, lq, cp, fn)
}

func (s *Service) rows(ctx context.Context, lq evidence.Query, cp Checkpoint, fn func(r *Row) error) error {
	closed, err := s.index.Closed(ctx, cp.Size)
	if err != nil {
		return err
	}
	return s.index.Population(ctx, lq, func(r evidence.PopulationRow) error {
		row, err := newRow(r, closed, cp.AsOf)
		if err != nil {
			return err
		}
		return fn(&row)
	})
}

func newRow(r evidence.PopulationRow, closed map[string]string, asOf time.Time) (Row, error) {
	row := Row{Seq: r.Seq, LeafHash: r.LeafHash}
	if err := evidence.DecodeSummary(r.Summary, &row.Summary); err != nil {
		return Row{}, fmt.Errorf("ledger index: record %d: summary: %w", r.Seq, err)
	}
	row.DeployedAt = row.Summary.DeployedAt
	if row.DeployedAt == "" && r.DeployedAt != "" {
		if t, err := time.Parse(evidence.SortableTime, r.DeployedAt); err == nil {
			row.DeployedAt = t.Format(time.RFC3339Nano)
		}
	}
	row.ExceptionState, row.ClosedBy = exceptionState(row.Exception, closed[row.ID], asOf)
	return row, nil
}

// exceptionState is a row's exception state at asOf, given the record
// that closed it, if any.
func exceptionState(e *evidence.Exception, closedBy string, asOf time.Time) (string, string) {
	switch {
	case e == nil:
		return "", ""
	case e.Closes != "":
		return StateClosing, ""
	case closedBy != "":
		return StateClosed, closedBy
	case !e.DueAt.IsZero() && e.DueAt.Before(asOf):
		return StateLate, ""
	}
	return StateOpen, ""
}

// Counts counts the rows by change type (a record that closes another's
// exception counts as "approval_after_the_fact", not as a change), and by
// how they were observed: live, or backfilled after the fact.
func (p *Population) Counts() map[string]int {
	c := newCounts()
	for i := range p.Rows {
		c.add(&p.Rows[i])
	}
	return c
}

type counts map[string]int

// Counts of how the records were observed, beside the change types.
const (
	CountObservedLive = "observed_live"
	CountBackfilled   = "backfilled"
)

func newCounts() counts {
	c := counts{CountObservedLive: 0, CountBackfilled: 0}
	for _, t := range ChangeTypes {
		c[t] = 0
	}
	return c
}

func (c counts) add(r *Row) {
	if r.Backfilled {
		c[CountBackfilled]++
	} else {
		c[CountObservedLive]++
	}
	if r.ExceptionState == StateClosing {
		c["approval_after_the_fact"]++
		return
	}
	c[string(r.ChangeType)]++
}
