package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/changegate/changegate/internal/jobs"
)

// Jira handles POST /webhooks/jira: Jira admin webhooks, signed with a
// shared secret in X-Hub-Signature ("sha256=<hex>"). An issue that was
// updated or transitioned re-evaluates every open pull request naming it.
type Jira struct {
	gh    *GitHub // shares the enqueuer, limits, clock and counters
	parse JiraParser
}

// JiraParser reads a Jira webhook body: its event and the issue keys it
// concerns (a moved issue names its old and new key). jira.ParseWebhook fits.
type JiraParser func(body []byte) (event string, keys []string, err error)

// NewJira returns the Jira intake handler. It refuses an empty secret.
func NewJira(gh *GitHub, secret []byte, parse JiraParser) (*Jira, error) {
	if len(secret) == 0 {
		return nil, errors.New("webhook: empty Jira secret refused")
	}
	if parse == nil {
		return nil, errors.New("webhook: a Jira parser is required")
	}
	j := *gh
	j.secret = secret
	return &Jira{gh: &j, parse: parse}, nil
}

// jiraEvents are the Jira events that can change a ticket control.
var jiraEvents = map[string]bool{
	"jira:issue_updated": true, "jira:issue_created": true, "jira:issue_deleted": true,
}

// TranslateJira turns a verified Jira delivery into jobs. It is pure.
func TranslateJira(id string, body []byte, received time.Time, parse JiraParser) (jobs.Delivery, error) {
	d := jobs.Delivery{ID: id, Source: "jira", Event: "jira", ReceivedAt: received.UTC()}
	event, keys, err := parse(body)
	if err != nil {
		return d, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d.Action = event
	if !jiraEvents[event] {
		// Not ours: counted and dropped, and its name, which Jira's
		// sender chose, is not logged.
		d.Action = "other"
		return d, nil
	}
	if len(keys) == 0 {
		return d, fmt.Errorf("%w: %s without an issue key", ErrMalformed, event)
	}
	for _, k := range keys {
		d.Jobs = append(d.Jobs, jobs.JiraIssue{DeliveryID: id, Key: k, Event: event, QueuedAt: d.ReceivedAt})
	}
	return d, nil
}

// JiraDeliveryID is a Jira delivery's dedupe key, in its own namespace
// ("jira:", which no GitHub delivery id can hold). Jira Cloud keeps
// X-Atlassian-Webhook-Identifier across retries; an identifier of another
// shape is hashed, so that it is kept losslessly distinct; other senders
// get the body's hash, so a byte-identical resend is a duplicate.
func JiraDeliveryID(header string, body []byte) string {
	switch {
	case validDeliveryID(header):
		return "jira:" + header
	case header != "":
		sum := sha256.Sum256([]byte(header))
		return "jira:h-" + hex.EncodeToString(sum[:16])
	}
	sum := sha256.Sum256(body)
	return "jira:" + hex.EncodeToString(sum[:16])
}

// Handle is the echo handler.
func (j *Jira) Handle(c echo.Context) error {
	h := j.gh
	body, ok, err := h.readSigned(c, "jira", "X-Hub-Signature")
	if !ok {
		return err
	}
	id := JiraDeliveryID(c.Request().Header.Get("X-Atlassian-Webhook-Identifier"), body)
	d, err := TranslateJira(id, body, h.now(), j.parse)
	if err != nil {
		return h.rejectSource(c, "jira", http.StatusBadRequest, "jira", OutcomeMalformed, err.Error())
	}
	log := h.log.With(slog.String("delivery_id", id), slog.String("source", "jira"), slog.String("jira_event", d.Action))
	return h.accept(c, "jira", "jira", &d, log)
}
