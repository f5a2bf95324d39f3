// Package ghfake is an in-memory GitHub REST API on httptest for tests.
//
// It authenticates like GitHub (App JWTs, installation tokens), answers
// with GitHub's JSON shapes and headers (ETag, rate limits, Link paging),
// records every call, injects faults, and checks each request against
// GitHub's OpenAPI description when the shared test material is present.
// New routes are added with Server.Handle.
package ghfake

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/changegate/changegate/internal/testenv"
	"github.com/changegate/changegate/internal/testenv/chaos"
)

// Server is a fake GitHub REST API. It is safe for concurrent use.
type Server struct {
	tb     testenv.T
	srv    *httptest.Server
	mux    *http.ServeMux
	web    *http.ServeMux // github.com's web pages: App creation from a manifest
	key    *rsa.PrivateKey
	appID  int64
	now    func() time.Time
	errorf func(format string, args ...any)
	spec   *spec // nil when the OpenAPI description is absent
	chaos  chaos.Injector

	mu            sync.Mutex
	nextID        int64
	installations map[int64]*installation
	tokens        map[string]token
	buckets       map[string]*bucket
	faults        []*fault
	calls         []Call
	pulls         pullsState // pull requests, commit evidence, contents, teams
	gateAnswers   []GateAnswer
	// protectionRules are environments' custom rules: owner/repo/env → App IDs.
	protectionRules map[string][]int64
	compares        map[string][]compareCommit // owner/repo/BASE...HEAD
	commitMessages  map[string]string          // owner/repo/sha
	manifestCodes   map[string]bool            // one-time App manifest codes not yet converted
	createdApps     []CreatedApp
	hooks           hookState // the App webhook's deliveries               // manifests confirmed on the web pages

	runLog checkRunLog // check-run write history; has its own lock
}

// Option configures a Server.
type Option func(*Server)

// WithAppID sets the App's ID (default 1).
func WithAppID(id int64) Option { return func(s *Server) { s.appID = id } }

// WithKey sets the App's private key instead of the per-process shared one.
func WithKey(k *rsa.PrivateKey) Option { return func(s *Server) { s.key = k } }

// WithClock sets the clock used for JWT checks, token expiry and rate-limit
// resets (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithErrorf replaces t.Errorf as the sink for requests GitHub would not
// understand, so a test can assert that they are reported.
func WithErrorf(f func(format string, args ...any)) Option {
	return func(s *Server) { s.errorf = f }
}

// sharedKey is generated once per process: 2048-bit RSA generation takes
// long enough to matter when every test starts a server.
var sharedKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("ghfake: generate key: " + err.Error())
	}
	return k
})

// New starts a fake GitHub server that is closed when the test (or the
// process host, testenv.Process) ends.
func New(tb testenv.T, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		runLog:        checkRunLog{writes: map[string][]CheckRunWrite{}},
		tb:            tb,
		mux:           http.NewServeMux(),
		web:           http.NewServeMux(),
		appID:         1,
		now:           time.Now,
		errorf:        tb.Errorf,
		nextID:        1000,
		installations: map[int64]*installation{},
		tokens:        map[string]token{},
		buckets:       map[string]*bucket{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.key == nil {
		s.key = sharedKey()
	}
	sp, err := loadSpec()
	switch {
	case err != nil:
		tb.Fatalf("ghfake: %v", err)
	case sp == nil:
		logSkipOnce.Do(func() {
			tb.Logf("ghfake: shared testdata absent; requests are not checked against GitHub's OpenAPI description")
		})
	}
	s.spec = sp
	s.routes()
	s.srv = httptest.NewServer(s)
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the API base URL, with a trailing slash, for go-github's BaseURL.
func (s *Server) URL() string { return s.srv.URL + "/" }

// AppID is the ID of the App the server authenticates.
func (s *Server) AppID() int64 { return s.appID }

// PrivateKeyPEM is the App's private key in PKCS#1 PEM, as GitHub issues it.
func (s *Server) PrivateKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(s.key)})
}

// Handle registers a route with a Go ServeMux path pattern such as
// "/repos/{owner}/{repo}/pulls/{pull_number}".
// Use the OpenAPI parameter names so calls are logged under GitHub's route
// template. Paths under /app and ending in /installation require an App
// JWT; all others an installation token, and when the pattern has {owner}
// and {repo} the token's installation must see that repository (else 404).
func (s *Server) Handle(method, pattern string, h http.HandlerFunc) {
	kind := authInstallation
	switch {
	case strings.HasPrefix(pattern, "/app-manifests/"):
		kind = authNone
	case pattern == "/app" || strings.HasPrefix(pattern, "/app/") || strings.HasSuffix(pattern, "/installation"):
		kind = authApp
	}
	s.mux.HandleFunc(method+" "+pattern, s.authenticate(kind, h))
}

// callState travels in the request context so the auth layer can tell
// ServeHTTP which rate-limit bucket the call is charged to.
type callState struct {
	bucket         string
	installationID int64
}

type stateKey struct{}

func stateOf(r *http.Request) *callState {
	st, _ := r.Context().Value(stateKey{}).(*callState)
	if st == nil {
		return &callState{}
	}
	return st
}

// CallerInstallation is the installation whose token authenticated r, for
// handlers added with Handle.
func CallerInstallation(r *http.Request) (int64, bool) {
	st := stateOf(r)
	return st.installationID, st.installationID != 0
}

// ServeHTTP validates, injects faults, dispatches, then adds the headers
// every GitHub response carries.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.web.Handler(r); pattern != "" {
		s.web.ServeHTTP(w, r) // github.com's pages, not the REST API
		return
	}
	st := &callState{}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	rec := &buffer{header: http.Header{}}

	route, known := s.spec.route(r.Method, r.URL.EscapedPath())
	kind, chaotic := s.chaos.Next()
	if chaotic && s.chaosBefore(w, r, kind, route) {
		return
	}
	answer, replaced := chaos.Answer{}, false
	if chaotic {
		answer, replaced = chaos.Replacing(kind, s.chaos.Injected(), s.now(), http.StatusForbidden, SecondaryRateLimitBody)
	}
	switch {
	case !known:
		s.errorf("ghfake: %s %s is not a GitHub REST operation", r.Method, r.URL.Path)
		writeError(rec, http.StatusNotFound, "Not Found")
	case replaced:
		answer.Write(rec)
	case s.takeFault(r, rec):
	default:
		_, pattern := s.mux.Handler(r)
		if pattern == "" {
			s.errorf("ghfake: %s %s is not implemented by the fake; add it with Handle", r.Method, r.URL.Path)
			writeError(rec, http.StatusNotFound, "Not Found")
			break
		}
		if s.spec == nil {
			route = templateOf(pattern)
		}
		s.mux.ServeHTTP(rec, r)
	}
	if route == "" {
		route = r.URL.Path
	}

	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	body := rec.body.Bytes()
	notModified := false
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && status == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		rec.header.Set("ETag", etag)
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			notModified, status, body = true, http.StatusNotModified, nil
			rec.header.Del("Content-Type")
		}
	}
	if chaotic && kind == chaos.Truncated && status == http.StatusOK && len(body) > 1 {
		body = chaos.Truncate(body)
	}
	if st.bucket != "" {
		// GitHub does not charge conditional requests answered 304.
		s.rateHeaders(rec.header, st.bucket, !notModified)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)

	s.record(Call{
		Method:         r.Method,
		Path:           r.URL.Path,
		Query:          r.URL.RawQuery,
		Route:          route,
		Status:         status,
		NotModified:    notModified,
		InstallationID: st.installationID,
	})
}

// SetChaos injects faults into a fraction of the answers from now on; a
// zero Config stops. Chaos counts what it injected.
func (s *Server) SetChaos(c chaos.Config) { s.chaos.Set(c) }

// ChaosInjected counts the faults injected.
func (s *Server) ChaosInjected() int { return s.chaos.Injected() }

// chaosBefore applies the faults that come before an answer: a delay, or a
// connection closed with none (recorded with status 0). It reports
// whether the request is done.
func (s *Server) chaosBefore(w http.ResponseWriter, r *http.Request, kind chaos.Kind, route string) bool {
	switch kind {
	case chaos.Latency:
		select {
		case <-time.After(s.chaos.Delay()):
		case <-r.Context().Done():
		}
	case chaos.Reset:
		s.record(Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Route: cmp.Or(route, r.URL.Path)})
		chaos.CloseConnection(w)
		return true
	}
	return false
}

// templateOf turns a ServeMux pattern into an OpenAPI-style template.
func templateOf(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	return strings.ReplaceAll(pattern, "...}", "}")
}

// etagMatches implements If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimPrefix(strings.TrimSpace(c), "W/")
		if c == "*" || c == etag {
			return true
		}
	}
	return false
}

// buffer holds a handler's response until ServeHTTP has added ETag and
// rate-limit headers, which depend on the whole body.
type buffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *buffer) Header() http.Header { return b.header }

func (b *buffer) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *buffer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}
