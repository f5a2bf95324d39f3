// Package server assembles changegate's HTTP surface on echo: webhook
// intake, health, readiness, metrics and, when configured, the audit API
// and UI. Handlers hold no business logic.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Options are what the HTTP surface serves.
type Options struct {
	GitHubWebhook echo.HandlerFunc
	// JiraWebhook is nil when no Jira webhook secret is configured; the
	// route then answers 404.
	JiraWebhook echo.HandlerFunc
	Checks      []Check
	Gatherer    prometheus.Gatherer
	Logger      *slog.Logger
	// Audit mounts the audit API and the auditor UI (web.Handler's
	// Register); nil when no auditor token file is configured, and
	// /api/v1 and /audit then answer 404.
	Audit func(e *echo.Echo)
	// Setup mounts /setup, the App registration by manifest; nil when an
	// App is configured, and /setup then answers 404.
	Setup func(e *echo.Echo)
}

// New returns the echo instance with every route.
func New(o Options) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(recoverer(o.Logger))
	e.POST("/webhooks/github", o.GitHubWebhook)
	if o.JiraWebhook != nil {
		e.POST("/webhooks/jira", o.JiraWebhook)
	}
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", readyz(o.Checks))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})))
	if o.Setup != nil {
		o.Setup(e)
	}
	if o.Audit != nil {
		o.Audit(e)
	}
	return e
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func readyz(checks []Check) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
		defer cancel()
		r := readiness{Status: "ok", Checks: make(map[string]string, len(checks))}
		code := http.StatusOK
		for _, ch := range checks {
			if err := ch.Run(ctx); err != nil {
				r.Checks[ch.Name] = err.Error()
				r.Status = "unavailable"
				code = http.StatusServiceUnavailable
				continue
			}
			r.Checks[ch.Name] = "ok"
		}
		return c.JSON(code, r)
	}
}

// recoverer turns a handler panic into a 500 and a log line, without the
// request body.
func recoverer(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("handler panic", "path", c.Path(), "panic", r)
					err = c.JSON(http.StatusInternalServerError, map[string]string{"error": "internal error"})
				}
			}()
			return next(c)
		}
	}
}
