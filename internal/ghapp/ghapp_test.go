package ghapp_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/ghfake"
)

const tokenRoute = "/app/installations/{installation_id}/access_tokens"

// fixture is a fake GitHub with two installations and an Apps against it.
type fixture struct {
	gh        *ghfake.Server
	apps      *ghapp.Apps
	reg       *prometheus.Registry
	acme, bet ghfake.Installation
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gh := ghfake.New(t)
	f := &fixture{gh: gh, reg: prometheus.NewRegistry()}
	f.acme = gh.AddInstallation(ghfake.Installation{Account: "acme"})
	f.bet = gh.AddInstallation(ghfake.Installation{Account: "bet", AccountType: "User"})
	for _, name := range []string{"api", "web", "infra"} {
		gh.AddRepo(f.acme.ID, ghfake.Repo{Name: name})
	}
	gh.AddRepo(f.bet.ID, ghfake.Repo{Name: "dotfiles", Private: true})
	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()},
		ghapp.Options{Registerer: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	f.apps = apps
	return f
}

func (f *fixture) installation(t *testing.T, id int64) *github.Client {
	t.Helper()
	c, err := f.apps.Installation(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	key := ghfake.New(t).PrivateKeyPEM()
	tests := []struct {
		name string
		cfg  ghapp.Config
		want []string // substrings of the error
	}{
		{"no app id", ghapp.Config{PrivateKey: key}, []string{"app id 0"}},
		{"no key", ghapp.Config{AppID: 1}, []string{"private key: required"}},
		{"not PEM", ghapp.Config{AppID: 1, PrivateKey: []byte("ssh-rsa AAAA")}, []string{"private key: no PEM block"}},
		{"relative url", ghapp.Config{AppID: 1, PrivateKey: key, BaseURL: "ghe.example/api/v3"}, []string{"base url", "absolute"}},
		{"several problems", ghapp.Config{BaseURL: "ftp://x/"}, []string{"app id", "private key", "base url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ghapp.New(tt.cfg, ghapp.Options{})
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := ghapp.New(ghapp.Config{AppID: 1, PrivateKey: key}, ghapp.Options{}); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if _, err := (&ghapp.Apps{}).Installation(0); err == nil {
		t.Error("Installation(0) succeeded")
	}
}

func TestBaseURLs(t *testing.T) {
	t.Parallel()
	key := ghfake.New(t).PrivateKeyPEM()
	tests := []struct{ base, wantBase, wantUpload string }{
		{"", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://ghe.example/api/v3", "https://ghe.example/api/v3/", "https://ghe.example/api/uploads/"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/"},
	}
	for _, tt := range tests {
		apps, err := ghapp.New(ghapp.Config{AppID: 1, PrivateKey: key, BaseURL: tt.base}, ghapp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*github.Client{apps.AppClient(), must(apps.Installation(5))} {
			if c.BaseURL.String() != tt.wantBase || c.UploadURL.String() != tt.wantUpload {
				t.Errorf("base %q: got %s and %s, want %s and %s", tt.base, c.BaseURL, c.UploadURL, tt.wantBase, tt.wantUpload)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAppClientListsInstallations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ins, _, err := f.apps.AppClient().Apps.ListInstallations(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		got = append(got, fmt.Sprintf("%d %s %s", in.GetID(), in.GetAccount().GetLogin(), in.GetTargetType()))
	}
	want := []string{fmt.Sprintf("%d acme Organization", f.acme.ID), fmt.Sprintf("%d bet User", f.bet.ID)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("installations (-want +got):\n%s", diff)
	}
}

func TestInstallationListsReposWithOneToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.installation(t, f.acme.ID)
	if again := f.installation(t, f.acme.ID); again != c {
		t.Error("Installation returned a new client for the same ID")
	}
	for range 3 {
		var names []string
		opt := &github.ListOptions{PerPage: 2}
		for {
			list, resp, err := c.Apps.ListRepos(t.Context(), opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range list.Repositories {
				names = append(names, r.GetFullName())
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
		if diff := cmp.Diff([]string{"acme/api", "acme/web", "acme/infra"}, names); diff != "" {
			t.Errorf("repos (-want +got):\n%s", diff)
		}
	}
	if n := f.gh.CountCalls("POST", tokenRoute); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

func TestInstallationClientsConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ids := []int64{f.acme.ID, f.bet.ID}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			c, err := f.apps.Installation(ids[i%len(ids)])
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, err := c.Apps.ListRepos(t.Context(), nil); err != nil {
				t.Error(err)
			}
			if _, _, err := f.apps.AppClient().Apps.GetInstallation(t.Context(), ids[i%len(ids)]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.gh.CountCalls("POST", tokenRoute); n != len(ids) {
		t.Errorf("token requests = %d, want one per installation (%d)", n, len(ids))
	}
}

func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.installation(t, f.acme.ID)
	first, _, err := c.Repositories.Get(t.Context(), "acme", "api")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		again, resp, err := c.Repositories.Get(t.Context(), "acme", "api")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("revalidated repo differs (-first +again):\n%s", diff)
		}
		if resp.StatusCode != http.StatusOK || resp.Rate.Remaining != 4999 {
			t.Errorf("status %d, rate %+v; want 200 and the 304's uncharged 4999", resp.StatusCode, resp.Rate)
		}
	}
	var notModified []bool
	for _, call := range f.gh.Calls() {
		if call.Route == "/repos/{owner}/{repo}" {
			notModified = append(notModified, call.NotModified)
		}
	}
	if diff := cmp.Diff([]bool{false, true, true}, notModified); diff != "" {
		t.Errorf("GitHub answered 304 (-want +got):\n%s", diff)
	}

	// Another installation's token gets its own cache, not acme's copy.
	if _, _, err := f.installation(t, f.bet.ID).Repositories.Get(t.Context(), "acme", "api"); !ghapp.IsNotFound(err) {
		t.Errorf("other installation: err = %v, want 404", err)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, _, err := f.apps.AppClient().Apps.ListInstallations(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	c := f.installation(t, f.acme.ID)
	for range 2 {
		if _, _, err := c.Repositories.Get(t.Context(), "acme", "api"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Repositories.Get(t.Context(), "acme", "gone"); !ghapp.IsNotFound(err) {
		t.Fatalf("err = %v, want 404", err)
	}

	want := `
# HELP changegate_github_requests_total GitHub REST requests by method, route template and status ("error" when no response).
# TYPE changegate_github_requests_total counter
changegate_github_requests_total{method="GET",route="/app/installations",status="200"} 1
changegate_github_requests_total{method="GET",route="/repos/{owner}/{repo}",status="200"} 1
changegate_github_requests_total{method="GET",route="/repos/{owner}/{repo}",status="304"} 1
changegate_github_requests_total{method="GET",route="/repos/{owner}/{repo}",status="404"} 1
changegate_github_requests_total{method="POST",route="/app/installations/{n}/access_tokens",status="201"} 1
# HELP changegate_github_not_modified_total GitHub responses 304 Not Modified (served from the ETag cache, free of rate limit), by route template.
# TYPE changegate_github_not_modified_total counter
changegate_github_not_modified_total{route="/repos/{owner}/{repo}"} 1
# HELP changegate_github_rate_limit_remaining X-RateLimit-Remaining of the latest GitHub response, by rate-limit resource.
# TYPE changegate_github_rate_limit_remaining gauge
changegate_github_rate_limit_remaining{resource="core"} 4998
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want),
		"changegate_github_requests_total", "changegate_github_not_modified_total", "changegate_github_rate_limit_remaining"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(f.reg, "changegate_github_request_duration_seconds"); err != nil || n != 3 {
		t.Errorf("duration series = %d, %v; want one per route (3)", n, err)
	}

	// A second Apps on the same registry is a wiring mistake.
	if _, err := ghapp.New(ghapp.Config{AppID: 1, PrivateKey: f.gh.PrivateKeyPEM()}, ghapp.Options{Registerer: f.reg}); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}

// rewrite sends requests for a GHES host to the fake, as a proxy would.
type rewrite struct{ target *url.URL }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	path, ok := strings.CutPrefix(req.URL.Path, "/api/v3/")
	if !ok || req.URL.Host != "ghe.example" {
		return nil, fmt.Errorf("request outside the GHES API: %s", req.URL)
	}
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = r.target.Scheme, r.target.Host
	req.URL.Path = "/" + path
	req.URL.RawPath = ""
	req.Host = r.target.Host
	return http.DefaultTransport.RoundTrip(req)
}

func TestEnterpriseServer(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(t)
	in := gh.AddInstallation(ghfake.Installation{Account: "acme"})
	gh.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	reg := prometheus.NewRegistry()
	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: "https://ghe.example/api/v3/"},
		ghapp.Options{Transport: rewrite{must(url.Parse(gh.URL()))}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := must(apps.Installation(in.ID)).Repositories.Get(t.Context(), "acme", "api"); err != nil {
		t.Fatal(err)
	}
	// The token request went under the GHES prefix too, and routes drop it.
	want := `
# HELP changegate_github_requests_total GitHub REST requests by method, route template and status ("error" when no response).
# TYPE changegate_github_requests_total counter
changegate_github_requests_total{method="GET",route="/repos/{owner}/{repo}",status="200"} 1
changegate_github_requests_total{method="POST",route="/app/installations/{n}/access_tokens",status="201"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "changegate_github_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestRetryDelayFromFakeFaults(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reset := time.Now().Add(20 * time.Minute).Truncate(time.Second)
	get := ghfake.MatchRoute("GET /repos/{owner}/{repo}")
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		wantDelay time.Duration // -1: any positive delay up to the reset
		wantRetry bool
		wantType  any
	}{
		{"bad gateway", 502, nil, `{"message":"Server Error"}`, 0, true, &github.ErrorResponse{}},
		{"secondary limit", 403, http.Header{"Retry-After": {"7"}}, ghfake.SecondaryRateLimitBody, 7 * time.Second, true, &github.AbuseRateLimitError{}},
		{"secondary limit without Retry-After", 403, nil, ghfake.SecondaryRateLimitBody, ghapp.DefaultSecondaryDelay, true, &github.AbuseRateLimitError{}},
		{"primary limit", 403, http.Header{
			"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Reset": {fmt.Sprint(reset.Unix())},
		}, ghfake.PrimaryRateLimitBody, -1, true, &github.RateLimitError{}},
		{"too many requests", 429, nil, `{"message":"slow down"}`, 0, true, &github.ErrorResponse{}},
		{"forbidden", 403, nil, `{"message":"Resource not accessible by integration"}`, 0, false, &github.ErrorResponse{}},
		{"unprocessable", 422, nil, `{"message":"Validation Failed"}`, 0, false, &github.ErrorResponse{}},
	}
	for _, tt := range tests {
		// Sequential: faults are matched in order on one server, and each
		// case gets its own installation so go-github's remembered rate
		// limits do not leak between cases.
		in := f.gh.AddInstallation(ghfake.Installation{Account: "acme"})
		f.gh.AddRepo(in.ID, ghfake.Repo{Name: "api"})
		c := f.installation(t, in.ID)
		n := 1
		if tt.status >= 500 {
			n = 3 // reads are retried twice in passing
		}
		f.gh.FailNext(get, n, tt.status, tt.header, tt.body)
		_, _, err := c.Repositories.Get(t.Context(), "acme", "api")
		if err == nil {
			t.Fatalf("%s: no error", tt.name)
		}
		if fmt.Sprintf("%T", err) != fmt.Sprintf("%T", tt.wantType) {
			t.Errorf("%s: error type %T, want %T", tt.name, err, tt.wantType)
		}
		now := time.Now()
		delay, retry := ghapp.RetryDelay(err, now)
		if retry != tt.wantRetry {
			t.Errorf("%s: retry = %v, want %v", tt.name, retry, tt.wantRetry)
		}
		if tt.wantDelay == -1 {
			if delay <= 0 || delay > reset.Sub(now) {
				t.Errorf("%s: delay = %v, want until the reset %v", tt.name, delay, reset)
			}
		} else if delay != tt.wantDelay {
			t.Errorf("%s: delay = %v, want %v", tt.name, delay, tt.wantDelay)
		}
	}

	t.Run("not found", func(t *testing.T) {
		_, _, err := f.installation(t, f.acme.ID).Repositories.Get(t.Context(), "acme", "nope")
		if _, retry := ghapp.RetryDelay(err, time.Now()); !ghapp.IsNotFound(err) || retry {
			t.Errorf("err = %v: IsNotFound %v, retry %v", err, ghapp.IsNotFound(err), retry)
		}
	})
	t.Run("token refresh fails", func(t *testing.T) {
		in := f.gh.AddInstallation(ghfake.Installation{Account: "acme"})
		f.gh.FailNext(ghfake.MatchRoute("POST "+tokenRoute), 3, 503, nil, "") // the read is tried three times
		_, _, err := f.installation(t, in.ID).Apps.ListRepos(t.Context(), nil)
		if _, retry := ghapp.RetryDelay(err, time.Now()); !retry {
			t.Errorf("token 503: err = %v not retried", err)
		}
		f.gh.SuspendInstallation(in.ID)
		_, _, err = f.installation(t, in.ID).Apps.ListRepos(t.Context(), nil)
		if _, retry := ghapp.RetryDelay(err, time.Now()); retry || err == nil {
			t.Errorf("suspended installation: err = %v retried", err)
		}
	})
	t.Run("network error", func(t *testing.T) {
		apps, err := ghapp.New(ghapp.Config{AppID: 1, PrivateKey: f.gh.PrivateKeyPEM(), BaseURL: "http://127.0.0.1:1/"}, ghapp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = apps.AppClient().Apps.ListInstallations(t.Context(), nil)
		var ue *url.Error
		if _, retry := ghapp.RetryDelay(err, time.Now()); !retry || !errors.As(err, &ue) {
			t.Errorf("err = %v (%T) not retried", err, err)
		}
	})
}

// countingTransport tracks the most requests to /installation/ in flight
// at once, holding each for a moment.
type countingTransport struct {
	next          http.RoundTripper
	mu            sync.Mutex
	inFlight, max int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.Contains(req.URL.Path, "/installation/") {
		return c.next.RoundTrip(req)
	}
	c.mu.Lock()
	c.inFlight++
	c.max = max(c.max, c.inFlight)
	c.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	resp, err := c.next.RoundTrip(req)
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
	return resp, err
}

// TestPerInstallationBound: however many callers share an installation,
// at most PerInstallation of its requests are in flight; another
// installation has its own bound.
func TestPerInstallationBound(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(t)
	acme := gh.AddInstallation(ghfake.Installation{Account: "acme"})
	gh.AddRepo(acme.ID, ghfake.Repo{Name: "api"})
	ct := &countingTransport{next: http.DefaultTransport}
	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()},
		ghapp.Options{Transport: ct, PerInstallation: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := apps.Installation(acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			if _, _, err := c.Apps.ListRepos(t.Context(), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ct.max != 3 {
		t.Errorf("at most %d requests in flight, want 3", ct.max)
	}
}

// TestTransientReadsRetried: a read that meets a 502, a reset connection,
// a truncated body or a short rate limit is tried again, at most twice;
// a write never is.
func TestTransientReadsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.installation(t, f.acme.ID)
	get := ghfake.MatchRoute("GET /repos/{owner}/{repo}")
	for name, fail := range map[string]func(){
		"502 twice": func() { f.gh.FailNext(get, 2, http.StatusBadGateway, nil, `{"message":"Server Error"}`) },
		"short 429": func() {
			f.gh.FailNext(get, 1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, `{"message":"slow down"}`)
		},
		"truncated body": func() {
			f.gh.FailNext(get, 1, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, `{"id": 1, "full_na`)
		},
	} {
		fail()
		f.gh.ResetCalls()
		if _, _, err := c.Repositories.Get(t.Context(), "acme", "api"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if n := f.gh.CountCalls("GET", "/repos/{owner}/{repo}"); n < 2 || n > 3 {
			t.Errorf("%s: %d requests, want the failed ones and one more", name, n)
		}
	}
	f.gh.FailNext(get, 3, http.StatusBadGateway, nil, `{"message":"Server Error"}`)
	f.gh.ResetCalls()
	if _, _, err := c.Repositories.Get(t.Context(), "acme", "api"); err == nil {
		t.Error("three 502s in a row: no error")
	}
	if n := f.gh.CountCalls("GET", "/repos/{owner}/{repo}"); n != 3 {
		t.Errorf("three 502s: %d requests, want 3", n)
	}
	patch := ghfake.MatchRoute("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}")
	f.gh.FailNext(patch, 1, http.StatusBadGateway, nil, `{"message":"Server Error"}`)
	f.gh.ResetCalls()
	_, _, _ = c.Checks.UpdateCheckRun(t.Context(), "acme", "api", 1, github.UpdateCheckRunOptions{Name: "changegate"})
	if n := f.gh.CountCalls("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}"); n != 1 {
		t.Errorf("a write was sent %d times, want once", n)
	}
}

// TestRateBudget: once an installation's answers say its hourly limit is
// down to the reserve, its reads wait for the reset (a BudgetError the
// queue turns into a snooze until then); writes still go; another
// installation is not affected.
func TestRateBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.installation(t, f.acme.ID)
	reset := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	f.gh.SetRateUsed(f.acme.ID, ghfake.RateLimit-ghfake.RateLimit*4/100, reset) // 4% left, below the 5% reserve
	if _, _, err := c.Repositories.Get(t.Context(), "acme", "api"); err != nil {
		t.Fatalf("the read that reveals the budget: %v", err)
	}
	f.gh.ResetCalls()
	_, _, err := c.Repositories.Get(t.Context(), "acme", "api")
	var budget *ghapp.BudgetError
	if !errors.As(err, &budget) || !budget.Reset.Equal(reset) {
		t.Fatalf("a read at the reserve: %v, want a BudgetError until %v", err, reset)
	}
	if delay, retry := ghapp.RetryDelay(err, time.Now()); !retry || delay < 29*time.Minute {
		t.Errorf("RetryDelay = %v %v, want a wait until the reset", delay, retry)
	}
	if n := len(f.gh.Calls()); n != 0 {
		t.Errorf("%d requests sent at the reserve, want none", n)
	}
	_, _, _ = c.Checks.UpdateCheckRun(t.Context(), "acme", "api", 1, github.UpdateCheckRunOptions{Name: "changegate"})
	if n := f.gh.CountCalls("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}"); n != 1 {
		t.Errorf("a write at the reserve was sent %d times, want once", n)
	}
	if _, _, err := f.installation(t, f.bet.ID).Apps.ListRepos(t.Context(), nil); err != nil {
		t.Errorf("another installation: %v", err)
	}
}
