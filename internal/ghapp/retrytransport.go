package ghapp

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// retryTransport retries a read (GET or HEAD) that failed in passing: a
// connection lost, a 502, 503 or 504, a JSON body cut short (errCutShort,
// from the ETag cache below, which reads every JSON answer whole), or a rate
// limit whose wait is short (Retry-After, or a primary limit's reset, of
// at most maxWait). It tries at most attempts times in all, so a fault
// costs a few requests, not a storm; anything else, and a longer wait, is
// the caller's (the queue retries or snoozes the whole job). Writes are
// never retried here: GitHub may have applied them.
type retryTransport struct {
	next     http.RoundTripper
	attempts int
	maxWait  time.Duration
	now      func() time.Time
	sleep    func(req *http.Request, d time.Duration) bool
}

func newRetryTransport(next http.RoundTripper, now func() time.Time) *retryTransport {
	return &retryTransport{next: next, attempts: 3, maxWait: 5 * time.Second, now: now, sleep: sleepCtx}
}

// sleepCtx waits d, or until the request's context ends (false).
func sleepCtx(req *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-req.Context().Done():
		return false
	}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return t.next.RoundTrip(req)
	}
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		wait, again := t.retryAfter(resp, err, attempt)
		if !again || req.Context().Err() != nil {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if !t.sleep(req, wait) {
			return nil, req.Context().Err()
		}
	}
}

// retryAfter says whether attempt is worth repeating, and after how long.
func (t *retryTransport) retryAfter(resp *http.Response, err error, attempt int) (time.Duration, bool) {
	if attempt >= t.attempts {
		return 0, false
	}
	backoff := time.Duration(100*(1<<(2*(attempt-1)))) * time.Millisecond // 100 ms, 400 ms
	backoff = time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
	switch {
	case errors.Is(err, errCutShort):
		return backoff, true
	case err != nil:
		return backoff, !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return backoff, true
	case http.StatusTooManyRequests, http.StatusForbidden:
		return t.limitWait(resp)
	}
	return 0, false
}

// limitWait is a rate limit's wait, when it is short: Retry-After, or the
// reset of a primary limit that is spent.
func (t *retryTransport) limitWait(resp *http.Response) (time.Duration, bool) {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		d := time.Duration(s) * time.Second
		return d, d <= t.maxWait
	}
	if resp.Header.Get("X-RateLimit-Remaining") != "0" {
		return 0, false // a 403 that is not a limit
	}
	reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return 0, false
	}
	d := time.Unix(reset, 0).Sub(t.now()) + 100*time.Millisecond
	return max(d, 0), d <= t.maxWait
}
