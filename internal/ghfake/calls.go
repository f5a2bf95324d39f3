package ghfake

import (
	"net/http"
	"strings"
)

// Bodies GitHub sends when a rate limit is hit. go-github turns a 403 with
// SecondaryRateLimitBody into *github.AbuseRateLimitError (it keys on the
// documentation URL), and a 403 with X-RateLimit-Remaining: 0 into
// *github.RateLimitError.
const (
	SecondaryRateLimitBody = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
	PrimaryRateLimitBody   = `{"message":"API rate limit exceeded for installation.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits"}`
)

// Call is one request the server answered.
type Call struct {
	Method         string
	Path           string
	Query          string
	Route          string // OpenAPI template, e.g. /repos/{owner}/{repo}
	Status         int
	NotModified    bool
	InstallationID int64 // 0 unless an installation token authenticated it
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

// Calls returns the calls so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CountCalls counts calls by method and OpenAPI route template.
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

// Writes counts calls that could change GitHub state: every method but GET
// and HEAD. Creating an installation token is authentication, not a write.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method != http.MethodGet && c.Method != http.MethodHead &&
			c.Route != "/app/installations/{installation_id}/access_tokens" {
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

// Match selects requests for FailNext.
type Match func(*http.Request) bool

// MatchRoute matches requests for one operation, given as "METHOD /template",
// e.g. "POST /app/installations/{installation_id}/access_tokens".
func MatchRoute(pattern string) Match {
	method, template, _ := strings.Cut(pattern, " ")
	re := compileTemplate(template)
	return func(r *http.Request) bool {
		return r.Method == method && re.MatchString(r.URL.EscapedPath())
	}
}

type fault struct {
	match  Match
	n      int
	status int
	header http.Header
	body   string
}

// FailNext makes the next n requests that match (nil matches all) answer
// status with header and body instead of reaching their handler. match runs
// under the server's lock, so it must not call the Server.
func (s *Server) FailNext(match Match, n, status int, header http.Header, body string) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{match: match, n: n, status: status, header: header.Clone(), body: body})
}

// takeFault writes the first pending fault that matches r, if any.
func (s *Server) takeFault(r *http.Request, w http.ResponseWriter) bool {
	s.mu.Lock()
	var f *fault
	for i, c := range s.faults {
		if c.match == nil || c.match(r) {
			f = c
			if f.n--; f.n <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
			break
		}
	}
	s.mu.Unlock()
	if f == nil {
		return false
	}
	for k, v := range f.header {
		w.Header()[k] = v
	}
	if f.body != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
	return true
}
