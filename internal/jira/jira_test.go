package jira_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jira"
	"github.com/changegate/changegate/internal/jira/jirafake"
)

// client returns an adapter for the fake with its accepted credentials.
func client(t *testing.T, f *jirafake.Server, opts jira.Options) *jira.Client {
	t.Helper()
	c, err := jira.New(jira.Config{URL: f.URL(), User: f.User(), Token: f.Token()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var created = time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)

func payIssue() jirafake.Issue {
	return jirafake.Issue{
		Key: "PAY-123", Type: "Change", Status: "Approved", Summary: "Raise card limits",
		Reporter: jirafake.User{AccountID: "acc-ann", DisplayName: "Ann Reporter"}, Created: created,
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-token"
	tests := []struct {
		name string
		cfg  jira.Config
	}{
		{"no URL", jira.Config{Token: secret}},
		{"relative URL", jira.Config{URL: "jira.example.com", Token: secret}},
		{"not http", jira.Config{URL: "ftp://jira.example.com", Token: secret}},
		{"credentials in URL", jira.Config{URL: "https://me:" + secret + "@jira.example.com", Token: secret}},
		{"query", jira.Config{URL: "https://jira.example.com/?x=1", Token: secret}},
		{"no token", jira.Config{URL: "https://jira.example.com", User: "me@example.com"}},
		{"blank token", jira.Config{URL: "https://jira.example.com", Token: " \n"}},
		{"control character", jira.Config{URL: "https://jira.example.com", Token: "a\nb" + secret}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := jira.New(tc.cfg, jira.Options{})
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
	// A token read from a file keeps its newline; that is not an error.
	c, err := jira.New(jira.Config{URL: "https://jira.example.com/jira/", Token: secret + "\n"}, jira.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.BaseURL(), "https://jira.example.com/jira"; got != want {
		t.Errorf("BaseURL = %q, want %q", got, want)
	}
}

func TestConfigHidesToken(t *testing.T) {
	t.Parallel()
	cfg := jira.Config{URL: "https://acme.atlassian.net", User: "bot@acme.com", Token: "s3cr3t-token"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "jira", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg), buf.String()} {
		if strings.Contains(s, cfg.Token) {
			t.Errorf("token shown in %q", s)
		}
	}
}

func TestLookupFound(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t)
	f.AddIssue(payIssue())
	c := client(t, f, jira.Options{})

	for _, key := range []string{"PAY-123", "pay-123"} {
		got := c.Lookup(t.Context(), key, jira.LookupOptions{})
		want := change.TicketLookup{Key: key, Result: change.LookupFound, Ticket: &change.Ticket{
			Key: "PAY-123", URL: f.URL() + "/browse/PAY-123", Project: "PAY", Type: "Change", Status: "Approved",
			Summary: "Raise card limits", Reporter: "Ann Reporter", Created: created,
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup(%s) (-want +got):\n%s", key, diff)
		}
	}
	// Only the fields we map are asked for, and nothing but the issue is read.
	for _, call := range f.Calls() {
		if call.Route != "/rest/api/2/issue/{key}" || !strings.Contains(call.Query, "fields=project%2Cissuetype%2Cstatus%2Csummary%2Creporter%2Ccreated") {
			t.Errorf("unexpected call %+v", call)
		}
	}
}

func TestLookupReadsLive(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t)
	f.AddIssue(payIssue())
	c := client(t, f, jira.Options{})
	f.SetStatus("PAY-123", "In Review")
	if got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{}); got.Ticket == nil || got.Ticket.Status != "In Review" {
		t.Fatalf("after transition: %+v", got)
	}
	f.SetStatus("PAY-123", "Approved")
	if got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{}); got.Ticket == nil || got.Ticket.Status != "Approved" {
		t.Fatalf("after second transition: %+v", got)
	}
}

func TestLookupNotFound(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t)
	c := client(t, f, jira.Options{})
	got := c.Lookup(t.Context(), "PAY-9", jira.LookupOptions{Approvals: true})
	if got.Result != change.LookupNotFound || got.Ticket != nil || !strings.Contains(got.Error, "PAY-9") {
		t.Fatalf("Lookup = %+v, want not_found", got)
	}
	if n := f.CountCalls("GET", "/rest/api/2/myself"); n != 1 {
		t.Errorf("the 404 was confirmed with %d credential checks, want 1", n)
	}
	// Look-alikes that cannot be keys never reach Jira.
	f.ResetCalls()
	for _, key := range []string{"SHA-256x", "X-1", "PAY-0", "../myself", "PAY-1?x=1"} {
		if got := c.Lookup(t.Context(), key, jira.LookupOptions{}); got.Result != change.LookupNotFound {
			t.Errorf("Lookup(%q) = %+v, want not_found", key, got)
		}
	}
	if n := len(f.Calls()); n != 0 {
		t.Errorf("invalid keys made %d calls", n)
	}
}

// recordAuth is a base transport that remembers the Authorization header.
type recordAuth struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Header.Get("Authorization"))
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		server     []jirafake.Option
		user       string // "" with bearer
		token      string
		wantHeader string
		wantResult string
	}{
		{"cloud", []jirafake.Option{jirafake.WithBasic("bot@acme.com", "api-token")}, "bot@acme.com", "api-token",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("bot@acme.com:api-token")), change.LookupFound},
		{"data center", []jirafake.Option{jirafake.WithBearer("pat-token")}, "", "pat-token",
			"Bearer pat-token", change.LookupFound},
		{"basic against data center", []jirafake.Option{jirafake.WithBearer("pat-token")}, "bot@acme.com", "pat-token",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("bot@acme.com:pat-token")), change.LookupUnreachable},
		{"bearer against cloud", []jirafake.Option{jirafake.WithBasic("bot@acme.com", "api-token")}, "", "api-token",
			"Bearer api-token", change.LookupUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := jirafake.New(t, tc.server...)
			f.AddIssue(payIssue())
			rec := &recordAuth{}
			c, err := jira.New(jira.Config{URL: f.URL(), User: tc.user, Token: tc.token},
				jira.Options{HTTPClient: &http.Client{Transport: rec}})
			if err != nil {
				t.Fatal(err)
			}
			got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{})
			if got.Result != tc.wantResult {
				t.Errorf("Result = %s (%s), want %s", got.Result, got.Error, tc.wantResult)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.seen) == 0 || rec.seen[0] != tc.wantHeader {
				t.Errorf("Authorization = %q, want %q", rec.seen, tc.wantHeader)
			}
		})
	}
}

func TestLookupUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(*jirafake.Server)
		opts    jira.LookupOptions
		wantErr string
	}{
		{"503", func(f *jirafake.Server) { f.FailNext(1, 503) }, jira.LookupOptions{}, "Jira answered 503"},
		{"502", func(f *jirafake.Server) { f.FailNext(1, 502) }, jira.LookupOptions{}, "Jira answered 502"},
		{"401", func(f *jirafake.Server) { f.FailNext(1, 401) }, jira.LookupOptions{}, "Jira refused our credentials (401)"},
		{"403", func(f *jirafake.Server) { f.FailNext(1, 403) }, jira.LookupOptions{}, "(403)"},
		{"429", func(f *jirafake.Server) { f.FailNext(1, 429) }, jira.LookupOptions{}, "Jira rate limited us (429), retry after 30s"},
		{"revoked token", func(f *jirafake.Server) { f.SetToken("rotated") }, jira.LookupOptions{}, "Jira refused our credentials (401)"},
		{"404 on the credential check", func(f *jirafake.Server) {
			f.FailNextOn("/rest/api/2/issue/{key}", 1, 404)
			f.FailNextOn("/rest/api/2/myself", 1, 503)
		}, jira.LookupOptions{}, "Jira answered 503"},
		{"approvals 503", func(f *jirafake.Server) {
			f.SetApprovals("PAY-123", nil)
			f.FailNextOn("/rest/servicedeskapi/request/{key}/approval", 1, 503)
		}, jira.LookupOptions{Approvals: true}, "Jira answered 503 (approvals of PAY-123)"},
		{"group members 429", func(f *jirafake.Server) {
			f.SetApprovals("PAY-123", []jirafake.Approval{{Name: "CAB", Decision: "approved", Completed: created,
				Approvers: []jirafake.Approver{{User: jirafake.User{AccountID: "acc-m"}, Decision: "approved"}}}})
			f.AddGroupMember("managers", jirafake.User{AccountID: "acc-m"})
			f.FailNextOn("/rest/api/2/group/member", 1, 429)
		}, jira.LookupOptions{Approvals: true, ApprovalGroup: "managers"}, "(429)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := jirafake.New(t)
			f.AddIssue(payIssue())
			c := client(t, f, jira.Options{})
			tc.setup(f)
			got := c.Lookup(t.Context(), "PAY-123", tc.opts)
			if got.Result != change.LookupUnreachable || got.Ticket != nil || !strings.Contains(got.Error, tc.wantErr) {
				t.Fatalf("Lookup = %+v, want unreachable with %q", got, tc.wantErr)
			}
			if !jira.IsUnreachable(got) {
				t.Error("IsUnreachable = false")
			}
		})
	}
}

// Jira Cloud answers 404 for every issue once our token stops working: that
// must read as unreachable, never as "ticket missing".
func TestExpiredCloudTokenIsNotNotFound(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t, jirafake.WithCloudNotFound())
	f.AddIssue(payIssue())
	c := client(t, f, jira.Options{})
	if err := c.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.SetToken("rotated")
	got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{})
	if got.Result != change.LookupUnreachable || !strings.Contains(got.Error, "401") {
		t.Fatalf("Lookup = %+v, want unreachable naming the 401", got)
	}
}

func TestLookupTransportFailures(t *testing.T) {
	t.Parallel()
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		f := jirafake.New(t)
		f.AddIssue(payIssue())
		f.SetDelay(5 * time.Second)
		c := client(t, f, jira.Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
		got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{})
		if got.Result != change.LookupUnreachable || !strings.Contains(got.Error, "did not answer in time") {
			t.Fatalf("Lookup = %+v", got)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, err := jira.New(jira.Config{URL: url, Token: "t"}, jira.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{})
		if got.Result != change.LookupUnreachable || !strings.HasPrefix(got.Error, "Jira unreachable: dial tcp") {
			t.Fatalf("Lookup = %+v", got)
		}
	})
	bodies := []struct{ name, contentType, body string }{
		{"HTML login page", "text/html", "<html><body>Log in</body></html>"},
		{"truncated JSON", "application/json", `{"key":"PAY-123","fields":{"status":`},
		{"no fields", "application/json", `{"key":"PAY-123"}`},
		{"no key", "application/json", `{"fields":{"summary":"x"}}`},
		{"wrong types", "application/json", `{"key":"PAY-123","fields":{"created":"yesterday"}}`},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", b.contentType)
				fmt.Fprint(w, b.body)
			}))
			t.Cleanup(srv.Close)
			c, err := jira.New(jira.Config{URL: srv.URL, Token: "t"}, jira.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{})
			if got.Result != change.LookupUnreachable || !strings.Contains(got.Error, "malformed") {
				t.Fatalf("Lookup = %+v, want unreachable (malformed)", got)
			}
		})
	}
	t.Run("redirect to another host", func(t *testing.T) {
		t.Parallel()
		var leaked sync.Map
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			leaked.Store("auth", r.Header.Get("Authorization"))
		}))
		t.Cleanup(other.Close)
		srv := httptest.NewServer(http.RedirectHandler(strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/login", http.StatusFound))
		t.Cleanup(srv.Close)
		c, err := jira.New(jira.Config{URL: srv.URL, Token: "secret"}, jira.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{})
		if got.Result != change.LookupUnreachable || !strings.Contains(got.Error, "302") {
			t.Fatalf("Lookup = %+v", got)
		}
		if v, ok := leaked.Load("auth"); ok {
			t.Fatalf("credentials followed the redirect: %q", v)
		}
	})
}

func TestVerify(t *testing.T) {
	t.Parallel()
	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		f := jirafake.New(t)
		if err := client(t, f, jira.Options{}).Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("data center", func(t *testing.T) {
		t.Parallel()
		f := jirafake.New(t, jirafake.WithBearer("pat"), jirafake.WithSelf(jirafake.User{Name: "changegate", DisplayName: "changegate"}))
		if err := client(t, f, jira.Options{}).Verify(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		t.Parallel()
		f := jirafake.New(t)
		c, err := jira.New(jira.Config{URL: f.URL(), User: f.User(), Token: "wrong"}, jira.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Verify(t.Context())
		if !errors.Is(err, jira.ErrLockedOut) || !strings.Contains(err.Error(), "(401)") {
			t.Fatalf("Verify = %v, want locked out (401)", err)
		}
	})

	tests := []struct {
		name    string
		status  int
		body    string
		want    error
		wantMsg string
	}{
		{"404", 404, `{"errorMessages":["not found"]}`, jira.ErrLockedOut, "404"},
		{"403", 403, `{}`, jira.ErrLockedOut, "(403)"},
		{"503", 503, `down`, jira.ErrUnreachable, "Jira answered 503"},
		{"not Jira", 200, `<html>hello</html>`, jira.ErrLockedOut, "CHANGEGATE_JIRA_URL"},
		{"anonymous", 200, `{}`, jira.ErrLockedOut, "anonymous"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/rest/api/2/myself" {
					t.Errorf("Verify asked for %s", r.URL.Path)
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			c, err := jira.New(jira.Config{URL: srv.URL, User: "bot@acme.com", Token: "t"}, jira.Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Verify(t.Context())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Verify = %v, want %v mentioning %q", err, tc.want, tc.wantMsg)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, err := jira.New(jira.Config{URL: srv.URL, Token: "t"}, jira.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(t.Context()); !errors.Is(err, jira.ErrUnreachable) {
			t.Fatalf("Verify = %v, want unreachable", err)
		}
	})
}

func TestIsUnreachable(t *testing.T) {
	t.Parallel()
	found := change.TicketLookup{Key: "A-1", Result: change.LookupFound}
	missing := change.TicketLookup{Key: "A-2", Result: change.LookupNotFound}
	down := change.TicketLookup{Key: "A-3", Result: change.LookupUnreachable}
	if jira.IsUnreachable() || jira.IsUnreachable(found, missing) {
		t.Error("IsUnreachable true without an unreachable lookup")
	}
	if !jira.IsUnreachable(found, down) {
		t.Error("IsUnreachable false with an unreachable lookup")
	}
}

func TestNoTokenInLogs(t *testing.T) {
	t.Parallel()
	const user, token = "bot@acme.com", "tok-3f9a7c1e-secret"
	f := jirafake.New(t, jirafake.WithBasic(user, token))
	f.AddIssue(payIssue())
	f.SetApprovals("PAY-123", []jirafake.Approval{{Name: "CAB", Decision: "approved", Completed: created,
		Approvers: []jirafake.Approver{{User: jirafake.User{AccountID: "acc-m", DisplayName: "Max"}, Decision: "approved"}}}})
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := jira.New(jira.Config{URL: f.URL(), User: user, Token: token}, jira.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	if err := c.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, l := range []change.TicketLookup{
		c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{Approvals: true, ApprovalGroup: "no-such-group"}),
		c.Lookup(t.Context(), "PAY-404", jira.LookupOptions{}),
	} {
		texts = append(texts, l.Error)
	}
	f.FailNext(1, 401)
	texts = append(texts, c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{}).Error)
	f.SetToken("rotated")
	texts = append(texts, c.Verify(t.Context()).Error())
	texts = append(texts, buf.String())

	if !strings.Contains(buf.String(), "no-such-group") {
		t.Errorf("the missing group was not logged:\n%s", buf.String())
	}
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + token))
	for _, s := range texts {
		if strings.Contains(s, token) || strings.Contains(s, basic) {
			t.Errorf("token leaked: %s", s)
		}
	}
}
