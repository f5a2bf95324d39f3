// Package ghapp authenticates changegate as a GitHub App and builds go-github
// clients for the App and its installations, with conditional requests
// (ETag), Prometheus metrics and error classification for retries.
//
// Each client's transport chain is:
//
//	go-github → ETag cache → ghinstallation auth → metrics → base transport
//
// so that metrics see every request GitHub answers, token refreshes and
// 304s included.
package ghapp

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBaseURL is github.com's REST API.
const DefaultBaseURL = "https://api.github.com/"

// Config identifies the App.
type Config struct {
	AppID      int64
	PrivateKey []byte // PEM, PKCS#1 as GitHub issues it, or PKCS#8
	// BaseURL is the REST API root: DefaultBaseURL when empty, or
	// https://HOST/api/v3/ for GitHub Enterprise Server.
	BaseURL string
}

// Options holds the collaborators of Apps; all are optional.
type Options struct {
	Transport  http.RoundTripper     // default: a clone of http.DefaultTransport
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	Logger     *slog.Logger          // default: discard
	Now        func() time.Time      // times requests for metrics; default time.Now
	// PerInstallation bounds the requests in flight for one installation,
	// across all evaluations; default DefaultPerInstallation.
	PerInstallation int
}

// DefaultPerInstallation is how many requests one installation has in
// flight at most. GitHub asks integrations not to make many concurrent
// requests (its secondary limit allows 100 across the REST and GraphQL
// APIs); an evaluation reads its independent lists at once, and eight
// workers may evaluate pull requests of one installation together.
const DefaultPerInstallation = 8

// Apps hands out go-github clients authenticated as the App or as one of
// its installations. It is safe for concurrent use.
type Apps struct {
	appID   int64
	key     *rsa.PrivateKey
	base    *url.URL
	upload  *url.URL
	apiRoot string            // base without trailing slash, as ghinstallation wants it
	tr      http.RoundTripper // metrics over the base transport
	cache   *etagCache
	logger  *slog.Logger
	app     *github.Client

	perInst int
	now     func() time.Time

	mu      sync.Mutex
	clients map[int64]*github.Client
}

// Cache bounds: per Apps, across the App and all installations.
const (
	cacheEntries  = 2048
	cacheBytes    = 64 << 20
	cacheMaxEntry = 1 << 20
)

// New validates cfg and builds the App client.
func New(cfg Config, opts Options) (*Apps, error) {
	var errs []error
	if cfg.AppID <= 0 {
		errs = append(errs, fmt.Errorf("app id %d: must be positive", cfg.AppID))
	}
	key, err := parseKey(cfg.PrivateKey)
	if err != nil {
		errs = append(errs, fmt.Errorf("private key: %w", err))
	}
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("base url: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ghapp config: %w", err)
	}

	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PerInstallation <= 0 {
		opts.PerInstallation = DefaultPerInstallation
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}

	a := &Apps{
		appID:   cfg.AppID,
		key:     key,
		base:    base,
		upload:  uploadURL(base),
		apiRoot: strings.TrimSuffix(base.String(), "/"),
		tr:      &instrumented{next: opts.Transport, m: m, basePath: strings.TrimSuffix(base.EscapedPath(), "/"), now: opts.Now},
		cache:   newETagCache(cacheEntries, cacheBytes, cacheMaxEntry),
		logger:  opts.Logger.With("app_id", cfg.AppID),
		clients: map[int64]*github.Client{},
		perInst: opts.PerInstallation,
		now:     opts.Now,
	}
	a.app = a.newClient(newRetryTransport(a.cache.transport("app", a.appsTransport()), opts.Now))
	return a, nil
}

// AppClient is authenticated as the App itself (JWT), for /app endpoints.
func (a *Apps) AppClient() *github.Client { return a.app }

// Installation returns the client for an installation, creating it on
// first use. Clients are cached so each installation's token is reused
// until it nears expiry.
func (a *Apps) Installation(id int64) (*github.Client, error) {
	if id <= 0 {
		return nil, fmt.Errorf("installation id %d: must be positive", id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[id]; ok {
		return c, nil
	}
	// One AppsTransport per installation: ghinstallation writes to it while
	// refreshing a token, so sharing one would race.
	itr := ghinstallation.NewFromAppsTransport(a.appsTransport(), id)
	// From the client down: the rate budget, the concurrency bound, the
	// retries in passing, the ETag cache, then authentication.
	c := a.newClient(newBudgetTransport(bounded(a.perInst, newRetryTransport(a.cache.transport("installation/"+strconv.FormatInt(id, 10), itr), a.now)), a.now))
	a.clients[id] = c
	a.logger.Debug("github installation client created", "installation_id", id)
	return c, nil
}

// boundedTransport lets at most cap(slots) requests through at once.
type boundedTransport struct {
	slots chan struct{}
	next  http.RoundTripper
}

func bounded(n int, next http.RoundTripper) http.RoundTripper {
	return &boundedTransport{slots: make(chan struct{}, n), next: next}
}

// RoundTrip waits for a slot, or for the request's context to end. The
// slot is held until the response body is closed or read to its end, since
// GitHub counts a request as in flight until then.
func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case t.slots <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		<-t.slots
		return resp, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { <-t.slots }}
	return resp, nil
}

// releasingBody gives its slot back once, when closed or read to EOF.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

func (a *Apps) appsTransport() *ghinstallation.AppsTransport {
	atr := ghinstallation.NewAppsTransportFromPrivateKey(a.tr, a.appID, a.key)
	atr.BaseURL = a.apiRoot
	return atr
}

func (a *Apps) newClient(rt http.RoundTripper) *github.Client {
	c := github.NewClient(&http.Client{Transport: rt})
	base, upload := *a.base, *a.upload
	c.BaseURL, c.UploadURL = &base, &upload
	return c
}

func parseKey(b []byte) (*rsa.PrivateKey, error) {
	if len(b) == 0 {
		return nil, errors.New("required")
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an RSA key", k)
	}
	return rk, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		s = DefaultBaseURL
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q: want an absolute http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: must not have a query or fragment", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	return u, nil
}

// uploadURL follows GitHub's layout: uploads.github.com for github.com,
// /api/uploads/ beside /api/v3/ on GHES, else the API root itself.
func uploadURL(base *url.URL) *url.URL {
	u := *base
	switch {
	case u.Host == "api.github.com":
		u.Host = "uploads.github.com"
	case strings.HasSuffix(u.Path, "/api/v3/"):
		u.Path = strings.TrimSuffix(u.Path, "/api/v3/") + "/api/uploads/"
	}
	return &u
}
