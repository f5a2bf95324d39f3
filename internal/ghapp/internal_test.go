package ghapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"
)

func TestRouteOf(t *testing.T) {
	t.Parallel()
	sha := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct{ path, want string }{
		{"/app/installations", "/app/installations"},
		{"/app/installations/123/access_tokens", "/app/installations/{n}/access_tokens"},
		{"/installation/repositories", "/installation/repositories"},
		{"/repos/acme/api", "/repos/{owner}/{repo}"},
		{"/repos/acme/api/pulls/7/reviews", "/repos/{owner}/{repo}/pulls/{n}/reviews"},
		{"/repos/acme/api/pulls/7/reviews/99", "/repos/{owner}/{repo}/pulls/{n}/reviews/{n}"},
		{"/repos/Acme-Corp/My.Repo/installation", "/repos/{owner}/{repo}/installation"},
		{"/repos/acme/api/commits/" + sha + "/check-runs", "/repos/{owner}/{repo}/commits/{sha}/check-runs"},
		{"/repos/acme/api/commits/main/status", "/repos/{owner}/{repo}/commits/{ref}/status"},
		{"/repos/acme/api/statuses/" + sha, "/repos/{owner}/{repo}/statuses/{sha}"},
		{"/repos/acme/api/contents/clusters/prod/app.yaml", "/repos/{owner}/{repo}/contents/{path}"},
		{"/repos/acme/.github/contents/changegate.yml", "/repos/{owner}/{repo}/contents/{path}"},
		{"/repos/acme/api/compare/main...feature/x", "/repos/{owner}/{repo}/compare/{basehead}"},
		{"/repos/acme/api/git/ref/heads/feature/x", "/repos/{owner}/{repo}/git/ref/{ref}"},
		{"/repos/acme/api/git/refs", "/repos/{owner}/{repo}/git/refs"},
		{"/repos/acme/api/branches/release%2F1.2/protection", "/repos/{owner}/{repo}/branches/{branch}/protection"},
		{"/repos/acme/api/environments/prod%20eu", "/repos/{owner}/{repo}/environments/{environment}"},
		{"/repos/acme/api/actions/runs/42/deployment_protection_rule", "/repos/{owner}/{repo}/actions/runs/{n}/deployment_protection_rule"},
		{"/orgs/acme/teams/release-managers/memberships/octocat", "/orgs/{org}/teams/{team}/memberships/{user}"},
		{"/orgs/acme/members/octocat", "/orgs/{org}/members/{user}"},
		{"/users/octocat/installation", "/users/{user}/installation"},
		{"/repos/acme/api/tags/v1.2.3", "/repos/{owner}/{repo}/tags/{id}"},
		{"/", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			if got := routeOf(tt.path); got != tt.want {
				t.Errorf("routeOf(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	resp := func(code int, kv ...string) *http.Response {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	retryAfter := 30 * time.Second
	tests := []struct {
		name      string
		err       error
		wantDelay time.Duration
		wantRetry bool
	}{
		{"nil", nil, 0, false},
		{"primary limit", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: now.Add(10 * time.Minute)}}}, 10 * time.Minute, true},
		{"primary limit already reset", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: now.Add(-time.Minute)}}}, 0, true},
		{"wrapped primary limit", fmt.Errorf("list reviews: %w", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: now.Add(time.Second)}}}), time.Second, true},
		{"secondary limit", &github.AbuseRateLimitError{RetryAfter: &retryAfter}, retryAfter, true},
		{"secondary limit, no Retry-After", &github.AbuseRateLimitError{}, DefaultSecondaryDelay, true},
		{"500", &github.ErrorResponse{Response: resp(500)}, 0, true},
		{"503", &github.ErrorResponse{Response: resp(503)}, 0, true},
		{"429", &github.ErrorResponse{Response: resp(429)}, 0, true},
		{"429 with Retry-After", &github.ErrorResponse{Response: resp(429, "Retry-After", "12")}, 12 * time.Second, true},
		{"403 with Retry-After", &github.ErrorResponse{Response: resp(403, "Retry-After", "5")}, 5 * time.Second, true},
		{"403", &github.ErrorResponse{Response: resp(403)}, 0, false},
		{"404", &github.ErrorResponse{Response: resp(404)}, 0, false},
		{"422", &github.ErrorResponse{Response: resp(422)}, 0, false},
		{"accepted", &github.AcceptedError{}, 0, true},
		{"token refresh 502", &url.Error{Op: "Get", URL: "u", Err: &ghinstallation.HTTPError{Response: resp(502)}}, 0, true},
		{"token refresh 404", &url.Error{Op: "Get", URL: "u", Err: &ghinstallation.HTTPError{Response: resp(404)}}, 0, false},
		{"token refresh network", &url.Error{Op: "Get", URL: "u", Err: &ghinstallation.HTTPError{RootCause: io.ErrUnexpectedEOF}}, 0, true},
		{"connection refused", &url.Error{Op: "Get", URL: "u", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, 0, true},
		{"request deadline", &url.Error{Op: "Get", URL: "u", Err: context.DeadlineExceeded}, 0, true},
		{"parent deadline", fmt.Errorf("get pr: %w", context.DeadlineExceeded), 0, true},
		{"parent canceled", context.Canceled, 0, false},
		{"canceled in flight", &url.Error{Op: "Get", URL: "u", Err: context.Canceled}, 0, false},
		{"decode error", errors.New("invalid character"), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			delay, retry := RetryDelay(tt.err, now)
			if delay != tt.wantDelay || retry != tt.wantRetry {
				t.Errorf("RetryDelay = %v, %v; want %v, %v", delay, retry, tt.wantDelay, tt.wantRetry)
			}
		})
	}
}

func TestIsNotFound(t *testing.T) {
	t.Parallel()
	nf := &github.ErrorResponse{Response: &http.Response{StatusCode: 404}}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nf, true},
		{fmt.Errorf("get repo: %w", nf), true},
		{&github.ErrorResponse{Response: &http.Response{StatusCode: 410}}, false},
		{&github.ErrorResponse{}, false},
		{errors.New("not found"), false},
		{nil, false},
	} {
		if got := IsNotFound(tt.err); got != tt.want {
			t.Errorf("IsNotFound(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// origin answers GETs with an ETag'd body and honours If-None-Match.
type origin struct {
	mu    sync.Mutex
	calls []string // "path status"
	big   bool
}

func (o *origin) RoundTrip(req *http.Request) (*http.Response, error) {
	body := "body of " + req.URL.Path
	if o.big {
		body = strings.Repeat("x", 2048)
	}
	etag := `"` + req.URL.Path + `"`
	status := http.StatusOK
	if req.Header.Get("If-None-Match") == etag {
		status, body = http.StatusNotModified, ""
	}
	o.mu.Lock()
	o.calls = append(o.calls, fmt.Sprintf("%s %d", req.URL.Path, status))
	o.mu.Unlock()
	h := http.Header{"Etag": {etag}, "X-Ratelimit-Remaining": {fmt.Sprint(len(o.calls))}}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func get(t *testing.T, rt http.RoundTripper, path, accept string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", "https://api.github.com"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("If-None-Match") != "" {
		t.Error("the caller's request was modified")
	}
	return resp.StatusCode, string(b), resp.Header.Get("X-Ratelimit-Remaining")
}

func TestETagCache(t *testing.T) {
	t.Parallel()
	o := &origin{}
	c := newETagCache(2, 1<<20, 1024)
	a, b := c.transport("installation/1", o), c.transport("installation/2", o)

	status, body, remaining := get(t, a, "/x", "json")
	status2, body2, remaining2 := get(t, a, "/x", "json")
	if status != 200 || status2 != 200 || body2 != body || remaining2 != "2" || remaining != "1" {
		t.Errorf("revalidated: %d %q %s, want 200, the cached body and the 304's rate limit", status2, body2, remaining2)
	}
	get(t, b, "/x", "json") // other scope: not revalidated
	get(t, a, "/x", "raw")  // other Accept: not revalidated; evicts the oldest
	get(t, a, "/x", "json") // was evicted: fetched again, evicting scope 2's
	get(t, a, "/x", "raw")  // still cached
	want := []string{"/x 200", "/x 304", "/x 200", "/x 200", "/x 200", "/x 304"}
	if diff := cmp.Diff(want, o.calls); diff != "" {
		t.Errorf("origin calls (-want +got):\n%s", diff)
	}
	if c.len() != 2 {
		t.Errorf("cache holds %d entries, want 2", c.len())
	}

	big := &origin{big: true}
	bt := newETagCache(10, 1<<20, 1024).transport("app", big)
	for range 2 {
		if _, body, _ := get(t, bt, "/big", "json"); len(body) != 2048 {
			t.Errorf("big body truncated to %d", len(body))
		}
	}
	if diff := cmp.Diff([]string{"/big 200", "/big 200"}, big.calls); diff != "" {
		t.Errorf("bodies over the entry limit are not cached (-want +got):\n%s", diff)
	}
}
