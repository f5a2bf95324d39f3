package main

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/jira"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/redeliver"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// addCompleteness registers the jobs that find what webhooks missed, and
// returns their schedule.
func addCompleteness(workers *queue.Workers, cfg config.Config, store storage, apps *ghapp.Apps, reg prometheus.Registerer) []queue.Periodic {
	var periodic []queue.Periodic
	if every := cfg.Completeness.ReconcileInterval.D(); every > 0 {
		periodic = append(periodic, queue.Periodic{Every: every, Args: jobs.ReconcileAll{}})
	}
	every := cfg.Completeness.RedeliveryInterval.D()
	if every <= 0 {
		return periodic
	}
	s := &redeliver.Sweeper{App: apps.AppClient, Store: store, Now: time.Now,
		Metrics: redeliver.NewMetrics(reg)}
	queue.Add(workers, sweepHandler(s, store))
	return append(periodic, queue.Periodic{Every: every, Args: jobs.RedeliverySweep{}})
}

// sweepHandler runs one sweep and keeps, with the job, what it asked for
// and its cursor. A sweep cut short by GitHub still keeps what it asked for,
// so that nothing is asked for twice.
func sweepHandler(s *redeliver.Sweeper, store storage) jobs.Handler[jobs.RedeliverySweep] {
	return func(ctx context.Context, log *slog.Logger, _ jobs.RedeliverySweep) (jobs.Apply, error) {
		res, err := s.Sweep(ctx, log)
		asked := make([]sqlite.Redelivery, 0, len(res.Asked))
		for _, a := range res.Asked {
			asked = append(asked, sqlite.Redelivery{GUID: a.GUID, DeliveryID: a.DeliveryID, Event: a.Event})
		}
		if err != nil {
			if len(asked) > 0 {
				if kerr := store.InTx(ctx, func(tx jobs.Tx) error { return store.RecordSweep(ctx, tx, 0, asked, time.Now()) }); kerr != nil {
					log.Error("keep the redeliveries asked for", "err", kerr)
				}
			}
			return nil, err
		}
		log.Info("redelivery sweep done", "seen", res.Seen, "missing", res.Missing, "redelivered", len(asked))
		return func(ctx context.Context, tx jobs.Tx) error {
			return store.RecordSweep(ctx, tx, res.Cursor, asked, time.Now())
		}, nil
	}
}

// writeBackHandler tells a Jira ticket of its change record. A failure
// fails the job, which the queue retries; the record stands either way.
func writeBackHandler(tickets *jira.Client, publicURL string) jobs.Handler[jobs.JiraWriteBack] {
	base := strings.TrimSuffix(publicURL, "/")
	return func(ctx context.Context, log *slog.Logger, j jobs.JiraWriteBack) (jobs.Apply, error) {
		err := tickets.WriteBack(ctx, jira.Link{Key: j.Key, RecordID: j.RecordID, URL: base + "/audit/changes/" + url.PathEscape(j.RecordID),
			Title: j.Title, Comment: j.Comment})
		if err != nil {
			return nil, err
		}
		log.Info("ticket told of its change record")
		return nil, nil
	}
}
