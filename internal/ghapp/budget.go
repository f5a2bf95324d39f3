package ghapp

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// BudgetReserve is the share of an installation's hourly rate limit kept
// for writes: once reads would dig into it, they wait for the reset, so
// that the check runs and deployment answers of the evaluations that did
// run can still be written.
const BudgetReserve = 0.05

// BudgetError is a read refused because the installation's rate budget
// is down to its reserve until Reset. The queue keeps the job, durably,
// until then (RetryDelay); intake is not affected.
type BudgetError struct {
	Remaining, Limit int
	Reset            time.Time
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("github: rate budget low (%d of %d left, the rest kept for writes) until %s",
		e.Remaining, e.Limit, e.Reset.UTC().Format(time.RFC3339))
}

// budgetTransport follows an installation's primary rate limit from the
// answers' headers, and refuses reads while it is down to the reserve.
type budgetTransport struct {
	next http.RoundTripper
	now  func() time.Time

	mu               sync.Mutex
	remaining, limit int
	reset            time.Time
}

func newBudgetTransport(next http.RoundTripper, now func() time.Time) *budgetTransport {
	return &budgetTransport{next: next, now: now}
}

func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		if err := t.check(); err != nil {
			return nil, err
		}
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		t.observe(resp.Header)
	}
	return resp, err
}

func (t *budgetTransport) check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.limit == 0 || !t.now().Before(t.reset) {
		return nil
	}
	if float64(t.remaining) > float64(t.limit)*BudgetReserve {
		return nil
	}
	return &BudgetError{Remaining: t.remaining, Limit: t.limit, Reset: t.reset}
}

// observe keeps the core limit's state from an answer's headers.
func (t *budgetTransport) observe(h http.Header) {
	if r := h.Get("X-RateLimit-Resource"); r != "" && r != "core" {
		return
	}
	remaining, err1 := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	limit, err2 := strconv.Atoi(h.Get("X-RateLimit-Limit"))
	reset, err3 := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || limit <= 0 {
		return
	}
	t.mu.Lock()
	t.remaining, t.limit, t.reset = remaining, limit, time.Unix(reset, 0)
	t.mu.Unlock()
}
