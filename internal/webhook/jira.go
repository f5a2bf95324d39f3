package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/changegate/changegate/internal/jobs"
)

// Jira handles POST /webhooks/jira: Jira admin webhooks, signed with a
// shared secret in X-Hub-Signature ("sha256=<hex>"). An issue that was
// updated or transitioned re-evaluates every open pull request naming it.
type Jira struct {
	gh *GitHub // shares the enqueuer, limits, clock and counters
}

// NewJira returns the Jira intake handler. It refuses an empty secret.
func NewJira(gh *GitHub, secret []byte) (*Jira, error) {
	if len(secret) == 0 {
		return nil, errors.New("webhook: empty Jira secret refused")
	}
	j := *gh
	j.secret = secret
	return &Jira{gh: &j}, nil
}

var jiraKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]*$`)

type jiraPayload struct {
	WebhookEvent string `json:"webhookEvent"`
	Timestamp    int64  `json:"timestamp"`
	Issue        *struct {
		Key string `json:"key"`
	} `json:"issue"`
}

// TranslateJira turns a verified Jira delivery into jobs. It is pure.
func TranslateJira(id string, body []byte, received time.Time) (Delivery, error) {
	d := Delivery{ID: id, Source: "jira", Event: "jira", ReceivedAt: received.UTC()}
	var p jiraPayload
	if !isObject(body) {
		return d, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return d, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d.Action = p.WebhookEvent
	switch p.WebhookEvent {
	case "jira:issue_updated", "jira:issue_created", "jira:issue_deleted", "comment_created", "comment_updated":
	default:
		return d, nil
	}
	if p.Issue == nil || !jiraKey.MatchString(p.Issue.Key) {
		return d, fmt.Errorf("%w: %s without a valid issue.key", ErrMalformed, p.WebhookEvent)
	}
	d.Jobs = []jobs.Job{jobs.JiraIssue{DeliveryID: id, Key: p.Issue.Key, Event: p.WebhookEvent, QueuedAt: d.ReceivedAt}}
	return d, nil
}

// Handle is the echo handler.
func (j *Jira) Handle(c echo.Context) error {
	h := j.gh
	req := c.Request()
	if req.ContentLength > h.maxBody {
		return h.rejectSource(c, "jira", http.StatusRequestEntityTooLarge, "unverified", OutcomeTooLarge, "payload too large")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, h.maxBody))
	if err != nil {
		return h.rejectSource(c, "jira", http.StatusRequestEntityTooLarge, "unverified", OutcomeTooLarge, "payload too large")
	}
	if err := VerifySignature(h.secret, body, req.Header.Get("X-Hub-Signature")); err != nil {
		return h.rejectSource(c, "jira", http.StatusUnauthorized, "unverified", OutcomeBadSignature, err.Error())
	}
	// Jira Cloud keeps X-Atlassian-Webhook-Identifier across retries; other
	// senders get the body's hash, so a byte-identical resend is a duplicate.
	id := req.Header.Get("X-Atlassian-Webhook-Identifier")
	if id == "" || len(id) > 128 {
		sum := sha256.Sum256(body)
		id = hex.EncodeToString(sum[:16])
	}
	id = "jira-" + id
	d, err := TranslateJira(id, body, h.now())
	if err != nil {
		return h.rejectSource(c, "jira", http.StatusBadRequest, "jira", OutcomeMalformed, err.Error())
	}
	log := h.log.With(slog.String("delivery_id", id), slog.String("source", "jira"), slog.String("jira_event", d.Action))
	if len(d.Jobs) == 0 {
		h.counter.WithLabelValues("jira", "jira", OutcomeIgnored).Inc()
		return c.JSON(http.StatusAccepted, reply{Status: OutcomeIgnored, Delivery: id})
	}
	dup, err := h.enqueuer.Enqueue(req.Context(), &d)
	if err != nil {
		log.Error("jira webhook not stored", "error", err)
		return h.rejectSource(c, "jira", http.StatusServiceUnavailable, "jira", OutcomeUnavailable, "could not store delivery")
	}
	outcome := OutcomeAccepted
	if dup {
		outcome = OutcomeDuplicate
	}
	h.counter.WithLabelValues("jira", "jira", outcome).Inc()
	log.Info("jira webhook accepted", "outcome", outcome, "jira_key", d.Jobs[0].(jobs.JiraIssue).Key)
	return c.JSON(http.StatusAccepted, reply{Status: outcome, Delivery: id})
}
