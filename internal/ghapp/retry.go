package ghapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// DefaultSecondaryDelay is how long to back off from a secondary rate limit
// that does not say when to retry; GitHub asks for "at least one minute".
const DefaultSecondaryDelay = time.Minute

// RetryDelay classifies an error from a GitHub call for the job queue.
// retry is false for nil and for permanent errors (4xx other than rate
// limits, a canceled parent context, anything unrecognised). When retry is
// true, delay is how long GitHub asked to wait, or 0 when it did not say:
// the queue then uses its own backoff.
//
//   - *github.RateLimitError: until Rate.Reset (X-RateLimit-Reset).
//   - *github.AbuseRateLimitError, or a 403/429 with Retry-After: RetryAfter,
//     else DefaultSecondaryDelay.
//   - 5xx, 429 without Retry-After, 202 (GitHub still computing): retry, 0.
//   - network errors and a request deadline: retry, 0.
func RetryDelay(err error, now time.Time) (delay time.Duration, retry bool) {
	var (
		rle    *github.RateLimitError
		abuse  *github.AbuseRateLimitError
		er     *github.ErrorResponse
		tok    *ghinstallation.HTTPError
		acc    *github.AcceptedError
		ue     *url.Error
		ne     net.Error
		syntax *json.SyntaxError
	)
	var budget *BudgetError
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return 0, false
	case errors.As(err, &budget):
		return max(budget.Reset.Sub(now), 0), true
	case errors.As(err, &rle):
		return max(rle.Rate.Reset.Sub(now), 0), true
	case errors.As(err, &abuse):
		if abuse.RetryAfter != nil {
			return max(*abuse.RetryAfter, 0), true
		}
		return DefaultSecondaryDelay, true
	case errors.As(err, &er):
		return statusDelay(er.Response)
	case errors.As(err, &tok) && tok.Response != nil:
		// The installation token could not be refreshed.
		return statusDelay(tok.Response)
	case errors.As(err, &acc):
		return 0, true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue), errors.As(err, &ne):
		return 0, true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &syntax):
		// A body cut short (a proxy, a reset mid-answer): read it again.
		return 0, true
	}
	return 0, false
}

func statusDelay(resp *http.Response) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	code := resp.StatusCode
	if code == http.StatusTooManyRequests || code == http.StatusForbidden {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			return max(time.Duration(s)*time.Second, 0), true
		}
	}
	return 0, code == http.StatusTooManyRequests || code >= 500
}

// Answered reports whether err is GitHub's answer to a request (a status
// it gave, perhaps to the installation token's request), which RetryDelay
// judges; any other error did not come from GitHub.
func Answered(err error) bool {
	var (
		er  *github.ErrorResponse
		rle *github.RateLimitError
		ab  *github.AbuseRateLimitError
		tok *ghinstallation.HTTPError
	)
	return errors.As(err, &er) || errors.As(err, &rle) || errors.As(err, &ab) || (errors.As(err, &tok) && tok.Response != nil)
}

// IsNotFound reports whether GitHub answered 404: the resource does not
// exist or the installation cannot see it.
func IsNotFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}
