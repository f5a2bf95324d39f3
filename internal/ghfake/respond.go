package ghfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RateLimit is the primary rate limit of every fake credential.
const RateLimit = 5000

// WriteJSON writes v as a GitHub JSON response. ETag and rate-limit headers
// are added by the Server once the handler returns, whatever it wrote.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ghfake: encode: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes GitHub's error body, {"message":...,"documentation_url":...}.
func WriteError(w http.ResponseWriter, status int, message string) {
	writeError(w, status, message)
}

func writeError(w http.ResponseWriter, status int, message string) {
	WriteJSON(w, status, struct {
		Message string `json:"message"`
		DocURL  string `json:"documentation_url"`
	}{message, "https://docs.github.com/rest"})
}

// Paginate returns the page of items that r asks for with per_page (default
// 30, at most 100) and page (default 1), and sets GitHub's Link header.
func Paginate[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max((len(items)+perPage-1)/perPage, 1)

	link := func(p int, rel string) string {
		q.Set("per_page", strconv.Itoa(perPage))
		q.Set("page", strconv.Itoa(p))
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}

	start := min((page-1)*perPage, len(items))
	end := min(start+perPage, len(items))
	return items[start:end]
}

// bucket is one credential's primary rate limit window.
type bucket struct {
	used  int
	reset time.Time
}

// SetRateUsed sets how much of an installation's hourly rate limit is
// used, and when it resets.
func (s *Server) SetRateUsed(installationID int64, used int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buckets["installation:"+strconv.FormatInt(installationID, 10)] = &bucket{used: used, reset: reset}
}

func (s *Server) rateHeaders(h http.Header, key string, charge bool) {
	s.mu.Lock()
	now := s.now()
	b := s.buckets[key]
	if b == nil || !now.Before(b.reset) {
		b = &bucket{reset: now.Add(time.Hour).Truncate(time.Second)}
		s.buckets[key] = b
	}
	if charge && b.used < RateLimit {
		b.used++
	}
	used, reset := b.used, b.reset
	s.mu.Unlock()

	h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(RateLimit-used))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}
