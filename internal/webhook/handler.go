package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/changegate/changegate/internal/jobs"
)

// Enqueuer durably records a delivery and its jobs. It reports duplicate
// when the delivery ID was recorded before; then nothing new is queued.
type Enqueuer interface {
	Enqueue(ctx context.Context, d *jobs.Delivery) (duplicate bool, err error)
}

// Outcomes counted per delivery.
const (
	OutcomeAccepted     = "accepted"
	OutcomeDuplicate    = "duplicate"
	OutcomeIgnored      = "ignored"
	OutcomePing         = "ping"
	OutcomeBadSignature = "bad_signature"
	OutcomeTooLarge     = "too_large"
	OutcomeMalformed    = "malformed"
	OutcomeUnavailable  = "unavailable"
)

// GitHub handles POST /webhooks/github.
type GitHub struct {
	secret    []byte
	maxBody   int64
	enqueuer  Enqueuer
	log       *slog.Logger
	now       func() time.Time
	counter   *prometheus.CounterVec
	translate TranslateOptions
}

// Options configure a GitHub intake handler.
type Options struct {
	Secret     []byte
	MaxBody    int64
	Enqueuer   Enqueuer
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// AppID is this App's ID, to ignore events about its own check run.
	AppID int64
}

// NewGitHub returns the GitHub intake handler. It refuses an empty secret.
func NewGitHub(o Options) (*GitHub, error) {
	if len(o.Secret) == 0 {
		return nil, errors.New("webhook: empty secret refused")
	}
	if o.MaxBody <= 0 || o.Enqueuer == nil || o.Logger == nil {
		return nil, errors.New("webhook: MaxBody, Enqueuer and Logger are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &GitHub{
		translate: TranslateOptions{AppID: o.AppID},
		secret:    o.Secret,
		maxBody:   o.MaxBody,
		enqueuer:  o.Enqueuer,
		log:       o.Logger,
		now:       o.Now,
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changegate_webhook_deliveries_total",
			Help: "Webhook deliveries received, by source, event and outcome.",
		}, []string{"source", "event", "outcome"}),
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(h.counter); err != nil {
			return nil, err
		}
	}
	return h, nil
}

type reply struct {
	Status   string `json:"status"`
	Delivery string `json:"delivery,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Handle is the echo handler.
func (h *GitHub) Handle(c echo.Context) error {
	body, ok, err := h.readSigned(c, "github", "X-Hub-Signature-256")
	if !ok {
		return err
	}
	req := c.Request()
	event := req.Header.Get("X-GitHub-Event")
	id := req.Header.Get("X-GitHub-Delivery")
	label := eventLabel(event)
	if event == "" || id == "" {
		return h.reject(c, http.StatusBadRequest, label, OutcomeMalformed, "X-GitHub-Event and X-GitHub-Delivery are required")
	}
	if !validDeliveryID(id) {
		return h.reject(c, http.StatusBadRequest, label, OutcomeMalformed, "X-GitHub-Delivery must be 1 to 128 ASCII letters, digits, '.', '_' or '-'")
	}
	d, err := Translate(id, event, body, h.now(), h.translate)
	if err != nil {
		h.log.Warn("webhook rejected", "delivery_id", id, "event", event, "error", err)
		return h.reject(c, http.StatusBadRequest, label, OutcomeMalformed, err.Error())
	}
	if event == "ping" {
		h.counter.WithLabelValues("github", label, OutcomePing).Inc()
		return c.JSON(http.StatusOK, reply{Status: "pong", Delivery: id})
	}
	return h.accept(c, "github", label, &d, h.log.With(deliveryAttrs(&d)...))
}

// validDeliveryID says whether a GitHub delivery id has the shape of
// GitHub's GUIDs: up to 128 ASCII letters, digits, '.', '_' and '-'.
// Anything else is refused, not stored: an id that is not valid UTF-8
// would reach its jobs altered and never count as processed, and a ':'
// could collide with the namespace of Jira's deliveries (jira:ID).
func validDeliveryID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// readSigned reads a body within the size limit and checks its signature
// in header. When ok is false, the request has been answered and the
// returned error is the handler's result.
func (h *GitHub) readSigned(c echo.Context, source, header string) (body []byte, ok bool, err error) {
	req := c.Request()
	// Size first: nothing else is worth doing for a body GitHub would never send.
	if req.ContentLength > h.maxBody {
		return nil, false, h.rejectSource(c, source, http.StatusRequestEntityTooLarge, "unverified", OutcomeTooLarge, "payload exceeds 25 MB")
	}
	body, err = readBody(http.MaxBytesReader(c.Response(), req.Body, h.maxBody), req.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, false, h.rejectSource(c, source, http.StatusRequestEntityTooLarge, "unverified", OutcomeTooLarge, "payload exceeds 25 MB")
		}
		return nil, false, h.rejectSource(c, source, http.StatusBadRequest, "unverified", OutcomeMalformed, "could not read body")
	}
	if err := VerifySignature(h.secret, body, req.Header.Get(header)); err != nil {
		// The event header is not trusted before the signature is, so it
		// never becomes a label value here.
		return nil, false, h.rejectSource(c, source, http.StatusUnauthorized, "unverified", OutcomeBadSignature, err.Error())
	}
	return body, true, nil
}

// readBody reads a body whole. A declared length (already within the
// limit) sizes the buffer at once, instead of io.ReadAll's doublings from
// 512 bytes: for a 28 KB pull request payload, seven copies fewer.
func readBody(r io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, declared+1))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// accept stores a translated delivery, or drops it when it asks for no
// work, and answers.
func (h *GitHub) accept(c echo.Context, source, label string, d *jobs.Delivery, log *slog.Logger) error {
	if len(d.Jobs) == 0 {
		h.counter.WithLabelValues(source, label, OutcomeIgnored).Inc()
		log.Debug("webhook ignored")
		return c.JSON(http.StatusAccepted, reply{Status: OutcomeIgnored, Delivery: d.ID})
	}
	dup, err := h.enqueuer.Enqueue(c.Request().Context(), d)
	if err != nil {
		// Not acknowledged: the sender shows the delivery as failed and it
		// can be redelivered; the dedupe key makes that safe.
		log.Error("webhook not stored", "error", err)
		return h.rejectSource(c, source, http.StatusServiceUnavailable, label, OutcomeUnavailable, "could not store delivery; redeliver later")
	}
	outcome := OutcomeAccepted
	if dup {
		outcome = OutcomeDuplicate
	}
	h.counter.WithLabelValues(source, label, outcome).Inc()
	log.Info("webhook accepted", "outcome", outcome, "jobs", len(d.Jobs))
	return c.JSON(http.StatusAccepted, reply{Status: outcome, Delivery: d.ID})
}

func (h *GitHub) reject(c echo.Context, status int, event, outcome, msg string) error {
	return h.rejectSource(c, "github", status, event, outcome, msg)
}

func (h *GitHub) rejectSource(c echo.Context, source string, status int, event, outcome, msg string) error {
	h.counter.WithLabelValues(source, event, outcome).Inc()
	return c.JSON(status, reply{Status: outcome, Error: msg})
}

func deliveryAttrs(d *jobs.Delivery) []any {
	attrs := []any{slog.String("delivery_id", d.ID), slog.String("event", d.Event)}
	if d.Action != "" {
		attrs = append(attrs, slog.String("action", d.Action))
	}
	if d.InstallationID != 0 {
		attrs = append(attrs, slog.Int64("installation_id", d.InstallationID))
	}
	if d.Repo != "" {
		attrs = append(attrs, slog.String("repo", d.Repo))
	}
	if d.SHA != "" {
		attrs = append(attrs, slog.String("sha", d.SHA))
	}
	return attrs
}

// knownEvents bounds the event label's values to GitHub's vocabulary.
var knownEvents = map[string]bool{
	"check_run": true, "check_suite": true, "deployment": true, "deployment_protection_rule": true,
	"deployment_review": true, "deployment_status": true, "installation": true,
	"installation_repositories": true, "issue_comment": true, "membership": true, "merge_group": true,
	"ping": true, "pull_request": true, "pull_request_review": true, "pull_request_review_comment": true,
	"push": true, "status": true, "team": true, "workflow_job": true, "workflow_run": true,
	"github_app_authorization": true, "installation_target": true, "meta": true, "repository": true,
}

func eventLabel(event string) string {
	if knownEvents[event] {
		return event
	}
	return "other"
}
