// Package web serves the auditor's read-only view of the evidence ledger:
// the audit API under /api/v1 (bearer tokens) and the auditor web UI under
// /audit (a signed session cookie made from the same tokens).
//
// Nothing here writes: the Auditor interface has no method that could, and
// the only POST routes compute a sample or log in.
package web

import (
	"context"
	"crypto/rand"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/changegate/changegate/internal/audit"
)

// Auditor is what the API and the UI read. It is the whole of
// audit.Service's read surface, so it is larger than most interfaces here;
// keeping it on the consumer's side means a write method cannot reach the
// web by accident.
type Auditor interface {
	Latest(ctx context.Context) (audit.Checkpoint, error)
	At(ctx context.Context, size uint64) (audit.Checkpoint, error)
	Page(ctx context.Context, q audit.Query, cp audit.Checkpoint, start uint64, limit int) (*audit.Population, bool, error)
	Count(ctx context.Context, q audit.Query, cp audit.Checkpoint) (int, error)
	Position(ctx context.Context, q audit.Query, cp audit.Checkpoint, seq uint64) (int, error)
	ExportPopulation(ctx context.Context, q audit.Query, cp audit.Checkpoint, format string) (file, manifest []byte, err error)
	Record(ctx context.Context, id string) (*audit.RecordView, error)
	Exceptions(ctx context.Context, q audit.Query, state string) (*audit.Population, error)
	Sample(ctx context.Context, req audit.SampleRequest) ([]byte, error)
	CheckSample(ctx context.Context, req audit.SampleRequest, cp audit.Checkpoint) error
	Export(ctx context.Context, ids []string) ([]byte, error)
	InclusionProof(ctx context.Context, seq, size uint64) (audit.Proof, error)
	ConsistencyProof(ctx context.Context, from, to uint64) ([]string, error)
	Dashboard(ctx context.Context) (*audit.Dashboard, error)
}

// Options tune the handler; the zero value is ready for use.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// SessionKey signs UI sessions and CSRF tokens. Empty: a random key
	// per process, so sessions end on restart. Replicas behind one load
	// balancer need the same key.
	SessionKey []byte
	// SessionTTL is how long a UI session lasts; default 12h.
	SessionTTL time.Duration
	// Coverage lists where changegate is enforced; nil: not served.
	Coverage CoverageSource
}

// Handler serves the audit API and the auditor UI.
type Handler struct {
	svc      Auditor
	tokens   *Tokens
	log      *slog.Logger
	sessions sessions
	pages    map[string]*template.Template
	cover    CoverageSource
}

// New returns a handler reading svc, admitting the holders of tokens.
func New(svc Auditor, tokens *Tokens, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.SessionKey) == 0 {
		o.SessionKey = make([]byte, 32)
		rand.Read(o.SessionKey) // never fails (crypto/rand)
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	return &Handler{
		svc: svc, tokens: tokens, log: o.Logger,
		sessions: sessions{key: o.SessionKey, ttl: o.SessionTTL, now: o.Now},
		pages:    parsePages(),
		cover:    o.Coverage,
	}
}

// Register mounts the API and the UI on e.
func (h *Handler) Register(e *echo.Echo) {
	api := e.Group("/api/v1", h.logAccess, h.apiErrors, h.requireToken)
	api.GET("/changes", h.changes)
	api.GET("/changes/:id", h.record)
	api.POST("/samples", h.createSample)
	api.GET("/samples/:id/package", h.samplePackage)
	api.GET("/exceptions", h.exceptions)
	api.GET("/export", h.export)
	api.GET("/checkpoint", h.checkpoint)
	api.GET("/proof/inclusion", h.inclusionProof)
	api.GET("/proof/consistency", h.consistencyProof)
	api.GET("/coverage", h.coverage)

	e.GET("/audit", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/audit/") })
	ui := e.Group("/audit", h.logAccess, pageHeaders, h.pageErrors)
	ui.GET("/login", h.loginForm)
	ui.POST("/login", h.login, limitForm, sameOrigin)
	ui.POST("/logout", h.logout, limitForm, sameOrigin, h.requireSession, h.checkCSRF)
	ui.GET("/", h.dashboard, h.requireSession)
	ui.GET("/changes", h.populationList, h.requireSession)
	ui.GET("/changes/:id", h.recordPage, h.requireSession)
	ui.GET("/changes/:id/record.html", h.recordFile, h.requireSession)
	ui.GET("/changes/:id/envelope.json", h.envelopeFile, h.requireSession)
	ui.GET("/sample", h.sampleForm, h.requireSession)
	ui.GET("/coverage", h.coveragePage, h.requireSession)
	ui.POST("/sample", h.drawSample, limitForm, sameOrigin, h.requireSession, h.checkCSRF)
}
