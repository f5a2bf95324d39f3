package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/checks"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/inventory"
	"github.com/changegate/changegate/internal/jira"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/server"
	"github.com/changegate/changegate/internal/webhook"
)

func serveCmd(getenv config.LookupEnv, stdout, stderr io.Writer) *cobra.Command {
	var configPath string
	var o config.Overrides
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the GitHub App server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveAndReload(cmd.Context(), func() (config.Config, error) { return config.Load(configPath, getenv, o) }, stderr)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file (see config/changegate.example.yaml)")
	cmd.Flags().StringVar(&o.Listen, "listen", "", "listen address (default :8080, or CHANGEGATE_LISTEN)")
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "embedded store and evidence directory (default ./data, or CHANGEGATE_DATA_DIR)")
	return cmd
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// errReconfigured ends a serve whose configuration changed: /setup
// registered an App.
var errReconfigured = errors.New("configuration changed")

// serveAndReload serves, and serves again with the configuration reloaded
// when /setup registers an App: the server runs as the new App without a
// restart. The listener outlives each round, so the address stays.
func serveAndReload(ctx context.Context, load func() (config.Config, error), stderr io.Writer) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	ln := l.(*net.TCPListener)
	for {
		if err := ln.SetDeadline(time.Time{}); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		err := serve(ctx, cfg, keepOpen{ln}, stderr)
		if !errors.Is(err, errReconfigured) {
			return err
		}
		if cfg, err = load(); err != nil {
			return err
		}
	}
}

// keepOpen is a listener that an http.Server's Shutdown does not close:
// "closing" it makes a pending Accept return, so that Serve sees the
// shutdown, and the socket stays bound for the next round.
type keepOpen struct{ *net.TCPListener }

func (k keepOpen) Close() error { return k.SetDeadline(time.Now()) }

// serve runs until ctx ends, then shuts down in order: stop accepting
// webhooks, drain the queue, close the store. It returns errReconfigured
// when /setup registered an App.
func serve(ctx context.Context, cfg config.Config, ln net.Listener, stderr io.Writer) error {
	log := newLogger(stderr, cfg.LogLevel).With("app_version", version)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := openStorage(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := prepareSecrets(&cfg, stderr); err != nil {
		return err
	}

	// The ledger and its key are made on every first start, App
	// credentials or not, so that audit pubkey always works.
	led, err := openLedger(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	// Deferred calls run after the queue has stopped on every path.
	defer func() {
		if err := led.Close(); err != nil {
			log.Error("close evidence ledger", "err", err)
		}
	}()
	auditUI, err := newAuditHandler(cfg, store, led, log)
	if err != nil {
		return err
	}
	later := &scheduler{}
	workers, apps, err := newWorkers(ctx, cfg, store, led, later, reg, log)
	if err != nil {
		return err
	}
	var periodic []queue.Periodic
	if apps != nil {
		periodic = addCompleteness(workers, cfg, store, apps, reg)
	}
	q, err := newQueue(store, workers, cfg, periodic, reg, log)
	if err != nil {
		return err
	}
	later.q.Store(q)
	if err := startQueue(ctx, q, store, apps != nil, log); err != nil {
		return err
	}
	// From here on, the queue must be stopped on every path.
	stopQueue := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
		defer cancel()
		return q.Stop(sctx)
	}
	if apps != nil {
		if err := q.Insert(ctx, jobs.InstallationSync{Reason: "startup"}, true); err != nil {
			return errors.Join(err, stopQueue())
		}
	}

	registered := make(chan struct{}, 1)
	checks := readiness(cfg, store, q, led)
	srv, err := newHTTPServer(cfg, store, q, checks, auditUI, newSetup(cfg, apps != nil, registered, log), reg, log)
	if err != nil {
		return errors.Join(err, stopQueue())
	}
	log.Info("changegate listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "store", store.describe(),
		"webhook_secret_source", cfg.WebhookSecretSource, "github_app", cfg.GitHub.Configured())
	return runServer(ctx, cfg, srv, ln, registered, stopQueue, log)
}

// prepareSecrets loads an App that /setup registered and makes sure a
// webhook secret exists, telling the admin where a generated one went.
func prepareSecrets(cfg *config.Config, stderr io.Writer) error {
	if err := cfg.UseStoredApp(); err != nil {
		return err
	}
	if err := cfg.EnsureWebhookSecret(); err != nil {
		return err
	}
	if cfg.WebhookSecretGenerated {
		fmt.Fprintf(stderr, "changegate: no webhook secret was configured; generated one into %s\n"+
			"changegate: set it as the GitHub App's webhook secret, or set CHANGEGATE_WEBHOOK_SECRET\n", cfg.WebhookSecretSource)
	}
	return nil
}

// newWorkers registers a worker for every job kind. Without App
// credentials the jobs that need them wait; apps is nil then.
// scheduler queues evaluations for later, into the queue once it exists.
type scheduler struct{ q atomic.Pointer[queue.Queue] }

// queue is the queue, once it exists.
func (s *scheduler) queue() (*queue.Queue, error) {
	if q := s.q.Load(); q != nil {
		return q, nil
	}
	return nil, errors.New("the queue is not running yet")
}

// insertAt queues args for at, once the queue exists.
func (s *scheduler) insertAt(ctx context.Context, args river.JobArgs, at time.Time) error {
	q, err := s.queue()
	if err != nil {
		return err
	}
	return q.InsertAt(ctx, args, at)
}

func (s *scheduler) writeBack(ctx context.Context, j jobs.JiraWriteBack) error {
	return s.insertAt(ctx, j, time.Now())
}

// walkInstalled queues the first reconciliation of repositories just
// installed, which backfills completeness.backfill_period of their
// production branches.
func (s *scheduler) walkInstalled(ctx context.Context, tx jobs.Tx, installation int64, repos []jobs.Repo, reason string) error {
	q, err := s.queue()
	if err != nil {
		return err
	}
	for _, r := range repos {
		if err := q.InsertBackgroundTx(ctx, tx, jobs.Reconcile{Installation: installation, Repo: r.FullName, Reason: reason}); err != nil {
			return err
		}
	}
	return nil
}

func (s *scheduler) evaluateAt(ctx context.Context, j jobs.EvaluatePR, at time.Time) error {
	return s.insertAt(ctx, j, at)
}

func newWorkers(ctx context.Context, cfg config.Config, store storage, led *openedLedger, later *scheduler, reg prometheus.Registerer, log *slog.Logger) (*queue.Workers, *ghapp.Apps, error) {
	floor, err := loadFloor(cfg.Policy.FloorFile)
	if err != nil {
		return nil, nil, err
	}
	workers := queue.NewWorkers()
	if !cfg.GitHub.Configured() {
		queue.Add(workers, inventory.EventHandler(store, time.Now, nil))
		log.Warn("GitHub App credentials not configured: webhooks are accepted and kept, and their jobs wait for the credentials (up to a day)")
		addNotConfigured(workers)
		return workers, nil, nil
	}
	key, err := readPrivateKey(cfg)
	if err != nil {
		return nil, nil, err
	}
	apps, err := ghapp.New(ghapp.Config{AppID: cfg.GitHub.AppID, PrivateKey: key, BaseURL: cfg.GitHub.APIURL},
		ghapp.Options{Registerer: reg, Logger: log.With("component", "github")})
	if err != nil {
		return nil, nil, err
	}
	var walk inventory.Walk
	if cfg.Completeness.ReconcileInterval > 0 {
		walk = later.walkInstalled
	}
	queue.Add(workers, inventory.EventHandler(store, time.Now, walk))
	queue.Add(workers, inventory.SyncHandler(store, inventory.GitHubLister{Clients: apps}, time.Now))
	tickets, err := newJira(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	assessor, err := newAssessor(store, apps, cfg.GitHub.AppID, tickets, archiver{led, store.ledgerIndex()}, floor, log.With("component", "policy"))
	if err != nil {
		return nil, nil, err
	}
	assessor.Recheck = later.evaluateAt
	if cfg.Jira.WriteBack && tickets != nil {
		assessor.WriteBack = later.writeBack
		queue.Add(workers, writeBackHandler(tickets, cfg.PublicURL))
	}
	assessor.BackfillPeriod = cfg.Completeness.BackfillPeriod.D()
	assessor.ReconcileGrace = cfg.Completeness.ReconcileGrace.D()
	walked := prometheus.NewCounter(prometheus.CounterOpts{Name: "changegate_backfill_commits_walked_total", Help: "Commits backfill jobs walked."})
	reg.MustRegister(walked)
	assessor.BackfillProgress = func(string, int, int) { walked.Inc() }
	addAssessor(workers, assessor)
	return workers, apps, nil
}

// addAssessor registers the workflow's job handlers.
func addAssessor(w *queue.Workers, a *assess.Assessor) {
	queue.Add(w, a.EvaluatePRJob)
	queue.Add(w, a.EvaluateSHAJob)
	queue.Add(w, a.JiraIssueJob)
	queue.Add(w, a.TeamChangedJob)
	queue.Add(w, a.ArchiveDeploymentJob)
	queue.Add(w, a.ArchivePushJob)
	queue.Add(w, a.DeploymentGateJob)
	queue.Add(w, a.DeploymentReviewJob)
	queue.Add(w, a.MergeGroupJob)
	queue.Add(w, a.ReconcileJob)
	queue.Add(w, a.ReconcileAllJob)
	queue.Add(w, a.BackfillJob)
	queue.Add(w, a.WatchControlsJob)
}

// addNotConfigured registers, for each job kind in credentialKinds, a
// worker that waits for App credentials.
func addNotConfigured(workers *queue.Workers) {
	queue.Add(workers, notConfigured[jobs.InstallationSync]())
	queue.Add(workers, notConfigured[jobs.EvaluatePR]())
	queue.Add(workers, notConfigured[jobs.EvaluateSHA]())
	queue.Add(workers, notConfigured[jobs.JiraIssue]())
	queue.Add(workers, notConfigured[jobs.ArchiveDeployment]())
	queue.Add(workers, notConfigured[jobs.ArchivePush]())
	queue.Add(workers, notConfigured[jobs.DeploymentGate]())
	queue.Add(workers, notConfigured[jobs.MergeGroup]())
	queue.Add(workers, notConfigured[jobs.DeploymentReview]())
	queue.Add(workers, notConfigured[jobs.Reconcile]())
	queue.Add(workers, notConfigured[jobs.Backfill]())
	queue.Add(workers, notConfigured[jobs.WatchControls]())
	queue.Add(workers, notConfigured[jobs.TeamChanged]())
}

func newQueue(store storage, workers *queue.Workers, cfg config.Config, periodic []queue.Periodic, reg prometheus.Registerer, log *slog.Logger) (*queue.Queue, error) {
	return queue.New(store.backend(), workers, queue.Config{
		ClientID:    store.clientID(),
		Periodic:    periodic,
		Workers:     cfg.Queue.Workers,
		MaxAttempts: cfg.Queue.MaxAttempts,
		JobTimeout:  cfg.Queue.JobTimeout.D(),
		MaxBackoff:  cfg.Queue.MaxBackoff.D(),
		Retention:   cfg.Queue.Retention.D(),
		Saturation:  cfg.Queue.Saturation,
		Classify:    classifyJobError,
		Logger:      log.With("component", "queue"),
		Registerer:  reg,
	})
}

// classifyJobError says when a failed job runs again, and whether it does.
func classifyJobError(err error, now time.Time) (time.Duration, bool) {
	switch {
	case errors.Is(err, errAppNotConfigured):
		// Kept, not cancelled: the jobs run once the App is
		// configured and the server restarted (for up to a day).
		return credentialsWait, true
	case errors.Is(err, checks.ErrForeignCallback):
		return 0, false
	case errors.Is(err, assess.ErrJiraUnreachable), errors.Is(err, assess.ErrGatePending), errors.Is(err, jira.ErrWriteBack):
		// The check already says pending, or GitHub waits for the
		// gate's final answer: keep asking.
		return 0, true
	case errors.Is(err, ledger.ErrWrite):
		// The evidence store or the index refused the record: archive it
		// once they answer again, never drop it. A snooze spends no
		// attempt, so an outage of up to a day (the queue's MaxSnooze)
		// loses nothing.
		return evidenceRetry, true
	}
	delay, retry := ghapp.RetryDelay(err, now)
	if retry || ghapp.Answered(err) || errors.Is(err, context.Canceled) {
		return delay, retry
	}
	// Not GitHub saying the job cannot succeed, but a database that
	// failed, a store, or a bug: retried with backoff, within the queue's
	// attempts, rather than dropped at once.
	return 0, true
}

// evidenceRetry is how often an archive job the evidence stores refused
// tries again.
const evidenceRetry = 10 * time.Second

// startQueue starts the workers. On the first start with App credentials
// after one without, the deliveries that arrived before the credentials
// run now. Only then: a job waiting for a rate limit's reset, or a recheck
// due later, keeps its time across an ordinary restart.
func startQueue(ctx context.Context, q *queue.Queue, store storage, configured bool, log *slog.Logger) error {
	state := "without"
	if configured {
		state = "with"
	}
	before, err := store.SwapServerState(ctx, "credentials", state)
	if err != nil {
		return err
	}
	if configured && before != "with" {
		n, err := store.WakeScheduledJobs(ctx, credentialKinds)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("jobs that waited for App credentials run now", "jobs", n)
		}
	}
	return q.Start(ctx)
}

// readiness is what /readyz checks: the database takes a write, the queue
// is not saturated, and, when the evidence is in S3, the bucket answers
// (a listing that matches nothing: one request). A local evidence
// directory is the data dir's, which the store check covers.
func readiness(cfg config.Config, store storage, q *queue.Queue, led *openedLedger) []server.Check {
	checks := []server.Check{
		{Name: "store", Run: func(ctx context.Context) error { return store.CheckWritable(ctx, time.Now()) }},
		{Name: "queue", Run: func(ctx context.Context) error { return queueHealth(ctx, q, cfg.Queue.Saturation) }},
	}
	if cfg.EvidenceURL != "" {
		checks = append(checks, server.Check{Name: "evidence", Run: func(ctx context.Context) error {
			if err := led.blobs.List(ctx, ledger.CheckpointPrefix+"readiness-", func(string) error { return nil }); err != nil {
				return fmt.Errorf("evidence store: %w", err)
			}
			return nil
		}})
	}
	return checks
}

// newHTTPServer builds the webhook intake, the UI and the health checks.
func newHTTPServer(cfg config.Config, store storage, q *queue.Queue, checks []server.Check, auditUI, setupUI func(*echo.Echo), reg *prometheus.Registry, log *slog.Logger) (*http.Server, error) {
	intake, err := webhook.NewGitHub(webhook.Options{
		Secret:     cfg.WebhookSecret,
		MaxBody:    config.MaxWebhookBody,
		Enqueuer:   q,
		Logger:     log.With("component", "intake"),
		Registerer: reg,
		AppID:      cfg.GitHub.AppID,
	})
	if err != nil {
		return nil, err
	}
	var jiraHook echo.HandlerFunc
	if len(cfg.Jira.WebhookSecret) > 0 {
		jh, err := webhook.NewJira(intake, cfg.Jira.WebhookSecret, jira.ParseWebhook)
		if err != nil {
			return nil, err
		}
		jiraHook = jh.Handle
	}
	e := server.New(server.Options{
		GitHubWebhook: intake.Handle,
		JiraWebhook:   jiraHook,
		Gatherer:      reg,
		Logger:        log,
		Audit:         auditUI,
		Setup:         setupUI,
		Checks:        checks,
	})
	return &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}, nil
}

func queueHealth(ctx context.Context, q *queue.Queue, limit int) error {
	saturated, n, err := q.Saturated(ctx)
	if err != nil {
		return err
	}
	if saturated {
		return fmt.Errorf("saturated: %d jobs waiting (queue.saturation is %d)", n, limit)
	}
	return nil
}

// runServer serves until ctx ends or /setup registers an App, then stops
// accepting webhooks and drains the queue.
func runServer(ctx context.Context, cfg config.Config, srv *http.Server, ln net.Listener, registered <-chan struct{}, stopQueue func() error, log *slog.Logger) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var result error
	select {
	case <-ctx.Done():
		log.Info("shutting down: no new webhooks, draining jobs", "timeout", cfg.ShutdownTimeout.D().String())
	case <-registered:
		log.Info("an App was registered: serving again as it")
		result = errReconfigured
	case err := <-serveErr:
		return errors.Join(fmt.Errorf("http server: %w", err), stopQueue())
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	httpErr := srv.Shutdown(sctx)
	qErr := stopQueue()
	if err := errors.Join(httpErr, qErr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped cleanly")
	return result
}

// credentialKinds are the jobs that need App credentials.
var credentialKinds = []string{jobs.KindInstallationSync, jobs.KindEvaluatePR, jobs.KindEvaluateSHA, jobs.KindJiraIssue,
	jobs.KindArchiveDeployment, jobs.KindArchivePush, jobs.KindDeploymentGate, jobs.KindMergeGroup, jobs.KindDeploymentReview,
	jobs.KindReconcile, jobs.KindBackfill, jobs.KindWatchControls, jobs.KindTeamChanged}

// credentialsWait is how long a job waits before it looks for App
// credentials again.
const credentialsWait = 5 * time.Minute

var errAppNotConfigured = errors.New("GitHub App credentials are not configured (github.app_id, github.private_key_file)")

// notConfigured makes a job wait: without App credentials nothing can be
// read from GitHub, so the job is snoozed until a restart brings them.
func notConfigured[T jobs.Args]() jobs.Handler[T] {
	return func(context.Context, *slog.Logger, T) (jobs.Apply, error) { return nil, errAppNotConfigured }
}

// newJira builds the Jira client when Jira is configured, and checks the
// credentials once: Jira Cloud answers 404 for an issue both when it does
// not exist and when we are locked out. A failure is logged, not fatal:
// lookups then report Jira unreachable and checks stay pending, while
// webhooks keep being accepted.
func newJira(ctx context.Context, cfg config.Config, log *slog.Logger) (*jira.Client, error) {
	if cfg.Jira.URL == "" {
		log.Warn("Jira not configured (CHANGEGATE_JIRA_URL): the ticket control cannot pass")
		return nil, nil
	}
	c, err := jira.New(jira.Config{URL: cfg.Jira.URL, User: cfg.Jira.User, Token: cfg.Jira.Token},
		jira.Options{Logger: log.With("component", "jira")})
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Verify(vctx); err != nil {
		log.Error("Jira credentials could not be verified; ticket checks stay pending until they can", "error", err)
	} else {
		log.Info("Jira credentials verified", "jira_url", cfg.Jira.URL)
	}
	return c, nil
}
