package ghfake_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/testenv"
)

func newClient(t *testing.T, s *ghfake.Server, rt http.RoundTripper) *github.Client {
	t.Helper()
	c := github.NewClient(&http.Client{Transport: rt})
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func appTransport(t *testing.T, s *ghfake.Server) *ghinstallation.AppsTransport {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	return atr
}

func installationTransport(t *testing.T, s *ghfake.Server, id int64) *ghinstallation.Transport {
	t.Helper()
	return ghinstallation.NewFromAppsTransport(appTransport(t, s), id)
}

// do sends a raw request and returns status, headers and body.
func do(t *testing.T, method, u, auth string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// clock is a settable clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func tokenAuth(tok string) string { return "token " + tok }

// message is the "message" of a GitHub error body.
func message(t *testing.T, body string) string {
	t.Helper()
	var m struct{ Message string }
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return m.Message
}

func TestAppJWT(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t, ghfake.WithAppID(42))
	s.AddInstallation(ghfake.Installation{Account: "acme"})
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	appKey := parseKey(t, s.PrivateKeyPEM())
	now := time.Now().Unix()

	tests := []struct {
		name string
		auth string
		want int
	}{
		{"iss as string", "Bearer " + signJWT(t, appKey, map[string]any{"iss": "42", "iat": now - 30, "exp": now + 90}), 200},
		{"iss as number", "Bearer " + signJWT(t, appKey, map[string]any{"iss": 42, "iat": now - 30, "exp": now + 90}), 200},
		{"no credentials", "", 401},
		{"installation token scheme", "token " + signJWT(t, appKey, map[string]any{"iss": "42", "iat": now - 30, "exp": now + 90}), 401},
		{"other key", "Bearer " + signJWT(t, key, map[string]any{"iss": "42", "iat": now - 30, "exp": now + 90}), 401},
		{"other app", "Bearer " + signJWT(t, appKey, map[string]any{"iss": "43", "iat": now - 30, "exp": now + 90}), 401},
		{"expired", "Bearer " + signJWT(t, appKey, map[string]any{"iss": "42", "iat": now - 700, "exp": now - 100}), 401},
		{"issued in the future", "Bearer " + signJWT(t, appKey, map[string]any{"iss": "42", "iat": now + 300, "exp": now + 500}), 401},
		{"lives over ten minutes", "Bearer " + signJWT(t, appKey, map[string]any{"iss": "42", "iat": now - 30, "exp": now + 3600}), 401},
		{"no iat", "Bearer " + signJWT(t, appKey, map[string]any{"iss": "42", "exp": now + 90}), 401},
		{"garbage", "Bearer not.a.jwt", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, body := do(t, "GET", s.URL()+"app/installations", tt.auth)
			if status != tt.want {
				t.Fatalf("status = %d, want %d; body %s", status, tt.want, body)
			}
			if status == 401 && message(t, body) == "" {
				t.Errorf("401 without message: %s", body)
			}
		})
	}

	t.Run("ghinstallation", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, s, appTransport(t, s))
		ins, _, err := c.Apps.ListInstallations(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) != 1 || ins[0].GetAccount().GetLogin() != "acme" || ins[0].GetAppID() != 42 {
			t.Errorf("installations = %+v", ins)
		}
	})
}

func parseKey(t *testing.T, pemBytes []byte) *rsa.PrivateKey {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, 1, pemBytes)
	if err != nil || atr == nil {
		t.Fatalf("PrivateKeyPEM does not parse: %v", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "RSA PRIVATE KEY" {
		t.Fatalf("PrivateKeyPEM is not a PKCS#1 PEM block")
	}
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTokenFlow(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now())
	s := ghfake.New(t, ghfake.WithClock(clk.Now))
	acme := s.AddInstallation(ghfake.Installation{Account: "acme"})
	other := s.AddInstallation(ghfake.Installation{Account: "other", AccountType: "User"})
	gone := s.AddInstallation(ghfake.Installation{Account: "gone"})
	s.AddRepo(acme.ID, ghfake.Repo{Name: "api", Private: true})
	s.AddRepo(other.ID, ghfake.Repo{Name: "dotfiles"})
	s.SuspendInstallation(gone.ID)

	itr := installationTransport(t, s, acme.ID)
	c := newClient(t, s, itr)
	for range 3 {
		repo, _, err := c.Repositories.Get(t.Context(), "acme", "api")
		if err != nil {
			t.Fatal(err)
		}
		if repo.GetFullName() != "acme/api" || !repo.GetPrivate() || repo.GetDefaultBranch() != "main" || repo.GetOwner().GetType() != "Organization" {
			t.Errorf("repo = %+v", repo)
		}
	}
	if n := s.CountCalls("POST", "/app/installations/{installation_id}/access_tokens"); n != 1 {
		t.Errorf("access token requests = %d, want 1", n)
	}
	if got := s.Calls()[1].InstallationID; got != acme.ID {
		t.Errorf("call installation = %d, want %d", got, acme.ID)
	}
	if _, _, err := c.Repositories.Get(t.Context(), "other", "dotfiles"); !isStatus(err, 404) {
		t.Errorf("other installation's repo: err = %v, want 404", err)
	}
	if _, _, err := newClient(t, s, installationTransport(t, s, gone.ID)).Apps.ListRepos(t.Context(), nil); !isTokenStatus(err, 403) {
		t.Errorf("suspended installation: err = %v, want 403 on token", err)
	}
	if _, _, err := newClient(t, s, installationTransport(t, s, 99)).Apps.ListRepos(t.Context(), nil); !isTokenStatus(err, 404) {
		t.Errorf("unknown installation: err = %v, want 404 on token", err)
	}

	tok, err := itr.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, auth string
		want       int
	}{
		{"token scheme", "token " + tok, 200},
		{"bearer scheme", "Bearer " + tok, 200},
		{"unknown token", "token ghs_nope", 401},
		{"none", "", 401},
	} {
		if status, _, body := do(t, "GET", s.URL()+"repos/acme/api", tt.auth); status != tt.want {
			t.Errorf("%s: status %d, want %d: %s", tt.name, status, tt.want, body)
		}
	}
	if status, _, _ := do(t, "GET", s.URL()+"repos/acme/api/installation", tokenAuth(tok)); status != 401 {
		t.Errorf("installation token on an App endpoint: status %d, want 401", status)
	}

	clk.Add(61 * time.Minute)
	if status, _, _ := do(t, "GET", s.URL()+"repos/acme/api", tokenAuth(tok)); status != 401 {
		t.Errorf("expired token: status %d, want 401", status)
	}
}

func isStatus(err error, status int) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response.StatusCode == status
}

func isTokenStatus(err error, status int) bool {
	var he *ghinstallation.HTTPError
	return errors.As(err, &he) && he.Response != nil && he.Response.StatusCode == status
}

func TestAppEndpoints(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	in := s.AddInstallation(ghfake.Installation{Account: "acme", RepositorySelection: "selected"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	c := newClient(t, s, appTransport(t, s))

	got, _, err := c.Apps.GetInstallation(t.Context(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetID() != in.ID || got.GetRepositorySelection() != "selected" || got.GetAccount().GetType() != "Organization" ||
		got.GetPermissions().GetChecks() != "write" || got.SuspendedAt != nil {
		t.Errorf("installation = %+v", got)
	}
	found, _, err := c.Apps.FindRepositoryInstallation(t.Context(), "ACME", "api")
	if err != nil || found.GetID() != in.ID {
		t.Errorf("FindRepositoryInstallation = %v, %v", found, err)
	}
	if _, _, err := c.Apps.FindRepositoryInstallation(t.Context(), "acme", "nope"); !isStatus(err, 404) {
		t.Errorf("unknown repo installation: %v", err)
	}
	if _, _, err := c.Apps.GetInstallation(t.Context(), 12345); !isStatus(err, 404) {
		t.Errorf("unknown installation: %v", err)
	}
	tok, _, err := c.Apps.CreateInstallationToken(t.Context(), in.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.GetToken(), "ghs_") || time.Until(tok.GetExpiresAt().Time) < 59*time.Minute {
		t.Errorf("token = %+v", tok)
	}

	s.SuspendInstallation(in.ID)
	got, _, err = c.Apps.GetInstallation(t.Context(), in.ID)
	if err != nil || got.SuspendedAt == nil {
		t.Errorf("suspended installation = %+v, %v", got, err)
	}
	if status, _, _ := do(t, "GET", s.URL()+"repos/acme/api", tokenAuth(tok.GetToken())); status != 403 {
		t.Errorf("token of a suspended installation: status %d, want 403", status)
	}

	s.RemoveRepo(in.ID, "acme/api")
	if _, _, err := c.Apps.FindRepositoryInstallation(t.Context(), "acme", "api"); !isStatus(err, 404) {
		t.Errorf("removed repo: %v", err)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	var first ghfake.Installation
	for i := range 5 {
		in := s.AddInstallation(ghfake.Installation{Account: fmt.Sprintf("org%d", i)})
		if i == 0 {
			first = in
		}
	}
	for i := range 7 {
		s.AddRepo(first.ID, ghfake.Repo{Name: fmt.Sprintf("r%d", i)})
	}
	app := newClient(t, s, appTransport(t, s))

	var logins []string
	opt := &github.ListOptions{PerPage: 2}
	pages := 0
	for {
		ins, resp, err := app.Apps.ListInstallations(t.Context(), opt)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if resp.LastPage != 0 && resp.LastPage != 3 {
			t.Errorf("page %d: LastPage = %d, want 3", opt.Page, resp.LastPage)
		}
		for _, in := range ins {
			logins = append(logins, in.GetAccount().GetLogin())
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if diff := cmp.Diff([]string{"org0", "org1", "org2", "org3", "org4"}, logins); diff != "" || pages != 3 {
		t.Errorf("pages = %d, logins (-want +got):\n%s", pages, diff)
	}

	tok, err := installationTransport(t, s, first.ID).Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, hdr, body := do(t, "GET", s.URL()+"installation/repositories?per_page=3&page=2", tokenAuth(tok))
	base := strings.TrimSuffix(s.URL(), "/")
	wantLink := fmt.Sprintf(`<%[1]s/installation/repositories?page=3&per_page=3>; rel="next", <%[1]s/installation/repositories?page=3&per_page=3>; rel="last", `+
		`<%[1]s/installation/repositories?page=1&per_page=3>; rel="first", <%[1]s/installation/repositories?page=1&per_page=3>; rel="prev"`, base)
	if diff := cmp.Diff(wantLink, hdr.Get("Link")); diff != "" {
		t.Errorf("Link (-want +got):\n%s", diff)
	}
	var list github.ListRepositories
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.Repositories {
		names = append(names, r.GetName())
	}
	if diff := cmp.Diff([]string{"r3", "r4", "r5"}, names); diff != "" || list.GetTotalCount() != 7 {
		t.Errorf("total %d, names (-want +got):\n%s", list.GetTotalCount(), diff)
	}
}

func TestETagAndRateLimit(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	a := s.AddInstallation(ghfake.Installation{Account: "acme"})
	b := s.AddInstallation(ghfake.Installation{Account: "beta"})
	s.AddRepo(a.ID, ghfake.Repo{Name: "api"})
	s.AddRepo(b.ID, ghfake.Repo{Name: "web"})
	tokA, err := installationTransport(t, s, a.ID).Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := installationTransport(t, s, b.ID).Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	status, h1, body := do(t, "GET", s.URL()+"repos/acme/api", tokenAuth(tokA))
	etag := h1.Get("ETag")
	if status != 200 || !strings.HasPrefix(etag, `"`) || body == "" {
		t.Fatalf("first GET: %d etag %q", status, etag)
	}
	want := map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Used": "1", "X-RateLimit-Resource": "core"}
	for k, v := range want {
		if h1.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h1.Get(k), v)
		}
	}
	if reset := h1.Get("X-RateLimit-Reset"); reset == "" {
		t.Error("no X-RateLimit-Reset")
	}

	status, h2, body := do(t, "GET", s.URL()+"repos/acme/api", tokenAuth(tokA), "If-None-Match", etag)
	if status != 304 || body != "" || h2.Get("ETag") != etag || h2.Get("X-RateLimit-Remaining") != "4999" {
		t.Errorf("conditional GET: %d body %q etag %q remaining %q", status, body, h2.Get("ETag"), h2.Get("X-RateLimit-Remaining"))
	}
	status, h3, _ := do(t, "GET", s.URL()+"repos/acme/api", tokenAuth(tokA), "If-None-Match", `W/"stale"`)
	if status != 200 || h3.Get("X-RateLimit-Remaining") != "4998" || h3.Get("ETag") != etag {
		t.Errorf("stale conditional GET: %d remaining %q", status, h3.Get("X-RateLimit-Remaining"))
	}
	if _, hb, _ := do(t, "GET", s.URL()+"repos/beta/web", tokenAuth(tokB)); hb.Get("X-RateLimit-Remaining") != "4999" {
		t.Errorf("second installation remaining = %q, want its own bucket", hb.Get("X-RateLimit-Remaining"))
	}

	var notModified int
	for _, c := range s.Calls() {
		if c.NotModified {
			notModified++
		}
	}
	if notModified != 1 || s.CountCalls("GET", "/repos/{owner}/{repo}") != 4 || s.Writes() != 0 {
		t.Errorf("304s = %d, GET repo calls = %d, writes = %d", notModified, s.CountCalls("GET", "/repos/{owner}/{repo}"), s.Writes())
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Error("ResetCalls kept calls")
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	// Each case has its own client: go-github remembers rate limits and
	// refuses calls locally until they reset.
	client := func() *github.Client { return newClient(t, s, installationTransport(t, s, in.ID)) }
	get := ghfake.MatchRoute("GET /repos/{owner}/{repo}")
	reset := time.Now().Add(30 * time.Minute).Truncate(time.Second)

	s.FailNext(get, 2, http.StatusBadGateway, nil, `{"message":"Server Error"}`)
	c := client()
	for range 2 {
		if _, _, err := c.Repositories.Get(t.Context(), "acme", "api"); !isStatus(err, 502) {
			t.Errorf("err = %v, want 502", err)
		}
	}
	if _, _, err := c.Repositories.Get(t.Context(), "acme", "api"); err != nil {
		t.Errorf("third call: %v", err)
	}

	s.FailNext(get, 1, http.StatusForbidden, http.Header{"Retry-After": {"1"}}, ghfake.SecondaryRateLimitBody)
	var abuse *github.AbuseRateLimitError
	if _, _, err := client().Repositories.Get(t.Context(), "acme", "api"); !errors.As(err, &abuse) || abuse.GetRetryAfter() != time.Second {
		t.Errorf("secondary limit: err = %#v", err)
	}

	s.FailNext(get, 1, http.StatusForbidden, http.Header{
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Limit":     {"5000"},
		"X-Ratelimit-Reset":     {fmt.Sprint(reset.Unix())},
	}, ghfake.PrimaryRateLimitBody)
	var rle *github.RateLimitError
	if _, _, err := client().Repositories.Get(t.Context(), "acme", "api"); !errors.As(err, &rle) || !rle.Rate.Reset.Time.Equal(reset) {
		t.Errorf("primary limit: err = %#v", err)
	}

	// Faults match only their route, and apply to token creation too.
	s.FailNext(ghfake.MatchRoute("POST /app/installations/{installation_id}/access_tokens"), 1, 500, nil, "")
	if _, _, err := client().Apps.ListRepos(t.Context(), nil); !isTokenStatus(err, 500) {
		t.Errorf("token fault: err = %v", err)
	}
	if _, _, err := client().Apps.ListRepos(t.Context(), nil); err != nil {
		t.Errorf("after token fault: %v", err)
	}
}

func TestHandleExtension(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	// An operation the fake does not implement itself.
	const route = "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"
	s.Handle("GET", route, func(w http.ResponseWriter, r *http.Request) {
		id, _ := ghfake.CallerInstallation(r)
		ghfake.WriteJSON(w, http.StatusOK, map[string]any{"users": []any{map[string]any{"login": fmt.Sprintf("by-%d", id)}}, "teams": []any{}})
	})
	c := newClient(t, s, installationTransport(t, s, in.ID))
	rv, resp, err := c.PullRequests.ListReviewers(t.Context(), "acme", "api", 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rv.Users) != 1 || rv.Users[0].GetLogin() != fmt.Sprintf("by-%d", in.ID) || resp.Header.Get("ETag") == "" || resp.Rate.Remaining != 4999 {
		t.Errorf("reviewers = %+v, etag %q, rate %+v", rv, resp.Header.Get("ETag"), resp.Rate)
	}
	// The repo check comes for free with {owner}/{repo}.
	if _, _, err := c.PullRequests.ListReviewers(t.Context(), "acme", "hidden", 7, nil); !isStatus(err, 404) {
		t.Errorf("hidden repo: %v", err)
	}
	if n := s.CountCalls("GET", route); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// recorder collects Errorf calls from WithErrorf.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func TestOpenAPIValidation(t *testing.T) {
	t.Parallel()
	testenv.RequireSharedTestdata(t)
	rec := &recorder{}
	s := ghfake.New(t, ghfake.WithErrorf(rec.Errorf))
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	tok, err := installationTransport(t, s, in.ID).Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// GitHub has no such operation: 404 and a test error naming it.
	if status, _, _ := do(t, "DELETE", s.URL()+"repos/acme/api/pulls/1", tokenAuth(tok)); status != 404 {
		t.Errorf("unknown operation: status %d, want 404", status)
	}
	// A real operation the fake does not implement yet is reported too.
	if status, _, _ := do(t, "GET", s.URL()+"repos/acme/api/pulls/1/requested_reviewers", tokenAuth(tok)); status != 404 {
		t.Errorf("unimplemented operation: status %d, want 404", status)
	}
	want := []string{
		"ghfake: DELETE /repos/acme/api/pulls/1 is not a GitHub REST operation",
		"ghfake: GET /repos/acme/api/pulls/1/requested_reviewers is not implemented by the fake; add it with Handle",
	}
	if diff := cmp.Diff(want, rec.Messages()); diff != "" {
		t.Errorf("reported (-want +got):\n%s", diff)
	}

	// Real operations with slashes or dots in their parameters are known.
	for _, path := range []string{
		"repos/acme/api/contents/deploy/prod/values.yaml",
		"repos/acme/api/compare/main...feature/x",
		"repos/acme/api/git/matching-refs/heads/feature/x",
	} {
		s.FailNext(nil, 1, http.StatusTeapot, nil, "")
		if status, _, _ := do(t, "GET", s.URL()+path, tokenAuth(tok)); status != http.StatusTeapot {
			t.Errorf("GET /%s: status %d, want the injected 418", path, status)
		}
	}
	calls := s.Calls()
	var routes []string
	for _, c := range calls[len(calls)-3:] {
		routes = append(routes, c.Route)
	}
	wantRoutes := []string{
		"/repos/{owner}/{repo}/contents/{path}",
		"/repos/{owner}/{repo}/compare/{basehead}",
		"/repos/{owner}/{repo}/git/matching-refs/{ref}",
	}
	if diff := cmp.Diff(wantRoutes, routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if len(rec.Messages()) != 2 {
		t.Errorf("extra reports: %q", rec.Messages())
	}
}

func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	c := newClient(t, s, installationTransport(t, s, in.ID))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if i%5 == 0 {
				s.AddRepo(in.ID, ghfake.Repo{Name: fmt.Sprintf("r%d", i)})
			}
			if _, _, err := c.Repositories.Get(t.Context(), "acme", "api"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := s.CountCalls("GET", "/repos/{owner}/{repo}"); n != 20 {
		t.Errorf("calls = %d, want 20", n)
	}
}

// TestManifestConversion: a code converts once, without credentials, to
// the App's id, key and secrets, as the REST description says.
func TestManifestConversion(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	s.AddManifestCode("c0de")
	post := func() *http.Response {
		resp, err := http.Post(s.URL()+"app-manifests/c0de/conversions", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post()
	var got struct {
		ID            int64  `json:"id"`
		PEM           string `json:"pem"`
		WebhookSecret string `json:"webhook_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("convert: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if got.ID != s.AppID() || !strings.Contains(got.PEM, "PRIVATE KEY") || got.WebhookSecret != ghfake.ManifestWebhookSecret {
		t.Errorf("conversion: %+v", got)
	}
	if resp := post(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a used code: %d, want 404", resp.StatusCode)
	}
}
