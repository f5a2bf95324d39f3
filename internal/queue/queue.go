// Package queue is changegate's durable job queue: River on the store's
// database, the embedded SQLite one or PostgreSQL (a Backend). Intake enqueues a delivery and its jobs in one group-committed
// transaction; workers run bounded, retry with backoff, honour rate-limit
// delays, and commit their effects together with the job's completion, so an
// acknowledged delivery is processed exactly once across crashes.
package queue

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/changegate/changegate/internal/jobs"
)

// Config tunes the queue.
type Config struct {
	Workers     int
	MaxAttempts int
	JobTimeout  time.Duration
	MaxBackoff  time.Duration
	Retention   time.Duration
	Saturation  int
	// MaxBatch bounds how many deliveries share one intake transaction.
	MaxBatch int
	// Classify says whether a failed job should be retried, and after how
	// long (0 means the queue's backoff). ghapp.RetryDelay fits.
	Classify func(err error, now time.Time) (delay time.Duration, retry bool)
	// MaxSnooze bounds how long a job may wait out rate limits in total,
	// counted from its creation, before it fails for good.
	MaxSnooze time.Duration
	// Periodic are jobs queued every interval, and once at start.
	Periodic []Periodic
	// ClientID names this process's River client, and so the jobs it runs
	// (River's attempted_by). Replicas sharing a database need distinct
	// ones; empty lets River pick.
	ClientID string

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Periodic is a job queued every Every (once at a time: a job still
// waiting is not queued again).
type Periodic struct {
	Every time.Duration
	Args  river.JobArgs
}

func (c *Config) periodicJobs() []*river.PeriodicJob {
	var out []*river.PeriodicJob
	for _, p := range c.Periodic {
		args := p.Args
		out = append(out, river.NewPeriodicJob(river.PeriodicInterval(p.Every),
			func() (river.JobArgs, *river.InsertOpts) {
				return args, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true,
					ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
			}, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	return out
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 2 * time.Minute
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Minute
	}
	if c.Retention <= 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.Saturation <= 0 {
		c.Saturation = 10000
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.MaxSnooze <= 0 {
		c.MaxSnooze = 24 * time.Hour
	}
	if c.Classify == nil {
		c.Classify = func(error, time.Time) (time.Duration, bool) { return 0, true }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Queue is the durable queue.
type Queue struct {
	cfg     Config
	store   Store
	client  riverClient
	metrics *metrics

	gate *gate
	// lastPressure is when intake last wrote a large batch (unix ns).
	lastPressure atomic.Int64
	intake       chan *pending
	mu           sync.RWMutex // guards closed against sends on intake
	closed       bool
	stopIntake   chan struct{}
	intakeDone   chan struct{}
	stopOnce     sync.Once

	heartbeatStop chan struct{}
	// running holds the ids of the jobs this process's workers run.
	running      sync.Map
	dispatchWake chan struct{}
	dispatchStop chan struct{}
	dispatchDone chan struct{}

	eventsDone chan struct{}
	unsub      func()
}

// Workers collects the job handlers before the queue is built.
type Workers struct {
	river *river.Workers
	q     *Queue // set by New
	kinds []func(*Queue)
	names []string
}

// NewWorkers returns an empty handler set.
func NewWorkers() *Workers { return &Workers{river: river.NewWorkers()} }

// deliveryJob is a job queued for a webhook delivery.
type deliveryJob interface {
	DeliveryRef() string
}

// Add registers the handler for one job kind.
func Add[T jobs.Args](w *Workers, h jobs.Handler[T]) {
	wk := &txWorker[T]{handle: h}
	river.AddWorker(w.river, wk)
	w.kinds = append(w.kinds, func(q *Queue) { wk.q = q })
	var zero T
	w.names = append(w.names, zero.Kind())
}

// Kinds are the job kinds that have a handler, in the order added.
func (w *Workers) Kinds() []string { return slices.Clone(w.names) }

// New builds the queue on a backend. It does not start workers.
func New(b *Backend, w *Workers, cfg Config) (*Queue, error) {
	cfg.setDefaults()
	store := b.store
	m, err := newMetrics(cfg.Registerer, store)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		cfg:        cfg,
		store:      store,
		metrics:    m,
		gate:       newGate(),
		intake:     make(chan *pending, cfg.MaxBatch*4),
		stopIntake: make(chan struct{}),
		intakeDone: make(chan struct{}),
		eventsDone: make(chan struct{}),

		heartbeatStop: make(chan struct{}),
		dispatchWake:  make(chan struct{}, 1),
		dispatchStop:  make(chan struct{}),
		dispatchDone:  make(chan struct{}),
	}
	for _, bind := range w.kinds {
		bind(q)
	}
	client, err := b.newClient(&river.Config{
		ID: cfg.ClientID,
		// The queue's logger names the component already; a second
		// "component" key would repeat on every line.
		Logger:                      cfg.Logger.With("library", "river"),
		Workers:                     w.river,
		Queues:                      map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		MaxAttempts:                 cfg.MaxAttempts,
		JobTimeout:                  cfg.JobTimeout,
		RescueStuckJobsAfter:        cfg.JobTimeout + time.Minute,
		RetryPolicy:                 &backoff{max: cfg.MaxBackoff, now: cfg.Now},
		CompletedJobRetentionPeriod: cfg.Retention,
		CancelledJobRetentionPeriod: cfg.Retention,
		DiscardedJobRetentionPeriod: cfg.Retention,
		// A kind without a worker (say, queued by a newer version before a
		// rollback) must not block dispatch of everything behind it; River
		// fails such jobs visibly instead.
		SkipUnknownJobCheck: true,
		// SQLite has no LISTEN/NOTIFY, and River wakes its producer only
		// for inserts made outside a transaction, while dispatch inserts
		// in one. So poll briskly: an indexed query on a local file every
		// fetchPoll is a fraction of a percent of a core, and a job waits
		// fetchPoll/2 on average (BenchmarkWebhookToCheck: 100 ms made
		// the p50 from webhook to check 43 ms).
		FetchPollInterval: fetchPoll,
		FetchCooldown:     time.Millisecond,
		PeriodicJobs:      cfg.periodicJobs(),
	})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.client = client
	return q, nil
}

// Start makes orphaned jobs of a crashed run available again, then starts
// the intake writer and the workers.
func (q *Queue) Start(ctx context.Context) error {
	n, err := q.store.RescueOrphanedJobs(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		q.cfg.Logger.Warn("rescued jobs left running by a previous process", "jobs", n)
	}
	if q.cfg.ClientID != "" {
		// Seen alive before it takes a job, so no other replica rescues
		// the jobs it is about to run.
		if err := q.store.Heartbeat(ctx, q.cfg.ClientID); err != nil {
			return err
		}
		go q.runHeartbeat()
	}
	events, unsub := q.client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed)
	q.unsub = unsub
	go q.watch(events)
	go q.runIntake()
	go q.runDispatcher()
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("start queue: %w", err)
	}
	return nil
}

// Stop stops taking deliveries, then lets running jobs finish until ctx
// ends, after which it cancels them; a cancelled job keeps its attempt and
// runs again after restart.
func (q *Queue) Stop(ctx context.Context) error {
	q.stopOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		close(q.stopIntake)
		<-q.intakeDone
		close(q.dispatchStop)
		<-q.dispatchDone
		close(q.heartbeatStop)
	})
	err := q.client.Stop(ctx)
	if err != nil {
		q.cfg.Logger.Warn("drain timed out; cancelling running jobs", "error", err)
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = q.client.StopAndCancel(cctx)
	}
	if q.unsub != nil {
		q.unsub()
		<-q.eventsDone
	}
	if err == nil && q.cfg.ClientID != "" {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := q.store.Retire(rctx, q.cfg.ClientID); rerr != nil {
			q.cfg.Logger.Warn("could not say this replica stopped; the others see it dead after its heartbeat lapses", "error", rerr)
		}
	}
	return err
}

// A replica says it is alive every heartbeat; jobs left running by one
// not seen for replicaDead are made available again, by any replica. A
// process stalled for that long (it would have to miss six heartbeats)
// may then see its job run twice; the job's effects are idempotent where
// that matters (dedupe by delivery, record ids, ON CONFLICT).
const (
	heartbeat   = HeartbeatEvery
	replicaDead = 30 * time.Second
)

// HeartbeatEvery is how often a replica says it is alive.
const HeartbeatEvery = 5 * time.Second

// runHeartbeat keeps this replica alive in the store and rescues the jobs
// of replicas that died, until Stop.
func (q *Queue) runHeartbeat() {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-q.heartbeatStop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), heartbeat)
		if err := q.store.Heartbeat(ctx, q.cfg.ClientID); err != nil {
			// Out of touch with the database, this replica cannot tell
			// whether the others are dead.
			q.cfg.Logger.Warn("heartbeat", "error", err)
			cancel()
			continue
		}
		if n, err := q.store.RescueAbandonedJobs(ctx, q.cfg.ClientID, replicaDead); err != nil {
			q.cfg.Logger.Warn("rescue the jobs of dead replicas", "error", err)
		} else if n > 0 {
			q.cfg.Logger.Warn("rescued jobs a dead replica left running", "jobs", n)
		}
		if n, err := q.store.RescueOwnJobs(ctx, q.cfg.ClientID, q.runningIDs(), replicaDead); err != nil {
			q.cfg.Logger.Warn("rescue jobs an outage left running", "error", err)
		} else if n > 0 {
			q.cfg.Logger.Warn("rescued jobs the database still showed running after an outage", "jobs", n)
		}
		cancel()
	}
}

// runningIDs are the jobs this process's workers run now.
func (q *Queue) runningIDs() []int64 {
	var ids []int64
	q.running.Range(func(k, _ any) bool {
		ids = append(ids, k.(int64))
		return true
	})
	return ids
}

// fetchPoll is how often River looks for jobs that became available.
const fetchPoll = 10 * time.Millisecond

// Insert queues jobs outside any delivery, such as the start-up sync.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, unique bool) error {
	opts := &river.InsertOpts{}
	if unique {
		opts.UniqueOpts = river.UniqueOpts{ByArgs: true}
	}
	_, err := q.client.Insert(ctx, args, opts)
	if err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return nil
}

// InsertBackgroundTx queues a job in tx, the transaction of a job's
// effects, so that it exists exactly when they do. It runs after the
// waiting live jobs (River priority 4); a second insert of the same
// arguments while the first waits is a no-op.
func (q *Queue) InsertBackgroundTx(ctx context.Context, tx jobs.Tx, args river.JobArgs) error {
	err := q.client.insertTx(ctx, tx, args, &river.InsertOpts{Priority: 4, UniqueOpts: river.UniqueOpts{ByArgs: true}})
	if err != nil {
		return fmt.Errorf("queue %s: %w", args.Kind(), err)
	}
	return nil
}

// InsertInto queues a job into the store of a data dir a running server
// holds (sqlite.OpenQueueClient), from another process, and returns its
// id.
// A background job runs after the waiting live ones (River priority 4).
func InsertInto(ctx context.Context, db *sql.DB, args river.JobArgs, background bool) (int64, error) {
	client, err := river.NewClient(riversqlite.New(db), &river.Config{SkipUnknownJobCheck: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	var opts *river.InsertOpts
	if background {
		opts = &river.InsertOpts{Priority: 4}
	}
	res, err := client.Insert(ctx, args, opts)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", args.Kind(), err)
	}
	return res.Job.ID, nil
}

// InsertAt queues a job to run at a time, once: a second insert of the
// same arguments is a no-op.
func (q *Queue) InsertAt(ctx context.Context, args river.JobArgs, at time.Time) error {
	_, err := q.client.Insert(ctx, args, &river.InsertOpts{ScheduledAt: at, UniqueOpts: river.UniqueOpts{ByArgs: true}})
	if err != nil {
		return fmt.Errorf("schedule %s job: %w", args.Kind(), err)
	}
	return nil
}

// Waiting reports the jobs waiting to run and the age of the oldest.
func (q *Queue) Waiting(ctx context.Context) (int, time.Duration, error) {
	return q.metrics.waiting(ctx, q.cfg.Now())
}

// Saturated reports whether more jobs wait than the configured bound.
func (q *Queue) Saturated(ctx context.Context) (bool, int, error) {
	n, _, err := q.Waiting(ctx)
	if err != nil {
		return false, 0, err
	}
	return n >= q.cfg.Saturation, n, nil
}

// watch turns River's job events into metrics and logs.
func (q *Queue) watch(events <-chan *river.Event) {
	defer close(q.eventsDone)
	for ev := range events {
		if ev.Job == nil {
			continue
		}
		outcome := outcomeOf(ev)
		q.metrics.jobs.WithLabelValues(ev.Job.Kind, outcome).Inc()
		if ev.JobStats != nil {
			q.metrics.runTime.WithLabelValues(ev.Job.Kind).Observe(ev.JobStats.RunDuration.Seconds())
			q.metrics.waitTime.WithLabelValues(ev.Job.Kind).Observe(ev.JobStats.QueueWaitDuration.Seconds())
		}
		if outcome == "discarded" || outcome == "cancelled" {
			q.cfg.Logger.Error("job failed for good", "job_id", ev.Job.ID, "kind", ev.Job.Kind,
				"attempt", ev.Job.Attempt, "error", lastError(ev.Job))
		}
	}
}

func outcomeOf(ev *river.Event) string {
	switch ev.Kind {
	case river.EventKindJobCompleted:
		return "completed"
	case river.EventKindJobSnoozed:
		return "snoozed"
	case river.EventKindJobCancelled:
		return "cancelled"
	}
	if ev.Job.State == rivertype.JobStateDiscarded {
		return "discarded"
	}
	return "retry"
}

func lastError(j *rivertype.JobRow) string {
	if len(j.Errors) == 0 {
		return ""
	}
	return j.Errors[len(j.Errors)-1].Error
}

// txWorker adapts a Handler to River.
type txWorker[T jobs.Args] struct {
	river.WorkerDefaults[T]
	q      *Queue
	handle jobs.Handler[T]
}

func (w *txWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	q := w.q
	q.running.Store(job.ID, struct{}{})
	defer q.running.Delete(job.ID)
	q.yieldToIntake(ctx)
	attrs := []any{slog.Int64("job_id", job.ID), slog.String("kind", job.Kind), slog.Int("attempt", job.Attempt)}
	for _, a := range job.Args.LogAttrs() {
		attrs = append(attrs, a)
	}
	log := q.cfg.Logger.With(attrs...)
	apply, err := w.handle(ctx, log, job.Args)
	if err != nil {
		return q.failure(ctx, log, job.JobRow, err)
	}
	if err := commit(ctx, q, job, apply); err != nil {
		// The commit rolled back, so nothing of the job happened: a
		// database that went away, a deadlock, a serialization failure.
		// Such errors say nothing about the job, which runs again with
		// backoff; only the handler's own errors are classified.
		if ctx.Err() == nil {
			log.Warn("job's commit failed; will retry", "error", err)
		}
		return err
	}
	return nil
}

// commit writes the job's effects, counts it against its delivery and
// completes it, all in one transaction: a crash before the commit leaves
// the job to run again, a crash after it leaves nothing to redo.
func commit[T jobs.Args](ctx context.Context, q *Queue, job *river.Job[T], apply jobs.Apply) error {
	q.gate.lockLow()
	defer q.gate.unlock()
	return q.store.WorkTx(ctx, func(tx jobs.Tx) error {
		if apply != nil {
			if err := apply(ctx, tx); err != nil {
				return err
			}
		}
		if d, ok := any(job.Args).(deliveryJob); ok && d.DeliveryRef() != "" {
			if err := q.store.MarkProcessed(ctx, tx, d.DeliveryRef(), q.cfg.Now()); err != nil {
				return err
			}
		}
		if err := q.client.completeTx(ctx, tx, job.JobRow); err != nil {
			return fmt.Errorf("complete job: %w", err)
		}
		return nil
	})
}

// failure decides what a failed attempt becomes: a snooze that honours a
// rate limit's reset time, a retry with backoff, or a permanent failure.
func (q *Queue) failure(ctx context.Context, log *slog.Logger, job *rivertype.JobRow, err error) error {
	if ctx.Err() != nil {
		// The job's own context ended: on a timeout River counts the attempt
		// and retries; on shutdown it sees the stop in the context's cause
		// and makes the job available again without spending an attempt
		// (TestStopTimeoutCancelsAndKeepsTheAttempt).
		return err
	}
	now := q.cfg.Now()
	delay, retry := q.cfg.Classify(err, now)
	switch {
	case !retry:
		log.Warn("job failed permanently", "error", err)
		return river.JobCancel(err)
	case delay > 0 && now.Add(delay).Sub(job.CreatedAt) <= q.cfg.MaxSnooze:
		log.Info("job waits", "delay", delay, "reason", err)
		return river.JobSnooze(delay)
	}
	log.Warn("job attempt failed; will retry", "error", err)
	return err
}

// backoff is exponential with jitter, capped.
type backoff struct {
	max time.Duration
	now func() time.Time
}

func (b *backoff) NextRetry(job *rivertype.JobRow) time.Time {
	return b.now().Add(backoffDelay(job.Attempt, b.max, rand.Float64()))
}

// backoffDelay is 1s, 2s, 4s… up to max, scaled by a jitter in [0.8, 1.2).
func backoffDelay(attempt int, max time.Duration, r float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := time.Second
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return time.Duration(float64(d) * (0.8 + 0.4*r))
}

// yieldToIntake holds a job back during a burst of deliveries, up to
// maxDispatchLag, so that acknowledgements get the CPU first.
func (q *Queue) yieldToIntake(ctx context.Context) {
	for start := time.Now(); q.intakePressed() && time.Since(start) < maxDispatchLag; {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}
