package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/changegate/changegate/internal/audit"
)

// uiPageSize is how many rows a population page shows.
const uiPageSize = 50

type populationView struct {
	From, To, Repo string
	Types          []option
	Checkpoint     audit.Checkpoint
	Rows           []audit.Row
	Total          int
	First, Last    int
	FirstURL       string
	NextURL        string
	Error          string
}

// option is a choice of a form: a checkbox or a select's option.
type option struct {
	Name string
	On   bool
	Size int
}

// defaultPeriod is the twelve months up to the end of the month of asOf:
// what an auditor most often asks for first.
func defaultPeriod(asOf time.Time) (from, to string) {
	m := time.Date(asOf.Year(), asOf.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
	return m.AddDate(-1, 0, 0).Format(time.DateOnly), m.Format(time.DateOnly)
}

// populationList is the population page: the filters as a GET form, and
// one page of rows.
func (h *Handler) populationList(c echo.Context) error {
	v := c.QueryParams()
	latest, err := h.svc.Latest(c.Request().Context())
	if err != nil {
		return h.failPage(c, err)
	}
	if v.Get("from") == "" && v.Get("to") == "" {
		from, to := defaultPeriod(latest.AsOf)
		v.Set("from", from)
		v.Set("to", to)
	}
	view := populationView{From: v.Get("from"), To: v.Get("to"), Repo: v.Get("repo"), Checkpoint: latest}
	types := splitList(v["type"])
	for _, t := range audit.ChangeTypes {
		view.Types = append(view.Types, option{Name: t, On: slices.Contains(types, t)})
	}
	l, err := h.uiList(c, v)
	var fe *audit.FlagError
	if errors.As(err, &fe) {
		view.Error = "The filter is not valid: " + fe.Flag + " " + fe.Problem
		return h.render(c, http.StatusBadRequest, "population", view)
	}
	if err != nil {
		return h.failPage(c, err)
	}
	ctx := c.Request().Context()
	total, err := h.svc.Count(ctx, l.pop.Query, l.pop.Checkpoint)
	if err != nil {
		return h.failPage(c, err)
	}
	before, err := h.svc.Position(ctx, l.pop.Query, l.pop.Checkpoint, l.start)
	if err != nil {
		return h.failPage(c, err)
	}
	view.Checkpoint, view.Rows, view.Total = l.pop.Checkpoint, l.rows(), total
	view.First, view.Last = before+1, before+len(l.rows())
	if l.next != nil {
		v.Set("cursor", l.next.String())
		view.NextURL = "/audit/changes?" + v.Encode()
	}
	if l.start > 0 {
		v.Del("cursor")
		view.FirstURL = "/audit/changes?" + v.Encode()
	}
	return h.render(c, http.StatusOK, "population", view)
}

func (h *Handler) uiList(c echo.Context, v url.Values) (*listing, error) {
	q, err := parseQuery(v)
	if err != nil {
		return nil, err
	}
	cur, paged, err := parseCursor(v)
	if err != nil {
		return nil, err
	}
	return h.list(c, q, cur, paged, uiPageSize)
}

type recordPage struct {
	ID       string
	Body     template.HTML
	Envelope string
}

// recordView reads the record the path names.
func (h *Handler) recordView(c echo.Context) (*audit.RecordView, error) {
	id := c.Param("id")
	if err := checkRecordID(id); err != nil {
		return nil, err
	}
	return h.svc.Record(c.Request().Context(), id)
}

// recordPage shows a record as record.html does, with its envelope.
func (h *Handler) recordPage(c echo.Context) error {
	v, err := h.recordView(c)
	if err != nil {
		return h.failPage(c, err)
	}
	body, err := audit.RecordBody(v)
	if err != nil {
		return h.failPage(c, fmt.Errorf("render record %s: %w", v.Row.ID, err))
	}
	css, err := audit.RecordStyle()
	if err != nil {
		return h.failPage(c, fmt.Errorf("record style: %w", err))
	}
	return h.renderWith(c, http.StatusOK, "record", css, recordPage{ID: v.Row.ID, Body: body, Envelope: string(v.Envelope)})
}

// recordFile downloads the record as the self-contained record.html.
func (h *Handler) recordFile(c echo.Context) error {
	v, err := h.recordView(c)
	if err != nil {
		return h.failPage(c, err)
	}
	page, err := audit.RecordHTML(v)
	if err != nil {
		return h.failPage(c, fmt.Errorf("render record %s: %w", v.Row.ID, err))
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", "record-"+v.Row.ID+".html"))
	return c.Blob(http.StatusOK, echo.MIMETextHTMLCharsetUTF8, page)
}

// envelopeFile downloads the record's envelope, the exact stored bytes.
func (h *Handler) envelopeFile(c echo.Context) error {
	v, err := h.recordView(c)
	if err != nil {
		return h.failPage(c, err)
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", "record-"+v.Row.ID+".dsse.json"))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, v.Envelope)
}

type sampleView struct {
	From, To, Repo    string
	Checkpoint        string
	Latest            uint64
	Size              string
	Frequencies       []option
	Seed, Nonce       string
	IncludeExceptions bool
	Error             string
}

func (h *Handler) sampleForm(c echo.Context) error {
	latest, err := h.svc.Latest(c.Request().Context())
	if err != nil {
		return h.failPage(c, err)
	}
	from, to := defaultPeriod(latest.AsOf)
	view := sampleView{From: from, To: to, Latest: latest.Size, Checkpoint: strconv.FormatUint(latest.Size, 10)}
	return h.render(c, http.StatusOK, "sample", withFrequencies(view))
}

func withFrequencies(v sampleView) sampleView {
	v.Frequencies = v.Frequencies[:0]
	for _, f := range audit.Frequencies {
		v.Frequencies = append(v.Frequencies, option{Name: f, Size: audit.FrequencySizes[f]})
	}
	return v
}

// drawSample answers the sample form with the package itself.
func (h *Handler) drawSample(c echo.Context) error {
	view := sampleView{From: c.FormValue("from"), To: c.FormValue("to"), Repo: c.FormValue("repo"),
		Checkpoint: c.FormValue("checkpoint"), Size: c.FormValue("size"), Seed: c.FormValue("seed"),
		Nonce: c.FormValue("auditor_nonce"), IncludeExceptions: c.FormValue("include_exceptions") != ""}
	zip, name, err := h.sampleFromForm(c, view, c.FormValue("frequency"))
	var fe *audit.FlagError
	if errors.As(err, &fe) {
		if latest, err := h.svc.Latest(c.Request().Context()); err == nil {
			view.Latest = latest.Size
		}
		view = withFrequencies(view)
		for i := range view.Frequencies {
			view.Frequencies[i].On = view.Frequencies[i].Name == c.FormValue("frequency")
		}
		view.Error = "The sample cannot be drawn: " + fe.Flag + " " + fe.Problem
		return h.render(c, http.StatusBadRequest, "sample", view)
	}
	if err != nil {
		return h.failPage(c, err)
	}
	return sendZip(c, name, zip)
}

func (h *Handler) sampleFromForm(c echo.Context, v sampleView, frequency string) ([]byte, string, error) {
	w := SampleWire{From: v.From, To: v.To, Repo: v.Repo, Frequency: frequency, Seed: v.Seed, Nonce: v.Nonce,
		IncludeExceptions: v.IncludeExceptions}
	var err error
	if w.Size, err = formInt(v.Size, "size"); err != nil {
		return nil, "", err
	}
	cp, err := formInt(v.Checkpoint, "checkpoint")
	if err != nil {
		return nil, "", err
	}
	w.Checkpoint = uint64(cp)
	req, err := w.request()
	if err != nil {
		return nil, "", err
	}
	if req, _, err = pinSample(c.Request().Context(), h.svc, req); err != nil {
		return nil, "", err
	}
	zip, err := h.svc.Sample(c.Request().Context(), req)
	return zip, sampleName(req), err
}

// formInt reads an optional non-negative number of a form.
func formInt(s, name string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, &audit.FlagError{Flag: name, Problem: fmt.Sprintf("%q is not a non-negative number", s)}
	}
	return n, nil
}
