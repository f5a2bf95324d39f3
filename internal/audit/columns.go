package audit

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/evidence"
)

// column is one column of a population export: its name, its cell, and
// its kind, which JSON and XLSX use to type the cell.
type column struct {
	name string
	kind kind
	cell func(r *Row) string
}

type kind int

const (
	text kind = iota
	number
	boolean
	timestamp // RFC 3339, UTC
)

// columns are the population's columns, in order: the ones auditors ask
// for. Every export format has these, with these names.
var columns = []column{
	{"seq", number, func(r *Row) string { return strconv.FormatUint(r.Seq, 10) }},
	{"record_id", text, func(r *Row) string { return r.ID }},
	{"leaf_hash", text, func(r *Row) string { return hex.EncodeToString(r.LeafHash) }},
	{"event_time", timestamp, func(r *Row) string { return r.EventTime }},
	{"change_type", text, func(r *Row) string { return string(r.ChangeType) }},
	{"repo", text, func(r *Row) string { return r.Repo }},
	{"pr", number, func(r *Row) string { return optInt(r.PR) }},
	{"title", text, func(r *Row) string { return r.Title }},
	{"pr_url", text, func(r *Row) string { return r.URL }},
	{"ticket_key", text, func(r *Row) string { return r.Ticket.Key }},
	{"ticket_status", text, func(r *Row) string { return r.Ticket.Status }},
	{"ticket_type", text, func(r *Row) string { return r.Ticket.Type }},
	{"ticket_url", text, func(r *Row) string { return r.Ticket.URL }},
	{"author", text, func(r *Row) string { return r.Author }},
	{"reviewers", text, func(r *Row) string { return approvers(r.Reviewers) }},
	{"manager_approver", text, func(r *Row) string { return r.Manager.Login }},
	{"manager_approved_at", timestamp, func(r *Row) string { return r.Manager.At }},
	{"manager_approval_source", text, func(r *Row) string { return r.Manager.Source }},
	{"staging_evidence", text, func(r *Row) string { return strings.Join(r.Staging, "; ") }},
	{"merged_by", text, func(r *Row) string { return r.MergedBy }},
	{"merged_at", timestamp, func(r *Row) string { return r.MergedAt }},
	{"merge_sha", text, func(r *Row) string { return r.MergeSHA }},
	{"head_sha", text, func(r *Row) string { return r.HeadSHA }},
	{"environment", text, func(r *Row) string { return r.Environment }},
	{"deployed_at", timestamp, func(r *Row) string { return r.DeployedAt }},
	{"compliant", boolean, func(r *Row) string { return strconv.FormatBool(r.Compliant) }},
	{"outcome", text, func(r *Row) string { return string(r.Outcome) }},
	{"exception", text, func(r *Row) string { return exceptionField(r, func(e *evidence.Exception) string { return e.Kind }) }},
	{"exception_state", text, func(r *Row) string { return r.ExceptionState }},
	{"exception_due", timestamp, func(r *Row) string {
		return exceptionField(r, func(e *evidence.Exception) string { return evidence.FormatTime(e.DueAt) })
	}},
	{"exception_reason", text, func(r *Row) string { return exceptionField(r, func(e *evidence.Exception) string { return e.Reason }) }},
	{"exception_justification", text, func(r *Row) string {
		return exceptionField(r, func(e *evidence.Exception) string { return e.Justification })
	}},
	{"closes", text, func(r *Row) string { return exceptionField(r, func(e *evidence.Exception) string { return e.Closes }) }},
	{"closed_by", text, func(r *Row) string { return r.ClosedBy }},
	{"backfilled", boolean, func(r *Row) string { return strconv.FormatBool(r.Backfilled) }},
}

func optInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func approvers(as []evidence.Approver) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Login
		if a.At != "" {
			parts[i] += " at " + a.At
		}
	}
	return strings.Join(parts, "; ")
}

func exceptionField(r *Row, f func(*evidence.Exception) string) string {
	if r.Exception == nil {
		return ""
	}
	return f(r.Exception)
}

// Header is the population's column names.
func Header() []string {
	h := make([]string, len(columns))
	for i, c := range columns {
		h[i] = c.name
	}
	return h
}

// Cells are a row's CSV cells: every column, escaped against formula
// injection.
func (r *Row) Cells() []string {
	cells := make([]string, len(columns))
	for i, c := range columns {
		cells[i] = SafeCell(c.cell(r))
	}
	return cells
}

// SafeCell escapes a cell that a spreadsheet would run as a formula:
// titles and Jira text are written by whoever opens a pull request. Such
// a cell gets a leading apostrophe (OWASP's advice), which spreadsheets
// show as text and do not display.
func SafeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// WriteCSV writes the population as RFC 4180 CSV in UTF-8: a header, then
// a row per record, CRLF line ends.
func (p *Population) WriteCSV(w io.Writer) error { return p.write(newRowEncoder(w, "csv")) }

// WriteJSON writes the population as a JSON array of objects with the
// columns as keys, numbers and booleans typed, empty cells omitted. JSON
// is not a spreadsheet: its text is not escaped.
func (p *Population) WriteJSON(w io.Writer) error { return p.write(newRowEncoder(w, "json")) }

func (p *Population) write(enc *rowEncoder) error {
	for i := range p.Rows {
		if err := enc.row(&p.Rows[i]); err != nil {
			return err
		}
	}
	return enc.close()
}

// rowEncoder writes rows as CSV or JSON, one at a time.
type rowEncoder struct {
	w    io.Writer
	csv  *csv.Writer
	rows int
	err  error
}

func newRowEncoder(w io.Writer, format string) *rowEncoder {
	e := &rowEncoder{w: w}
	if format == "csv" {
		e.csv = csv.NewWriter(w)
		e.csv.UseCRLF = true
		e.err = e.csv.Write(Header())
		return e
	}
	_, e.err = io.WriteString(w, "[")
	return e
}

func (e *rowEncoder) row(r *Row) error {
	if e.err != nil {
		return e.err
	}
	if e.csv != nil {
		e.err = e.csv.Write(r.Cells())
		return e.err
	}
	b := rowJSON(r)
	if e.rows > 0 {
		b = append([]byte(",\n"), b...)
	}
	e.rows++
	_, e.err = e.w.Write(b)
	return e.err
}

func (e *rowEncoder) close() error {
	if e.err != nil {
		return e.err
	}
	if e.csv != nil {
		e.csv.Flush()
		return e.csv.Error()
	}
	_, err := io.WriteString(e.w, "]\n")
	return err
}

// MarshalRow is a row as the JSON export writes it.
func MarshalRow(r *Row) []byte { return rowJSON(r) }

func rowJSON(r *Row) []byte {
	b := []byte{'{'}
	first := true
	for _, c := range columns {
		v := c.cell(r)
		if v == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		k, _ := json.Marshal(c.name)
		b = append(append(b, k...), ':')
		switch c.kind {
		case number, boolean:
			b = append(b, v...)
		default:
			s, _ := json.Marshal(v)
			b = append(b, s...)
		}
	}
	return append(b, '}')
}

// ReadCSV reads a population CSV back, as far as a report needs: the
// columns that name and place a record and its exception. Cells are read
// as written, escaping included.
func ReadCSV(r io.Reader) (*Population, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("population csv: %w", err)
	}
	if !slices.Equal(header, Header()) {
		return nil, errors.New("population csv: not the population's header")
	}
	p := &Population{}
	for {
		cells, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return p, nil
		}
		if err != nil {
			return nil, fmt.Errorf("population csv: %w", err)
		}
		p.Rows = append(p.Rows, rowFromCells(cells))
	}
}

func rowFromCells(cells []string) Row {
	get := func(name string) string { return cells[columnIndex(name)] }
	var r Row
	r.Seq, _ = strconv.ParseUint(get("seq"), 10, 64)
	r.LeafHash, _ = hex.DecodeString(get("leaf_hash"))
	r.ID, r.EventTime, r.ChangeType, r.Repo = get("record_id"), get("event_time"), evidence.ChangeType(get("change_type")), get("repo")
	r.PR, _ = strconv.Atoi(get("pr"))
	r.ExceptionState, r.ClosedBy = get("exception_state"), get("closed_by")
	r.Backfilled = get("backfilled") == "true"
	if kind := get("exception"); kind != "" {
		e := &evidence.Exception{Kind: kind, Reason: get("exception_reason"), Closes: get("closes")}
		e.DueAt, _ = time.Parse(time.RFC3339Nano, get("exception_due"))
		r.Exception = e
	}
	return r
}
