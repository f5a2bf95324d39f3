package web

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/testenv"
)

// fixture is a real ledger of a few changes behind a real server.
type fixture struct {
	srv       *httptest.Server
	svc       *audit.Service
	pub       []byte
	tokenFile string
	tokens    map[string]string // name → token
	ids       []string          // record ids by seq
	logs      *testenv.SyncBuffer
	clock     *clock
}

// clock is a settable now, for session expiry.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// fixtureChange is one change of the fixture's ledger.
type fixtureChange struct {
	repo   string
	pr     int
	at     time.Time
	typ    evidence.ChangeType
	closes int // index of the emergency change this approval closes, or -1
}

// fixtureChanges: January and March are compliant; February has an
// emergency change approved in time and a bypass; March has an emergency
// change never approved, late by the last record.
var fixtureChanges = []fixtureChange{
	{"acme/api", 101, date(2026, 1, 10), evidence.Standard, -1},
	{"acme/web", 102, date(2026, 1, 20), evidence.Standard, -1},
	{"acme/api", 103, date(2026, 2, 3), evidence.Emergency, -1},
	{"acme/api", 103, date(2026, 2, 4), evidence.Emergency, 2},
	{"acme/web", 104, date(2026, 2, 14), evidence.Bypass, -1},
	{"acme/api", 105, date(2026, 3, 2), evidence.Standard, -1},
	{"acme/pay", 106, date(2026, 3, 5), evidence.Emergency, -1},
	{"acme/api", 107, date(2026, 3, 20), evidence.Standard, -1},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

// newFixture builds the ledger of changes (all of fixtureChanges when nil)
// and serves it with tokens for alice and bob.
func newFixture(t *testing.T, changes []fixtureChange) *fixture {
	t.Helper()
	if changes == nil {
		changes = fixtureChanges
	}
	f := &fixture{logs: &testenv.SyncBuffer{}, clock: &clock{}, tokens: map[string]string{}}
	f.clock.ns.Store(time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	f.svc = buildLedger(t, changes, f)
	f.tokenFile = filepath.Join(t.TempDir(), "auditor-tokens")
	var lines []string
	for _, name := range []string{"alice@audit-firm.example", "bob"} {
		tok, line, err := NewToken(name)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = tok
		lines = append(lines, line)
	}
	f.writeTokens(t, "# auditors of FY2026\n"+strings.Join(lines, "\n")+"\n")
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	tokens, err := LoadTokens(f.tokenFile, log)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	New(f.svc, tokens, Options{Logger: log, Now: f.clock.now}).Register(e)
	f.srv = httptest.NewServer(e)
	t.Cleanup(f.srv.Close)
	return f
}

func buildLedger(t *testing.T, changes []fixtureChange, f *fixture) *audit.Service {
	t.Helper()
	dir := t.TempDir()
	key, _, err := evidence.LoadOrCreateKey(filepath.Join(dir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	f.pub = signer.Public()
	blobs, err := fs.Open(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(t.Context(), dir, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	origin := "changegate.test/" + evidence.Fingerprint(signer.Public())[:16]
	l, err := ledger.Open(t.Context(), blobs, store.Ledger(), signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i, ch := range changes {
		r := fixtureRecord(ch, f.ids)
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatalf("append change %d: %v", i, err)
		}
		f.ids = append(f.ids, r.ID)
	}
	svc, err := audit.New(store.LedgerReader(), ledger.NewReader(blobs), signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// fixtureRecord is a realistic record of ch (after benchRecord in
// cmd/changegate); ids are the records appended before it.
func fixtureRecord(ch fixtureChange, ids []string) *evidence.Record {
	owner, name, _ := strings.Cut(ch.repo, "/")
	repo := change.Repo{Owner: owner, Name: name}
	at := func(sec int) time.Time { return ch.at.Add(time.Duration(sec) * time.Second) }
	sha := func(tag string) string { return fmt.Sprintf("%08x%032x", ch.pr, len(tag)*7919)[:40] }
	head, merge := sha("head"), sha("merge")
	key := fmt.Sprintf("PAY-%d", ch.pr)
	facts := change.Facts{
		Subject: change.Subject{Installation: 42, Repo: repo, Number: ch.pr, BaseRef: "main", HeadRef: "feature/" + key, HeadSHA: head, MergeSHA: merge},
		PR: change.PullRequest{Number: ch.pr, URL: fmt.Sprintf("https://github.com/%s/pull/%d", repo, ch.pr),
			Title: key + ": round ledger totals half-even", Author: "alice", State: "closed", Merged: true, BaseRef: "main",
			HeadRef: "feature/" + key, HeadSHA: head, MergeCommitSHA: merge, DefaultBranch: "main", CreatedAt: at(-3600), MergedAt: at(0), MergedBy: "bob"},
		Reviews: []change.Review{
			{ID: int64(ch.pr) * 10, User: "bob", State: change.ReviewApproved, CommitID: head, SubmittedAt: at(-600)},
			{ID: int64(ch.pr)*10 + 1, User: "dave", State: change.ReviewApproved, CommitID: head, SubmittedAt: at(-300)},
		},
		Deployments: []change.Deployment{{ID: int64(ch.pr), Environment: "staging", SHA: head, Ref: "feature/" + key, CreatedAt: at(-900),
			Statuses: []change.DeploymentStatus{{State: "success", CreatedAt: at(-800)}}}},
		Memberships: []change.Membership{{Team: "acme/release-managers", User: "dave", Active: true}},
		Tickets: []change.TicketLookup{{Key: key, Result: change.LookupFound, Ticket: &change.Ticket{Key: key,
			URL: "https://acme.atlassian.net/browse/" + key, Project: "PAY", Type: "Change", Status: "Approved",
			Summary: "Round ledger totals", Reporter: "Paula", Created: at(-86400)}}},
	}
	d := change.Decision{Outcome: change.Compliant, PolicyDigest: "sha256:5d41402abc4b2a76b9719d911017c592",
		Controls: []change.ControlResult{
			{Control: change.ControlTicket, Result: change.Pass, Evidence: []change.Evidence{{Kind: "ticket", Ref: key, Detail: "Approved"}}},
			{Control: change.ControlPeerReview, Result: change.Pass, Evidence: []change.Evidence{{Kind: "review", Ref: "bob", Detail: head}}},
			{Control: change.ControlStaging, Result: change.Pass, Evidence: []change.Evidence{{Kind: "deployment", Ref: "staging", Detail: "success"}}},
			{Control: change.ControlManagerApproval, Result: change.Pass, Evidence: []change.Evidence{{Kind: "review", Ref: "dave", Detail: head}}},
		}}
	r := &evidence.Record{Schema: evidence.Schema, Repo: repo, Subject: evidence.Subject{PR: ch.pr, BaseRef: "main", HeadSHA: head, MergeSHA: merge},
		ChangeType: ch.typ, Facts: facts, Decision: d, Policy: evidence.Policy{Digest: d.PolicyDigest, Source: ch.repo + ":.github/changegate.yml@main"},
		ObservedAt: at(31), DeliveryIDs: []string{fmt.Sprintf("d-%d", ch.pr)}, AppVersion: "test"}
	switch {
	case ch.closes >= 0:
		r.Links = []string{ids[ch.closes]}
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionEmergency, Closes: ids[ch.closes], OpenedAt: at(-86400), DueAt: at(86400),
			Reason: "approved after the fact by dave, within the window"}
	case ch.typ == evidence.Emergency:
		r.Decision.Outcome, r.Decision.Emergency = change.NonCompliant, true
		r.Decision.Controls[3] = change.ControlResult{Control: change.ControlManagerApproval, Result: change.Pending}
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionEmergency, OpenedAt: at(0), DueAt: at(48 * 3600),
			Reason: "merged under the emergency label; a manager's approval is due within 48h"}
	case ch.typ == evidence.Bypass:
		r.Decision.Outcome = change.NonCompliant
		r.Decision.Controls[3] = change.ControlResult{Control: change.ControlManagerApproval, Result: change.Fail}
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionBypass, OpenedAt: at(0),
			Reason: "merged while changegate's decision was non_compliant (manager_approval fail)"}
	}
	return r
}

func (f *fixture) writeTokens(t *testing.T, content string) {
	t.Helper()
	// Write and rename, as an operator's tooling would, so that a reader
	// never sees half a file.
	tmp := f.tokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.tokenFile); err != nil {
		t.Fatal(err)
	}
}

// request is one HTTP exchange with the fixture's server.
type request struct {
	method, path, token string
	body                string
	header              http.Header
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (f *fixture) do(t *testing.T, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, f.srv.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// get is an authenticated GET as alice.
func (f *fixture) get(t *testing.T, path string) response {
	t.Helper()
	return f.do(t, request{path: path, token: f.tokens["alice@audit-firm.example"]})
}

func decodeJSON[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}
