package web

import (
	"bytes"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/changegate/changegate/internal/audit"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageNames are the UI's pages; each is parsed with the layout.
var pageNames = []string{"login", "dashboard", "population", "record", "sample", "coverage", "error"}

var pageFuncs = template.FuncMap{
	"hex":        hex.EncodeToString,
	"pct":        func(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) },
	"pctNum":     func(r float64) int { return int(100*r + 0.5) },
	"rateClass":  rateClass,
	"stateClass": stateClass,
	"when":       when,
}

func parsePages() map[string]*template.Template {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		pages[name] = template.Must(template.New(name).Funcs(pageFuncs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}

// pageData is what the layout renders; Page is the page's own data.
type pageData struct {
	Auditor  string
	CSRF     string
	Nav      string
	ExtraCSS template.CSS
	Page     any
}

type errorPage struct {
	Title   string
	Message string
}

// render writes page name with the layout.
func (h *Handler) render(c echo.Context, code int, name string, page any) error {
	return h.renderWith(c, code, name, "", page)
}

func (h *Handler) renderWith(c echo.Context, code int, name string, css template.CSS, page any) error {
	d := pageData{Nav: name, ExtraCSS: css, Page: page}
	d.Auditor, _ = c.Get(auditorKey).(string)
	d.CSRF, _ = c.Get(csrfKey).(string)
	var b bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&b, "layout", d); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		return c.String(http.StatusInternalServerError, "internal error: the server logged it\n")
	}
	return c.HTMLBlob(code, b.Bytes())
}

// failPage shows an error as a page, with the status the API would give.
func (h *Handler) failPage(c echo.Context, err error) error {
	code, msg := classify(err)
	if code == http.StatusInternalServerError {
		h.log.Error("audit page failed", "path", c.Request().URL.Path, "err", err)
	}
	return h.render(c, code, "error", errorPage{Title: http.StatusText(code), Message: msg})
}

func rateClass(r float64) string {
	switch {
	case r >= 0.95:
		return ""
	case r >= 0.8:
		return "warn"
	}
	return "bad"
}

func stateClass(s string) string {
	switch s {
	case audit.StateOpen, audit.StateLate:
		return "b-bad"
	case audit.StateClosing:
		return "b-warn"
	}
	return "b-mute"
}

// when shows a time (or an RFC 3339 string) to the minute, in UTC.
func when(v any) string {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case string:
		if v == "" {
			return "—"
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return v
		}
	}
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func (h *Handler) loginForm(c echo.Context) error {
	return h.render(c, http.StatusOK, "login", loginPage{})
}

type loginPage struct{ Error string }

// login trades a token for a session cookie.
func (h *Handler) login(c echo.Context) error {
	e, err := h.tokens.authenticate(c.FormValue("token"))
	switch {
	case errors.Is(err, ErrTokensUnavailable):
		return h.render(c, http.StatusServiceUnavailable, "login", loginPage{Error: "The server cannot read its auditor token file; nobody can sign in until an operator fixes it."})
	case err != nil:
		return h.render(c, http.StatusUnauthorized, "login", loginPage{Error: "That token is not valid, or it has been revoked."})
	}
	c.Set(auditorKey, e.name)
	c.SetCookie(h.sessions.issue(e))
	return c.Redirect(http.StatusSeeOther, "/audit/")
}

func (h *Handler) logout(c echo.Context) error {
	c.SetCookie(expiredSession())
	return c.Redirect(http.StatusSeeOther, "/audit/login")
}

type dashboardPage struct {
	Empty      bool
	Checkpoint audit.Checkpoint
	Months     []monthRow
	Open       []audit.Row
	Late       int
	Changes    int
	Compliant  int
}

type monthRow struct {
	audit.MonthStat
	URL string
}

// Rate is the whole log's compliance rate.
func (d dashboardPage) Rate() float64 {
	return audit.MonthStat{Changes: d.Changes, Compliant: d.Compliant}.Rate()
}

func (h *Handler) dashboard(c echo.Context) error {
	d, err := h.svc.Dashboard(c.Request().Context())
	if errors.Is(err, audit.ErrEmpty) {
		return h.render(c, http.StatusOK, "dashboard", dashboardPage{Empty: true})
	}
	if err != nil {
		return h.failPage(c, err)
	}
	p := dashboardPage{Checkpoint: d.Checkpoint, Open: d.Open}
	for _, m := range d.Months {
		p.Months = append(p.Months, monthRow{MonthStat: m, URL: monthURL(m.Month)})
		p.Changes += m.Changes
		p.Compliant += m.Compliant
	}
	for _, r := range d.Open {
		if r.ExceptionState == audit.StateLate {
			p.Late++
		}
	}
	return h.render(c, http.StatusOK, "dashboard", p)
}

// monthURL is the population page of a month ("2026-01").
func monthURL(month string) string {
	from, err := time.Parse("2006-01", month)
	if err != nil {
		return "/audit/changes"
	}
	v := url.Values{"from": {from.Format(time.DateOnly)}, "to": {from.AddDate(0, 1, 0).Format(time.DateOnly)}}
	return "/audit/changes?" + v.Encode()
}
