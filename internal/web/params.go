package web

import (
	"encoding/base64"
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/audit"
)

// parseQuery reads a population query from from, to, repo and type (which
// may repeat or hold a comma-separated list).
func parseQuery(v url.Values) (audit.Query, error) {
	var q audit.Query
	var err error
	if q.From, err = parseDate(v, "from"); err != nil {
		return q, err
	}
	if q.To, err = parseDate(v, "to"); err != nil {
		return q, err
	}
	q.Repo = strings.TrimSpace(v.Get("repo"))
	q.Types = splitList(v["type"])
	return q, q.Validate()
}

// parseDate reads a period bound; empty is left zero for Query.Validate
// to call required.
func parseDate(v url.Values, name string) (time.Time, error) {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return time.Time{}, nil
	}
	return audit.ParseDate(name, s)
}

// splitList flattens repeated and comma-separated values, sorted and
// without duplicates: the order a filter is given in does not matter.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Population file formats and their media types.
const (
	formatCSV  = "csv"
	formatJSON = "json"
	formatXLSX = "xlsx"
	mimeCSV    = "text/csv"
	mimeXLSX   = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// negotiate picks a response format: the format parameter, else the
// media type of Accept with the highest q that has a format (the first of
// equals), else JSON.
func negotiate(v url.Values, accept string, allowed ...string) (string, error) {
	if f := v.Get("format"); f != "" {
		if !slices.Contains(allowed, f) {
			return "", &audit.FlagError{Flag: "format", Problem: fmt.Sprintf("%q is not one of %s", f, strings.Join(allowed, ", "))}
		}
		return f, nil
	}
	best, bestQ := formatJSON, 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		f := map[string]string{mimeCSV: formatCSV, mimeXLSX: formatXLSX, "application/json": formatJSON}[mt]
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil {
				continue
			}
		}
		if f != "" && slices.Contains(allowed, f) && q > bestQ {
			best, bestQ = f, q
		}
	}
	return best, nil
}

// uintParam reads a non-negative integer parameter; def when absent.
func uintParam(v url.Values, name string, def uint64) (uint64, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &audit.FlagError{Flag: name, Problem: fmt.Sprintf("%q is not a non-negative integer", s)}
	}
	return n, nil
}

// Page sizes of the JSON population.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

func limitParam(v url.Values) (int, error) {
	n, err := uintParam(v, "limit", defaultLimit)
	if err == nil && (n == 0 || n > maxLimit) {
		err = &audit.FlagError{Flag: "limit", Problem: fmt.Sprintf("%d is not between 1 and %d", n, maxLimit)}
	}
	return int(n), err
}

// cursor is where a page of a population starts: after the record at
// seq, at the checkpoint the first page was read at, so that the pages of
// one listing add up to one population even while the log grows.
type cursor struct {
	size  uint64
	after uint64
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%d", c.size, c.after))
}

func parseCursor(v url.Values) (cursor, bool, error) {
	s := v.Get("cursor")
	if s == "" {
		return cursor{}, false, nil
	}
	bad := &audit.FlagError{Flag: "cursor", Problem: "is not a cursor this server gave"}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, false, bad
	}
	sz, after, ok := strings.Cut(string(b), ":")
	var c cursor
	c.size, err = strconv.ParseUint(sz, 10, 64)
	if !ok || err != nil || c.size == 0 {
		return cursor{}, false, bad
	}
	if c.after, err = strconv.ParseUint(after, 10, 64); err != nil || c.after >= c.size {
		return cursor{}, false, bad
	}
	return c, true, nil
}

var recordID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkRecordID refuses what cannot be a record id (evidence.RecordID) as
// a bad parameter rather than an unknown record.
func checkRecordID(id string) error {
	if !recordID.MatchString(id) {
		return &audit.FlagError{Flag: "id", Problem: fmt.Sprintf("%q is not a record id (32 hex digits)", id)}
	}
	return nil
}

// periodName is a period bound in a file name: the date, or the time when
// the bound is not midnight.
func periodName(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format("20060102T150405Z")
}
