package jira

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SignatureHeader carries the signature of a Jira admin webhook that has a
// secret: "sha256=" and the hex HMAC-SHA256 of the raw body. Verify it
// (in constant time, refusing an empty secret) before calling ParseWebhook;
// that happens at intake, not here.
const SignatureHeader = "X-Hub-Signature"

type webhookPayload struct {
	WebhookEvent string `json:"webhookEvent"`
	Issue        *struct {
		Key string `json:"key"`
	} `json:"issue"`
	Changelog *struct {
		Items []struct {
			Field      string  `json:"field"`
			FieldType  string  `json:"fieldtype"`
			FromString *string `json:"fromString"`
			ToString   *string `json:"toString"`
		} `json:"items"`
	} `json:"changelog"`
}

// ParseWebhook reads a Jira admin webhook body: its event (webhookEvent,
// such as "jira:issue_updated") and the issue keys it affects. That is
// issue.key, plus the old key when the changelog shows the issue was moved
// to another project, because pull requests still name the old key. An
// event without an issue (project or version events) has no keys.
func ParseWebhook(body []byte) (event string, keys []string, err error) {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return "", nil, errors.New("jira webhook: body is not a JSON object")
	}
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return "", nil, fmt.Errorf("jira webhook: %w", err)
	}
	if p.WebhookEvent == "" {
		return "", nil, errors.New("jira webhook: no webhookEvent")
	}
	add := func(k string) {
		for _, have := range keys {
			if have == k {
				return
			}
		}
		keys = append(keys, k)
	}
	if p.Issue != nil {
		if !validKey(p.Issue.Key) {
			return p.WebhookEvent, nil, fmt.Errorf("jira webhook: %s with issue key %s", shortQuote(p.WebhookEvent), shortQuote(p.Issue.Key))
		}
		add(p.Issue.Key)
	}
	if p.Changelog != nil {
		for _, it := range p.Changelog.Items {
			if !strings.EqualFold(it.Field, "key") || (it.FieldType != "" && it.FieldType != "jira") {
				continue
			}
			for _, s := range []*string{it.FromString, it.ToString} {
				if s != nil && validKey(*s) {
					add(*s)
				}
			}
		}
	}
	return p.WebhookEvent, keys, nil
}
