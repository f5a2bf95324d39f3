package ghapp

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	remaining   *prometheus.GaugeVec
	notModified *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changegate_github_requests_total",
			Help: "GitHub REST requests by method, route template and status (\"error\" when no response).",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "changegate_github_request_duration_seconds",
			Help:    "Time until GitHub's response headers, by route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "changegate_github_rate_limit_remaining",
			Help: "X-RateLimit-Remaining of the latest GitHub response, by rate-limit resource.",
		}, []string{"resource"}),
		notModified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changegate_github_not_modified_total",
			Help: "GitHub responses 304 Not Modified (served from the ETag cache, free of rate limit), by route template.",
		}, []string{"route"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.remaining, m.notModified} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register github metrics: %w", err)
		}
	}
	return m, nil
}

// instrumented records metrics for each request; it never looks at bodies
// or credentials.
type instrumented struct {
	next     http.RoundTripper
	m        *metrics
	basePath string // "/api/v3" on GHES, trimmed before normalising
	now      func() time.Time
}

func (t *instrumented) RoundTrip(req *http.Request) (*http.Response, error) {
	route := routeOf(strings.TrimPrefix(req.URL.EscapedPath(), t.basePath))
	start := t.now()
	resp, err := t.next.RoundTrip(req)
	t.m.duration.WithLabelValues(route).Observe(t.now().Sub(start).Seconds())
	if err != nil {
		t.m.requests.WithLabelValues(req.Method, route, "error").Inc()
		return nil, err
	}
	t.m.requests.WithLabelValues(req.Method, route, strconv.Itoa(resp.StatusCode)).Inc()
	if resp.StatusCode == http.StatusNotModified {
		t.m.notModified.WithLabelValues(route).Inc()
	}
	if v, err := strconv.ParseFloat(resp.Header.Get("X-RateLimit-Remaining"), 64); err == nil {
		resource := resp.Header.Get("X-RateLimit-Resource")
		if resource == "" {
			resource = "core"
		}
		t.m.remaining.WithLabelValues(resource).Set(v)
	}
	return resp, nil
}

// routeOf maps a request path to a template with bounded cardinality, e.g.
// /repos/acme/api/pulls/7/reviews → /repos/{owner}/{repo}/pulls/{n}/reviews.
// Segments the rules do not name are kept only when they look like API
// keywords; anything else becomes {id}.
func routeOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	out := make([]string, 0, len(segs))
	var pending []string // names of the parameters the previous keyword announced
	for i, seg := range segs {
		switch {
		case seg == "":
			continue
		case isSHA(seg):
			out = append(out, "{sha}")
			pending = nil
		case len(pending) > 0:
			out = append(out, pending[0])
			pending = pending[1:]
		case isDigits(seg):
			out = append(out, "{n}")
		case restParam(seg) != "" && i < len(segs)-1:
			return "/" + strings.Join(append(out, seg, restParam(seg)), "/")
		case isKeyword(seg):
			out = append(out, seg)
			pending = paramsAfter(seg)
		default:
			out = append(out, "{id}")
		}
	}
	return "/" + strings.Join(out, "/")
}

// paramsAfter names the parameters that follow a path keyword.
func paramsAfter(keyword string) []string {
	switch keyword {
	case "repos":
		return []string{"{owner}", "{repo}"}
	case "orgs":
		return []string{"{org}"}
	case "users", "members", "memberships", "collaborators":
		return []string{"{user}"}
	case "teams":
		return []string{"{team}"}
	case "branches":
		return []string{"{branch}"}
	case "environments":
		return []string{"{environment}"}
	case "labels":
		return []string{"{name}"}
	case "commits":
		return []string{"{ref}"}
	}
	return nil
}

// restParam names the parameter that takes all remaining segments after a
// keyword: file paths and git refs contain slashes.
func restParam(keyword string) string {
	switch keyword {
	case "contents":
		return "{path}"
	case "compare":
		return "{basehead}"
	case "ref", "refs", "matching-refs":
		return "{ref}"
	}
	return ""
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// isSHA accepts SHA-1 and SHA-256 object names.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isKeyword(s string) bool {
	if len(s) > 40 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
