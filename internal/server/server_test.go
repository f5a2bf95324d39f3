package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

func serve(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.NewRegistry()
	}
	if o.GitHubWebhook == nil {
		o.GitHubWebhook = func(c echo.Context) error { return c.NoContent(http.StatusAccepted) }
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := Check{Name: "store", Run: func(context.Context) error { return nil }}
	bad := Check{Name: "queue", Run: func(context.Context) error { return errors.New("saturated: 12000 jobs waiting") }}
	tests := []struct {
		name   string
		checks []Check
		code   int
		body   []string
	}{
		{"all ok", []Check{ok}, http.StatusOK, []string{`"status":"ok"`, `"store":"ok"`}},
		{"one failing", []Check{ok, bad}, http.StatusServiceUnavailable, []string{`"status":"unavailable"`, `"queue":"saturated: 12000 jobs waiting"`, `"store":"ok"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, Options{Checks: tc.checks})
			code, body := get(t, srv.URL+"/readyz")
			if code != tc.code {
				t.Errorf("status %d, want %d", code, tc.code)
			}
			for _, want := range tc.body {
				if !strings.Contains(body, want) {
					t.Errorf("body %s lacks %s", body, want)
				}
			}
		})
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "changegate_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	srv := serve(t, Options{Gatherer: reg})
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz %d", code)
	}
	if code, body := get(t, srv.URL+"/metrics"); code != http.StatusOK || !strings.Contains(body, "changegate_test_total 1") {
		t.Errorf("metrics %d %s", code, body)
	}
}

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	srv := serve(t, Options{GitHubWebhook: func(echo.Context) error { panic("boom") }})
	resp, err := http.Post(srv.URL+"/webhooks/github", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	// The server keeps serving.
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz after panic %d", code)
	}
}

func TestAuditMountedOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	audit := func(e *echo.Echo) {
		e.GET("/api/v1/checkpoint", func(c echo.Context) error { return c.String(http.StatusOK, "mounted") })
	}
	tests := []struct {
		name  string
		audit func(*echo.Echo)
		code  int
	}{
		{"configured", audit, http.StatusOK},
		{"not configured", nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, Options{Audit: tc.audit})
			if code, body := get(t, srv.URL+"/api/v1/checkpoint"); code != tc.code {
				t.Errorf("status %d (%s), want %d", code, body, tc.code)
			}
		})
	}
}
