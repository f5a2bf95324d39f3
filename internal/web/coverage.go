package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Coverage is whether changegate is enforced on one production branch or
// environment, as the control watch last saw it.
type Coverage struct {
	Repo      string    `json:"repo"`
	Target    string    `json:"target"` // branch:NAME or environment:NAME
	Enforced  bool      `json:"enforced"`
	Detail    string    `json:"detail"`
	Since     time.Time `json:"since"`
	CheckedAt time.Time `json:"checked_at"`
}

// CoverageSource lists the coverage (the control watch's state).
type CoverageSource func(ctx context.Context) ([]Coverage, error)

var errNoCoverage = errors.New("coverage is not available on this server")

// coverage is GET /api/v1/coverage.
func (h *Handler) coverage(c echo.Context) error {
	rows, err := h.coverageRows(c.Request().Context())
	if errors.Is(err, errNoCoverage) {
		return c.JSON(http.StatusNotFound, apiError{err.Error()})
	}
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(http.StatusOK, struct {
		Targets []Coverage `json:"targets"`
	}{rows})
}

func (h *Handler) coverageRows(ctx context.Context) ([]Coverage, error) {
	if h.cover == nil {
		return nil, errNoCoverage
	}
	rows, err := h.cover(ctx)
	if rows == nil {
		rows = []Coverage{}
	}
	return rows, err
}

type coveragePage struct {
	Rows       []Coverage
	Enforced   int
	Unenforced int
}

// coveragePage is GET /audit/coverage.
func (h *Handler) coveragePage(c echo.Context) error {
	rows, err := h.coverageRows(c.Request().Context())
	if err != nil && !errors.Is(err, errNoCoverage) {
		return h.failPage(c, err)
	}
	p := coveragePage{Rows: rows}
	for _, r := range rows {
		if r.Enforced {
			p.Enforced++
		} else {
			p.Unenforced++
		}
	}
	return h.render(c, http.StatusOK, "coverage", p)
}
