package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/evidence"
)

// apiError is every API error body.
type apiError struct {
	Error string `json:"error"`
}

// ManifestHeader carries a population export's signed manifest (a DSSE
// envelope, base64), so that the body stays the exact file it signs.
const ManifestHeader = "X-Changegate-Manifest"

// fail answers err with the status its kind maps to. This is the one place
// errors become HTTP codes; an unexpected error is logged, not shown.
func (h *Handler) fail(c echo.Context, err error) error {
	code, msg := classify(err)
	if code == http.StatusInternalServerError {
		h.log.Error("audit request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	return c.JSON(code, apiError{msg})
}

func classify(err error) (int, string) {
	var fe *audit.FlagError
	var nf *audit.NotFoundError
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest, fe.Flag + " " + fe.Problem
	case errors.Is(err, audit.ErrEmpty):
		return http.StatusConflict, err.Error()
	case errors.As(err, &nf):
		return http.StatusNotFound, nf.Error()
	case errors.Is(err, errNotSampleID):
		return http.StatusNotFound, errNotSampleID.Error()
	case errors.Is(err, ErrTokensUnavailable):
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, "internal error: the server logged it"
}

// rowsJSON are rows as the JSON export writes them: the CSV's column names
// as keys.
func rowsJSON(rows []audit.Row) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := (&audit.Population{Rows: rows}).WriteJSON(&b); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

type changesPage struct {
	Checkpoint audit.CheckpointJSON `json:"checkpoint"`
	Rows       json.RawMessage      `json:"rows"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

// changes is the population of a period: a JSON page, or the whole signed
// CSV or XLSX file.
func (h *Handler) changes(c echo.Context) error {
	v := c.QueryParams()
	q, err := parseQuery(v)
	if err != nil {
		return h.fail(c, err)
	}
	format, err := negotiate(v, c.Request().Header.Get(echo.HeaderAccept), formatJSON, formatCSV, formatXLSX)
	if err != nil {
		return h.fail(c, err)
	}
	if format != formatJSON {
		return h.populationFile(c, q, format)
	}
	limit, err := limitParam(v)
	if err != nil {
		return h.fail(c, err)
	}
	cur, paged, err := parseCursor(v)
	if err != nil {
		return h.fail(c, err)
	}
	l, err := h.list(c, q, cur, paged, limit)
	if err != nil {
		return h.fail(c, err)
	}
	rows, err := rowsJSON(l.rows())
	if err != nil {
		return h.fail(c, err)
	}
	body := changesPage{Checkpoint: l.pop.Checkpoint.JSON(), Rows: rows}
	if l.next != nil {
		body.NextCursor = l.next.String()
	}
	return c.JSON(http.StatusOK, body)
}

// listing is one page of a population.
type listing struct {
	pop   *audit.Population // the page's rows
	start uint64            // the sequence number the page starts from
	next  *cursor
}

func (l *listing) rows() []audit.Row { return l.pop.Rows }

// list reads one page of q: from the latest checkpoint, or from the
// cursor's. Only the page's rows are read.
func (h *Handler) list(c echo.Context, q audit.Query, cur cursor, paged bool, limit int) (*listing, error) {
	ctx := c.Request().Context()
	var cp audit.Checkpoint
	var err error
	var start uint64
	if paged {
		if cp, err = h.svc.At(ctx, cur.size); err != nil {
			return nil, &audit.FlagError{Flag: "cursor", Problem: fmt.Sprintf("names checkpoint %d: %v", cur.size, err)}
		}
		start = cur.after + 1
	} else if cp, err = h.svc.Latest(ctx); err != nil {
		return nil, err
	}
	pop, more, err := h.svc.Page(ctx, q, cp, start, limit)
	if err != nil {
		return nil, err
	}
	l := &listing{pop: pop, start: start}
	if more && len(pop.Rows) > 0 {
		l.next = &cursor{size: cp.Size, after: pop.Rows[len(pop.Rows)-1].Seq}
	}
	return l, nil
}

// populationFile answers the whole population as a signed file.
func (h *Handler) populationFile(c echo.Context, q audit.Query, format string) error {
	ctx := c.Request().Context()
	cp, err := h.svc.Latest(ctx)
	if err != nil {
		return h.fail(c, err)
	}
	file, manifest, err := h.svc.ExportPopulation(ctx, q, cp, format)
	if err != nil {
		return h.fail(c, err)
	}
	hd := c.Response().Header()
	hd.Set(ManifestHeader, base64.StdEncoding.EncodeToString(manifest))
	hd.Set("X-Changegate-Checkpoint", strconv.FormatUint(cp.Size, 10))
	hd.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", audit.PopulationFileName(q, format)))
	mt := mimeCSV + "; charset=utf-8"
	if format == formatXLSX {
		mt = mimeXLSX
	}
	return c.Blob(http.StatusOK, mt, file)
}

type recordJSON struct {
	Row            json.RawMessage      `json:"row"`
	Record         *evidence.Record     `json:"record"`
	Envelope       string               `json:"envelope"`
	InclusionProof audit.Proof          `json:"inclusion_proof"`
	Checkpoint     audit.CheckpointJSON `json:"checkpoint"`
}

// record is one change record with its evidence. The envelope is the
// stored bytes, as a string, so that a client can rehash it.
func (h *Handler) record(c echo.Context) error {
	id := c.Param("id")
	if err := checkRecordID(id); err != nil {
		return h.fail(c, err)
	}
	v, err := h.svc.Record(c.Request().Context(), id)
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(http.StatusOK, recordJSON{Row: audit.MarshalRow(&v.Row), Record: v.Record, Envelope: string(v.Envelope),
		InclusionProof: v.Proof, Checkpoint: v.Checkpoint.JSON()})
}

type sampleCreated struct {
	ID         string `json:"id"`
	PackageURL string `json:"package_url"`
	Checkpoint uint64 `json:"checkpoint"`
}

// createSample computes a sample's id; nothing is stored. The package is
// built when its URL is fetched.
func (h *Handler) createSample(c echo.Context) error {
	w, err := decodeSampleWire(c.Request().Body)
	if err != nil {
		return h.fail(c, err)
	}
	req, err := w.request()
	if err != nil {
		return h.fail(c, err)
	}
	req, cp, err := pinSample(c.Request().Context(), h.svc, req)
	if err != nil {
		return h.fail(c, err)
	}
	if err := h.svc.CheckSample(c.Request().Context(), req, cp); err != nil {
		return h.fail(c, err)
	}
	id, err := sampleID(req)
	if err != nil {
		return h.fail(c, err)
	}
	url := "/api/v1/samples/" + id + "/package"
	c.Response().Header().Set(echo.HeaderLocation, url)
	return c.JSON(http.StatusCreated, sampleCreated{ID: id, PackageURL: url, Checkpoint: req.CheckpointSize})
}

// samplePackage builds the package a sample id names; the same id gives
// the same bytes.
func (h *Handler) samplePackage(c echo.Context) error {
	req, err := parseSampleID(c.Param("id"))
	if err != nil {
		return h.fail(c, err)
	}
	zip, err := h.svc.Sample(c.Request().Context(), req)
	if err != nil {
		return h.fail(c, err)
	}
	return sendZip(c, sampleName(req), zip)
}

func sendZip(c echo.Context, name string, zip []byte) error {
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", name))
	return c.Blob(http.StatusOK, "application/zip", zip)
}

type exceptionsJSON struct {
	Checkpoint audit.CheckpointJSON `json:"checkpoint"`
	Rows       json.RawMessage      `json:"rows"`
}

// exceptions lists the period's exceptions in a state.
func (h *Handler) exceptions(c echo.Context) error {
	v := c.QueryParams()
	q, err := parseQuery(v)
	if err != nil {
		return h.fail(c, err)
	}
	state := v.Get("state")
	switch state {
	case "", audit.StateOpen, audit.StateClosed, audit.StateLate:
	default:
		return h.fail(c, &audit.FlagError{Flag: "state", Problem: fmt.Sprintf("%q is not one of open, closed, late", state)})
	}
	format, err := negotiate(v, c.Request().Header.Get(echo.HeaderAccept), formatJSON, formatCSV)
	if err != nil {
		return h.fail(c, err)
	}
	pop, err := h.svc.Exceptions(c.Request().Context(), q, state)
	if err != nil {
		return h.fail(c, err)
	}
	if format == formatCSV {
		return h.exceptionsCSV(c, pop)
	}
	rows, err := rowsJSON(pop.Rows)
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(http.StatusOK, exceptionsJSON{Checkpoint: pop.Checkpoint.JSON(), Rows: rows})
}

func (h *Handler) exceptionsCSV(c echo.Context, pop *audit.Population) error {
	var b bytes.Buffer
	if err := pop.WriteCSV(&b); err != nil {
		return h.fail(c, err)
	}
	name := "exceptions-" + periodName(pop.Query.From) + "-" + periodName(pop.Query.To) + ".csv"
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", name))
	return c.Blob(http.StatusOK, mimeCSV+"; charset=utf-8", b.Bytes())
}

// checkpoint is the latest signed checkpoint.
func (h *Handler) checkpoint(c echo.Context) error {
	cp, err := h.svc.Latest(c.Request().Context())
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(http.StatusOK, cp.JSON())
}

// inclusionProof proves record seq is in the tree of size (default: the
// latest checkpoint's).
func (h *Handler) inclusionProof(c echo.Context) error {
	v := c.QueryParams()
	if v.Get("seq") == "" {
		return h.fail(c, &audit.FlagError{Flag: "seq", Problem: "is required"})
	}
	seq, err := uintParam(v, "seq", 0)
	if err != nil {
		return h.fail(c, err)
	}
	size, err := h.sizeParam(c, "size")
	if err != nil {
		return h.fail(c, err)
	}
	if seq >= size {
		return h.fail(c, &audit.FlagError{Flag: "seq", Problem: fmt.Sprintf("%d is not in a tree of size %d", seq, size)})
	}
	p, err := h.svc.InclusionProof(c.Request().Context(), seq, size)
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(http.StatusOK, p)
}

type consistencyJSON struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes []string `json:"hashes"` // hex
}

// consistencyProof proves the tree of size to extends that of from.
func (h *Handler) consistencyProof(c echo.Context) error {
	v := c.QueryParams()
	from, err := uintParam(v, "from", 0)
	if err == nil && from == 0 {
		err = &audit.FlagError{Flag: "from", Problem: "is required: a tree size of at least 1"}
	}
	if err != nil {
		return h.fail(c, err)
	}
	to, err := h.sizeParam(c, "to")
	if err != nil {
		return h.fail(c, err)
	}
	if from > to {
		return h.fail(c, &audit.FlagError{Flag: "from", Problem: fmt.Sprintf("%d is larger than to %d", from, to)})
	}
	hashes, err := h.svc.ConsistencyProof(c.Request().Context(), from, to)
	if err != nil {
		return h.fail(c, err)
	}
	if hashes == nil {
		hashes = []string{}
	}
	return c.JSON(http.StatusOK, consistencyJSON{From: from, To: to, Hashes: hashes})
}

// sizeParam reads a tree size; absent, the latest checkpoint's.
func (h *Handler) sizeParam(c echo.Context, name string) (uint64, error) {
	if c.QueryParam(name) != "" {
		n, err := uintParam(c.QueryParams(), name, 0)
		if err == nil && n == 0 {
			err = &audit.FlagError{Flag: name, Problem: "must be at least 1"}
		}
		return n, err
	}
	cp, err := h.svc.Latest(c.Request().Context())
	return cp.Size, err
}
