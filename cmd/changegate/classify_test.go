package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/checks"
	"github.com/changegate/changegate/internal/ledger"
)

// TestClassifyJobError: what GitHub answers decides; a refused evidence
// write waits without spending an attempt; anything else that is not
// GitHub's answer (a database, a store) is retried, not dropped.
func TestClassifyJobError(t *testing.T) {
	t.Parallel()
	answer := func(code int) error {
		return &github.ErrorResponse{Response: &http.Response{StatusCode: code, Header: http.Header{}}}
	}
	for _, tt := range []struct {
		name  string
		err   error
		retry bool
		delay time.Duration
	}{
		{"GitHub 404", fmt.Errorf("read policy: %w", answer(http.StatusNotFound)), false, 0},
		{"GitHub 502", answer(http.StatusBadGateway), true, 0},
		{"a foreign callback", checks.ErrForeignCallback, false, 0},
		{"shut down", context.Canceled, false, 0},
		{"S3 refused the record", fmt.Errorf("archive: %w", fmt.Errorf("%w: store records 4..7: 503", ledger.ErrWrite)), true, evidenceRetry},
		{"the database went away", errors.New("FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"), true, 0},
	} {
		delay, retry := classifyJobError(tt.err, time.Now())
		if retry != tt.retry || delay != tt.delay {
			t.Errorf("%s: delay %v, retry %v; want %v, %v", tt.name, delay, retry, tt.delay, tt.retry)
		}
	}
}
