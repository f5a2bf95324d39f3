// Package chaos injects faults into the fake GitHub and the fake Jira: a
// set fraction of their answers becomes a server error, a rate limit, a
// slow answer, a reset connection or a truncated body. The choice is
// deterministic for a seed, so a failing run can be replayed.
package chaos

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults the fakes inject.
const (
	ServerError    Kind = "5xx"       // 502, 503 or 504
	SecondaryLimit Kind = "secondary" // 403 with Retry-After (GitHub's secondary rate limit)
	TooMany        Kind = "429"       // 429 with Retry-After
	PrimaryLimit   Kind = "primary"   // 403 (GitHub) or 429 (Jira), remaining 0, X-RateLimit-Reset
	Latency        Kind = "latency"   // the right answer, Delay late
	Reset          Kind = "reset"     // the connection closed before any answer
	Truncated      Kind = "truncated" // the right status and headers, half the body
)

// Kinds lists every kind.
var Kinds = []Kind{ServerError, SecondaryLimit, TooMany, PrimaryLimit, Latency, Reset, Truncated}

// Config says what to inject.
type Config struct {
	Kind     Kind
	Fraction float64       // of the answers, in [0, 1]
	Seed     uint64        // of the choice
	Delay    time.Duration // Latency's delay; default 2s
}

// Injector decides, request by request, whether to inject. The zero value
// injects nothing.
type Injector struct {
	mu       sync.Mutex
	cfg      Config
	rng      *rand.Rand
	injected int
}

// Set replaces the configuration; a zero Config stops injecting.
func (in *Injector) Set(c Config) {
	if c.Delay <= 0 {
		c.Delay = 2 * time.Second
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cfg = c
	in.rng = rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
}

// Next decides for one request: the fault to inject, if any.
func (in *Injector) Next() (Kind, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rng == nil || in.cfg.Kind == "" || in.rng.Float64() >= in.cfg.Fraction {
		return "", false
	}
	in.injected++
	return in.cfg.Kind, true
}

// Delay is the configured latency.
func (in *Injector) Delay() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cfg.Delay
}

// Injected counts the faults injected so far.
func (in *Injector) Injected() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.injected
}

// Answer is a fault that replaces the answer: its status, headers and body.
type Answer struct {
	Status int
	Header http.Header
	Body   string
}

// Replacing returns the answer for kinds that replace the response
// (server errors and rate limits), with limitStatus for PrimaryLimit
// (GitHub: 403; Jira: 429) and secondaryBody as a secondary limit's body.
func Replacing(k Kind, n int, now time.Time, limitStatus int, secondaryBody string) (Answer, bool) {
	reset := strconv.FormatInt(now.Add(time.Second).Unix(), 10)
	switch k {
	case ServerError:
		codes := []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
		return Answer{Status: codes[n%len(codes)], Body: `{"message":"Server Error"}`}, true
	case SecondaryLimit:
		return Answer{Status: http.StatusForbidden, Header: http.Header{"Retry-After": {"1"}}, Body: secondaryBody}, true
	case TooMany:
		return Answer{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}, Body: `{"message":"Too many requests"}`}, true
	case PrimaryLimit:
		return Answer{Status: limitStatus, Header: http.Header{"X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {reset},
			"X-RateLimit-Limit": {"5000"}, "X-RateLimit-Used": {"5000"}, "X-RateLimit-Resource": {"core"}},
			Body: `{"message":"API rate limit exceeded","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`}, true
	}
	return Answer{}, false
}

// Write writes a replacing answer.
func (a Answer) Write(w http.ResponseWriter) {
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(a.Status)
	_, _ = w.Write([]byte(a.Body))
}

// CloseConnection drops the connection without an answer, as a reset
// would look to the client.
func CloseConnection(w http.ResponseWriter) {
	if h, ok := w.(http.Hijacker); ok {
		if conn, _, err := h.Hijack(); err == nil {
			if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
				_ = tc.SetLinger(0) // RST, not FIN
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // the server closes the connection
}

// Truncate is the first half of a body.
func Truncate(body []byte) []byte { return body[:len(body)/2] }
