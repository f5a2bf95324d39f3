// Package jirafake is an in-memory Jira (Cloud or Data Center) on httptest
// for tests: issues, transitions, Jira Service Management approvals, group
// members and the current user, answered in the JSON shapes of Atlassian's
// documented examples. It authenticates like Jira, records every call and
// injects faults.
package jirafake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/changegate/changegate/internal/testenv"
	"github.com/changegate/changegate/internal/testenv/chaos"
)

// Default credentials: a Cloud account email and API token.
const (
	DefaultUser  = "changegate@example.com"
	DefaultToken = "jira-test-token"
)

// RetryAfter is the Retry-After (seconds) a 429 from FailNext carries.
const RetryAfter = 30

// User is a Jira user. Cloud identifies users by AccountID, Data Center by
// Name; set whichever the test is about.
type User struct {
	AccountID   string
	Name        string
	DisplayName string
	Email       string
}

// Issue is a Jira issue.
type Issue struct {
	Key      string
	Project  string // default: the key's prefix
	Type     string // default: Task
	Status   string // default: To Do
	Summary  string
	Reporter User
	Created  time.Time // default: 2024-01-02 03:04:05 UTC
}

// Approval is a Jira Service Management approval on a request.
type Approval struct {
	Name      string
	Decision  string // finalDecision: approved, declined or pending
	Approvers []Approver
	Completed time.Time // zero while pending
}

// Approver is one person asked to approve, with their own decision.
type Approver struct {
	User
	Decision string // approved, declined or pending
}

// Call is one request the server answered.
type Call struct {
	Method string
	Path   string
	Query  string
	Route  string // e.g. /rest/api/2/issue/{key}
	Status int
}

// Option configures a Server.
type Option func(*Server)

// WithBasic makes the server a Jira Cloud site that accepts basic auth with
// this account email and API token (the default, with DefaultUser and
// DefaultToken).
func WithBasic(user, token string) Option {
	return func(s *Server) { s.user, s.token = user, token }
}

// WithBearer makes the server a Jira Data Center that accepts this personal
// access token as a Bearer token.
func WithBearer(token string) Option {
	return func(s *Server) { s.user, s.token = "", token }
}

// WithCloudNotFound answers requests with wrong credentials 404 instead of
// 401 everywhere but /myself, as Jira Cloud does for issues.
func WithCloudNotFound() Option { return func(s *Server) { s.cloud404 = true } }

// WithPageSize caps the page size of paginated lists (default 50).
func WithPageSize(n int) Option { return func(s *Server) { s.pageSize = n } }

// WithSelf sets the account the credentials belong to (GET /myself).
func WithSelf(u User) Option { return func(s *Server) { s.self = u } }

// Server is a fake Jira. It is safe for concurrent use.
type Server struct {
	chaos    chaos.Injector
	tb       testenv.T
	srv      *httptest.Server
	mux      *http.ServeMux
	cloud404 bool
	pageSize int

	mu        sync.Mutex
	user      string
	token     string
	self      User
	issues    map[string]*issue // by upper-case key
	groups    map[string][]User
	faults    []fault
	delay     time.Duration
	calls     []Call
	nextIssue int
	links     map[string][]RemoteLink // by upper-case issue key
	comments  map[string][]string
}

// RemoteLink is a remote issue link as the fake keeps it.
type RemoteLink struct {
	GlobalID, URL, Title string
}

type fault struct {
	route  string // "" matches every route
	status int
}

type issue struct {
	Issue
	id        int
	approvals []Approval // nil: not a service desk request
}

// New starts a fake Jira that is closed when the test ends.
func New(tb testenv.T, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		tb:        tb,
		mux:       http.NewServeMux(),
		pageSize:  50,
		user:      DefaultUser,
		token:     DefaultToken,
		self:      User{AccountID: "5b10a2844c20165700ede21g", Name: "", DisplayName: "changegate bot", Email: DefaultUser},
		issues:    map[string]*issue{},
		groups:    map[string][]User{},
		nextIssue: 10000,
	}
	for _, o := range opts {
		o(s)
	}
	for _, v := range []string{"2", "3"} {
		s.handle("GET /rest/api/"+v+"/myself", s.myself)
		s.handle("GET /rest/api/"+v+"/issue/{key}", s.getIssue)
		s.handle("GET /rest/api/"+v+"/group/member", s.groupMembers)
		s.handle("POST /rest/api/"+v+"/issue/{key}/remotelink", s.addRemoteLink)
		s.handle("POST /rest/api/"+v+"/issue/{key}/comment", s.addComment)
	}
	s.handle("GET /rest/servicedeskapi/request/{key}/approval", s.approvals)
	s.srv = httptest.NewServer(s)
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the site's base URL, without a trailing slash.
func (s *Server) URL() string { return s.srv.URL }

// User is the accepted account email; empty for a Data Center server.
func (s *Server) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// Token is the accepted API or personal access token.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// SetToken replaces the accepted token, as when the old one expires or is
// revoked.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	s.token = token
	s.mu.Unlock()
}

// AddIssue adds or replaces an issue.
func (s *Server) AddIssue(is Issue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToUpper(is.Key)
	if is.Project == "" {
		is.Project, _, _ = strings.Cut(k, "-")
	}
	if is.Type == "" {
		is.Type = "Task"
	}
	if is.Status == "" {
		is.Status = "To Do"
	}
	if is.Created.IsZero() {
		is.Created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	if old, ok := s.issues[k]; ok {
		old.Issue = is
		return
	}
	s.nextIssue++
	s.issues[k] = &issue{Issue: is, id: s.nextIssue}
}

// SetStatus moves an issue to status, as a transition would.
func (s *Server) SetStatus(key, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[strings.ToUpper(key)]
	if !ok {
		s.tb.Fatalf("jirafake: SetStatus: no issue %s", key)
	}
	is.Status = status
}

// SetApprovals makes the issue a Jira Service Management request with these
// approvals (none with an empty list). Issues without it answer the
// approval endpoint 404, like issues outside a service project.
func (s *Server) SetApprovals(key string, approvals []Approval) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[strings.ToUpper(key)]
	if !ok {
		s.tb.Fatalf("jirafake: SetApprovals: no issue %s", key)
	}
	is.approvals = append([]Approval{}, approvals...)
}

// AddGroupMember adds u to group, creating the group.
func (s *Server) AddGroupMember(group string, u User) {
	s.mu.Lock()
	s.groups[group] = append(s.groups[group], u)
	s.mu.Unlock()
}

// FailNext makes the next n requests answer status instead (before
// authentication, like a proxy in front of Jira). A 429 carries
// Retry-After.
func (s *Server) FailNext(n, status int) { s.FailNextOn("", n, status) }

// FailNextOn is FailNext for requests to one route, such as
// "/rest/servicedeskapi/request/{key}/approval".
func (s *Server) FailNextOn(route string, n, status int) {
	s.mu.Lock()
	for range n {
		s.faults = append(s.faults, fault{route: route, status: status})
	}
	s.mu.Unlock()
}

// SetDelay makes every answer wait d (or until the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Calls returns the calls so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CountCalls counts calls by method and route, e.g.
// ("GET", "/rest/api/2/issue/{key}").
func (s *Server) CountCalls(method, route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method && c.Route == route {
			n++
		}
	}
	return n
}

// ResetCalls forgets the calls so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = nil
	s.mu.Unlock()
}

func (s *Server) handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// recorder captures the status for the call log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// ServeHTTP delays, injects faults, authenticates, dispatches and records.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	_, route := s.mux.Handler(r)
	if _, rest, ok := strings.Cut(route, " "); ok {
		route = rest
	}
	defer func() {
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Route: route, Status: rec.status})
		s.mu.Unlock()
	}()

	s.mu.Lock()
	delay := s.delay
	fault := 0
	for i, f := range s.faults {
		if f.route == "" || f.route == route {
			fault = f.status
			s.faults = slices.Delete(s.faults, i, i+1)
			break
		}
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	kind, chaotic := s.chaos.Next()
	if chaotic {
		if done := s.chaosAnswer(rec, r, kind); done {
			return
		}
	}
	switch {
	case fault != 0:
		writeFault(rec, fault)
	case route == "":
		s.tb.Errorf("jirafake: %s %s is not implemented by the fake", r.Method, r.URL.Path)
		writeErrors(rec, http.StatusNotFound, "Not implemented by jirafake.")
	case !s.authenticated(r):
		if s.cloud404 && !strings.HasSuffix(route, "/myself") {
			writeErrors(rec, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
			return
		}
		rec.Header().Set("X-Seraph-LoginReason", "AUTHENTICATED_FAILED")
		writeErrors(rec, http.StatusUnauthorized, "You are not authenticated. Authentication required to perform this operation.")
	default:
		s.mux.ServeHTTP(rec, r)
	}
}

// SetChaos injects faults into a fraction of the answers from now on; a
// zero Config stops.
func (s *Server) SetChaos(c chaos.Config) { s.chaos.Set(c) }

// ChaosInjected counts the faults injected.
func (s *Server) ChaosInjected() int { return s.chaos.Injected() }

// chaosAnswer applies one injected fault. Jira has no secondary limit: it
// answers 429 with Retry-After for both. It reports whether the request is
// done; after a delay it is not.
func (s *Server) chaosAnswer(rec *recorder, r *http.Request, kind chaos.Kind) bool {
	switch kind {
	case chaos.Latency:
		select {
		case <-time.After(s.chaos.Delay()):
		case <-r.Context().Done():
			return true
		}
		return false
	case chaos.Reset:
		chaos.CloseConnection(rec.ResponseWriter)
		return true
	case chaos.Truncated:
		buf := httptest.NewRecorder()
		s.mux.ServeHTTP(buf, r)
		for k, v := range buf.Header() {
			rec.Header()[k] = v
		}
		rec.WriteHeader(buf.Code)
		_, _ = rec.Write(chaos.Truncate(buf.Body.Bytes()))
		return true
	case chaos.SecondaryLimit:
		kind = chaos.TooMany
	}
	a, ok := chaos.Replacing(kind, s.chaos.Injected(), time.Now(), http.StatusTooManyRequests, `{"errorMessages":["Rate limit exceeded."]}`)
	if ok {
		a.Write(rec)
	}
	return ok
}

func (s *Server) authenticated(r *http.Request) bool {
	s.mu.Lock()
	user, token := s.user, s.token
	s.mu.Unlock()
	if user == "" {
		return r.Header.Get("Authorization") == "Bearer "+token
	}
	u, p, ok := r.BasicAuth()
	return ok && u == user && p == token
}

func writeFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
		writeErrors(w, status, "Rate limit exceeded.")
	case http.StatusUnauthorized:
		writeErrors(w, status, "You are not authenticated. Authentication required to perform this operation.")
	default:
		if status >= 500 {
			// Atlassian's edge answers outages with a page, not JSON.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", status, http.StatusText(status))
			return
		}
		writeErrors(w, status, http.StatusText(status))
	}
}

func writeErrors(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"errorMessages": []string{msg}, "errors": map[string]any{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RemoteLinks are an issue's remote links.
func (s *Server) RemoteLinks(key string) []RemoteLink {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.links[strings.ToUpper(key)])
}

// Comments are the comments added to an issue.
func (s *Server) Comments(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments[strings.ToUpper(key)])
}

// addRemoteLink answers POST …/remotelink as Jira does: a link with the
// globalId of an existing one updates it (200), else it is added (201).
func (s *Server) addRemoteLink(w http.ResponseWriter, r *http.Request) {
	var body struct {
		GlobalID string `json:"globalId"`
		Object   struct{ URL, Title string }
	}
	key, ok := s.writeTo(w, r, &body, func() bool { return body.Object.URL != "" }, "object.url is required")
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if s.links == nil {
		s.links = map[string][]RemoteLink{}
	}
	link := RemoteLink{GlobalID: body.GlobalID, URL: body.Object.URL, Title: body.Object.Title}
	for i, l := range s.links[key] {
		if body.GlobalID != "" && l.GlobalID == body.GlobalID {
			s.links[key][i] = link
			writeJSON(w, http.StatusOK, map[string]any{"id": i + 1, "self": s.srv.URL + "/rest/api/2/issue/" + key + "/remotelink/" + strconv.Itoa(i+1)})
			return
		}
	}
	s.links[key] = append(s.links[key], link)
	n := len(s.links[key])
	writeJSON(w, http.StatusCreated, map[string]any{"id": n, "self": s.srv.URL + "/rest/api/2/issue/" + key + "/remotelink/" + strconv.Itoa(n)})
}

// writeTo decodes a write to an issue into body and checks it with valid,
// answering 400 or 404 as Jira does. On success it returns the issue's key
// with s.mu held.
func (s *Server) writeTo(w http.ResponseWriter, r *http.Request, body any, valid func() bool, invalid string) (string, bool) {
	if err := json.NewDecoder(r.Body).Decode(body); err != nil || !valid() {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{invalid}})
		return "", false
	}
	key := strings.ToUpper(r.PathValue("key"))
	s.mu.Lock()
	if _, ok := s.issues[key]; !ok {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"Issue does not exist or you do not have permission to see it."}})
		return "", false
	}
	return key, true
}

// addComment answers POST …/comment.
func (s *Server) addComment(w http.ResponseWriter, r *http.Request) {
	var body struct{ Body string }
	key, ok := s.writeTo(w, r, &body, func() bool { return body.Body != "" }, "Comment body can not be empty!")
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if s.comments == nil {
		s.comments = map[string][]string{}
	}
	s.comments[key] = append(s.comments[key], body.Body)
	writeJSON(w, http.StatusCreated, map[string]any{"id": strconv.Itoa(len(s.comments[key])), "body": body.Body})
}
