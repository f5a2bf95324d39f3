package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/webhook"
)

// Script drives one changegate server through the demo's scenes. It
// keeps the first error; every step after it does nothing.
type Script struct {
	World      *World
	Base       string // the changegate server's URL
	Secret     []byte // its GitHub webhook secret
	JiraSecret []byte
	Token      string // an auditor token: records are read back through the audit API
	Out        io.Writer
	// Timeout bounds each wait for the server (default 30s).
	Timeout time.Duration

	client  *http.Client
	seq     int
	shown   map[string]int // check-run writes printed, by head SHA
	prOf    map[string]int // head SHA → pull request number
	records int            // records printed
	day     time.Time      // the population's period starts at the demo's day
	// Merge commits the later scenes deploy and push on.
	deployable, bypassed string
	err                  error
}

// scene is one story of the demo.
type scene struct {
	title string
	run   func(ctx context.Context)
}

// Run plays every scene, then prints the population the auditor sees.
func (s *Script) Run(ctx context.Context) error {
	s.client = &http.Client{Timeout: 10 * time.Second}
	s.shown, s.prOf = map[string]int{}, map[string]int{}
	s.day = time.Now().UTC().Truncate(24 * time.Hour)
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	for _, sc := range []scene{
		{"1. A change that becomes compliant, step by step", s.compliantStepByStep},
		{"2. The reviewer wrote part of the change", s.reviewerIsAnAuthor},
		{"3. An admin merges past a failing check", s.adminBypass},
		{"4. An emergency fix, approved by a manager after the merge, in time", s.emergency},
		{"5. A direct push to main", s.directPush},
		{"6. Production deployments through the deployment protection rule", s.deployments},
	} {
		fmt.Fprintf(s.Out, "\n%s\n", sc.title)
		sc.run(ctx)
		if s.err != nil {
			return fmt.Errorf("%s: %w", sc.title, s.err)
		}
	}
	s.printPopulation(ctx)
	if s.err != nil {
		return s.err
	}
	if n := s.World.Unexpected(); n > 0 {
		return fmt.Errorf("the fakes saw %d requests GitHub or Jira would not understand (see the log)", n)
	}
	return nil
}

// say narrates a step.
func (s *Script) say(format string, args ...any) {
	if s.err == nil {
		fmt.Fprintf(s.Out, "  · "+format+"\n", args...)
	}
}

func (s *Script) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// github sends a signed GitHub delivery.
func (s *Script) github(ctx context.Context, event, body string) {
	s.seq++
	s.post(ctx, "/webhooks/github", []byte(body), map[string]string{
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   fmt.Sprintf("demo-%s-%d", event, s.seq),
		"X-Hub-Signature-256": webhook.Sign(s.Secret, []byte(body)),
	})
}

// jiraUpdated sends Jira's signed issue-updated delivery for key.
func (s *Script) jiraUpdated(ctx context.Context, key string) {
	s.seq++
	body := fmt.Sprintf(`{"webhookEvent":"jira:issue_updated","issue":{"key":%q},"changelog":{"items":[{"field":"status"}]}}`, key)
	s.post(ctx, "/webhooks/jira", []byte(body), map[string]string{
		"X-Atlassian-Webhook-Identifier": fmt.Sprintf("demo-jira-%d", s.seq),
		"X-Hub-Signature":                webhook.Sign(s.JiraSecret, []byte(body)),
	})
}

func (s *Script) post(ctx context.Context, path string, body []byte, header map[string]string) {
	if s.err != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+path, bytes.NewReader(body))
	if err != nil {
		s.fail(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.fail(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		s.fail(fmt.Errorf("POST %s: %s %s", path, resp.Status, bytes.TrimSpace(b)))
	}
}

// waitFor polls cond until it holds or the step times out.
func (s *Script) waitFor(ctx context.Context, what string, cond func() (bool, error)) {
	if s.err != nil {
		return
	}
	deadline := time.Now().Add(s.Timeout)
	for {
		ok, err := cond()
		switch {
		case err != nil:
			s.fail(fmt.Errorf("waiting for %s: %w", what, err))
			return
		case ok:
			return
		case time.Now().After(deadline):
			s.fail(fmt.Errorf("%s did not happen within %s", what, s.Timeout))
			return
		}
		select {
		case <-ctx.Done():
			s.fail(ctx.Err())
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkChanges waits for changegate to write the check on sha again, and
// prints what it wrote.
func (s *Script) checkChanges(ctx context.Context, sha string) {
	var writes []ghfake.CheckRunWrite
	s.waitFor(ctx, fmt.Sprintf("the check on #%d", s.prOf[sha]), func() (bool, error) {
		writes = s.writesOn(sha)
		return len(writes) > s.shown[sha], nil
	})
	if s.err != nil {
		return
	}
	for _, w := range writes[s.shown[sha]:] {
		mark := "…"
		switch w.Conclusion {
		case "success":
			mark = "✓"
		case "failure", "action_required":
			mark = "✗"
		case "neutral", "skipped":
			mark = "–"
		}
		fmt.Fprintf(s.Out, "      check on #%d: %s %s\n", s.prOf[sha], mark, w.Title)
	}
	s.shown[sha] = len(writes)
}

// quoteSummary prints the first line of the latest check's text on sha
// that contains text.
func (s *Script) quoteSummary(sha, text string) {
	writes := s.writesOn(sha)
	if s.err != nil || len(writes) == 0 {
		return
	}
	last := writes[len(writes)-1]
	for _, line := range strings.Split(last.Summary+"\n"+last.Text, "\n") {
		if strings.Contains(line, text) {
			fmt.Fprintf(s.Out, "        %s\n", strings.TrimLeft(line, "-* "))
			return
		}
	}
}

func (s *Script) writesOn(sha string) []ghfake.CheckRunWrite {
	var out []ghfake.CheckRunWrite
	for _, w := range s.World.GitHub.CheckRunWrites(Owner, Repo) {
		if w.HeadSHA == sha {
			out = append(out, w)
		}
	}
	return out
}

// newRecords waits until the ledger holds n more records than were
// printed, reading them as an auditor does (GET /api/v1/changes), and
// prints them.
func (s *Script) newRecords(ctx context.Context, n int) {
	var rows []map[string]any
	s.waitFor(ctx, fmt.Sprintf("%d new change records", n), func() (bool, error) {
		var err error
		rows, err = s.population(ctx)
		return len(rows) >= s.records+n, err
	})
	if s.err != nil {
		return
	}
	for _, r := range rows[s.records:] {
		fmt.Fprintf(s.Out, "      record %v: %s\n", r["seq"], describeRow(r, rows))
	}
	s.records = len(rows)
}

// describeRow is one line about a population row of rows.
func describeRow(r map[string]any, rows []map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v", r["change_type"])
	if pr, ok := r["pr"].(float64); ok && pr > 0 {
		fmt.Fprintf(&b, " #%d", int(pr))
	}
	if env, _ := r["environment"].(string); env != "" {
		fmt.Fprintf(&b, " to %s", env)
	}
	if closes, _ := r["closes"].(string); closes != "" {
		fmt.Fprintf(&b, ": closes the exception of record %s", seqOf(rows, closes))
		return b.String()
	}
	if c, _ := r["compliant"].(bool); c {
		b.WriteString(", compliant")
	} else {
		b.WriteString(", not compliant")
	}
	if exc, _ := r["exception"].(string); exc != "" {
		fmt.Fprintf(&b, ", exception %s (%v)", exc, r["exception_state"])
	}
	return b.String()
}

// seqOf is the sequence number of record id among rows, or the id.
func seqOf(rows []map[string]any, id string) string {
	for _, r := range rows {
		if r["record_id"] == id {
			return fmt.Sprint(r["seq"])
		}
	}
	return id
}

// printPopulation prints the population as the auditor pulls it.
func (s *Script) printPopulation(ctx context.Context) {
	if s.err != nil {
		return
	}
	rows, err := s.population(ctx)
	if err != nil {
		s.fail(err)
		return
	}
	fmt.Fprintf(s.Out, "\nThe population, as an auditor pulls it (GET /api/v1/changes): %d records\n", len(rows))
	for _, r := range rows {
		fmt.Fprintf(s.Out, "  %3v  %s\n", r["seq"], describeRow(r, rows))
	}
}

// population reads the demo's population through the audit API: the
// records of its day and the next (a demo may run past midnight).
func (s *Script) population(ctx context.Context) ([]map[string]any, error) {
	q := url.Values{"from": {s.day.Format(time.DateOnly)}, "to": {s.day.AddDate(0, 0, 2).Format(time.DateOnly)}}
	var rows []map[string]any
	for cursor := ""; ; {
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Rows       []map[string]any `json:"rows"`
			NextCursor string           `json:"next_cursor"`
		}
		err := s.getJSON(ctx, "/api/v1/changes?"+q.Encode(), &page)
		if errors.Is(err, errNoRecords) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, page.Rows...)
		if cursor = page.NextCursor; cursor == "" {
			return rows, nil
		}
	}
}

func (s *Script) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		return errNoRecords
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("GET %s: %s %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// gateAnswer waits for changegate's answer to deployment run runID and
// prints it.
func (s *Script) gateAnswer(ctx context.Context, runID int64) {
	var got ghfake.GateAnswer
	s.waitFor(ctx, fmt.Sprintf("the answer to deployment %d", runID), func() (bool, error) {
		for _, a := range s.World.GitHub.GateAnswers() {
			if a.RunID == runID {
				got = a
				return true, nil
			}
		}
		return false, nil
	})
	if s.err != nil {
		return
	}
	comment, _, _ := strings.Cut(got.Comment, "\n")
	fmt.Fprintf(s.Out, "      gate: %s: %s\n", got.State, comment)
}

var errNoCheck = errors.New("no check")

// errNoRecords is the audit API's 409 before the first record.
var errNoRecords = errors.New("the ledger has no records yet")
