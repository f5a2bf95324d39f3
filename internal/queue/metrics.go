package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	jobs      *prometheus.CounterVec
	runTime   *prometheus.HistogramVec
	waitTime  *prometheus.HistogramVec
	batchSize prometheus.Histogram
	store     Store

	depth *prometheus.Desc
	age   *prometheus.Desc
}

func newMetrics(reg prometheus.Registerer, store Store) (*metrics, error) {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changegate_jobs_total",
			Help: "Job attempts by kind and outcome (completed, retry, snoozed, cancelled, discarded).",
		}, []string{"kind", "outcome"}),
		runTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "changegate_job_duration_seconds",
			Help:    "Time a job attempt ran.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind"}),
		waitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "changegate_job_queue_wait_seconds",
			Help:    "Time a job waited between becoming available and starting.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "changegate_intake_batch_size",
			Help:    "Deliveries committed per intake transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		store: store,
		depth: prometheus.NewDesc("changegate_queue_jobs", "Jobs in the queue by state.", []string{"state"}, nil),
		age:   prometheus.NewDesc("changegate_queue_oldest_waiting_seconds", "Age of the oldest job waiting to run.", nil, nil),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.jobs, m.runTime, m.waitTime, m.batchSize, m} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register queue metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Describe and Collect make the queue's depth a scrape-time query.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.depth
	ch <- m.age
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := m.countByState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.depth, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(n), state)
	}
	_, age, err := m.waiting(ctx, time.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.age, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, age.Seconds())
}

func (m *metrics) countByState(ctx context.Context) (map[string]int, error) {
	counts, err := m.store.JobStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	out := map[string]int{"available": 0, "running": 0, "retryable": 0, "scheduled": 0, "discarded": 0, "cancelled": 0}
	for state, n := range counts {
		out[state] = n
	}
	return out, nil
}

// waiting counts jobs that are due and not yet running, and the age of the
// oldest: jobs in River's queue, and jobs of deliveries not yet dispatched
// into it. Jobs scheduled for later (backoff, rate limits) are not waiting.
func (m *metrics) waiting(ctx context.Context, now time.Time) (int, time.Duration, error) {
	n, oldest, err := m.store.WaitingJobs(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("count waiting jobs: %w", err)
	}
	var age time.Duration
	if !oldest.IsZero() {
		age = max(0, now.Sub(oldest))
	}
	return n, age, nil
}
