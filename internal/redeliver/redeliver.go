// Package redeliver is the redelivery sweep. GitHub does not retry a
// failed webhook delivery; the sweep pages the App's delivery log
// (GET /app/hook/deliveries) back to where the last sweep ended, and asks
// GitHub to redeliver (POST /app/hook/deliveries/{id}/attempts) every
// delivery whose GUID never succeeded and that changegate does not hold:
// inside GitHub's 3-day window, once per GUID, and never one changegate
// already processed.
package redeliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"
)

// Window is how far back GitHub keeps deliveries it can redeliver.
const Window = 72 * time.Hour

// MaxPerSweep bounds the redeliveries one sweep asks for; the rest wait
// for the next sweep, which pages the same range again.
const MaxPerSweep = 100

// Store is what the sweep needs of the delivery store.
type Store interface {
	// KnownDeliveries says which GUIDs were acknowledged.
	KnownDeliveries(ctx context.Context, guids []string) (map[string]bool, error)
	// Redelivered says which GUIDs a sweep already asked for.
	Redelivered(ctx context.Context, guids []string) (map[string]bool, error)
	// SweepCursor is the newest delivery id the last finished sweep saw.
	SweepCursor(ctx context.Context) (int64, error)
}

// Asked is a redelivery the sweep asked GitHub for.
type Asked struct {
	GUID       string
	DeliveryID int64
	Event      string
}

// Result is what one sweep saw and did. Cursor is the newest delivery id
// seen when the sweep finished its range, else 0 (the range is swept
// again next time).
type Result struct {
	Seen, Missing int
	Asked         []Asked
	Cursor        int64
}

// Sweeper sweeps with the App's own client (JWT).
type Sweeper struct {
	App     func() *github.Client
	Store   Store
	Now     func() time.Time
	Metrics *Metrics
}

// Sweep runs one sweep. A GitHub error (a rate limit among them) ends it;
// what it asked for so far is in the result, to be kept.
func (s *Sweeper) Sweep(ctx context.Context, log *slog.Logger) (Result, error) {
	since, err := s.Store.SweepCursor(ctx)
	if err != nil {
		return Result{}, err
	}
	items, newest, err := s.page(ctx, since)
	if err != nil {
		return Result{}, err
	}
	res := Result{Seen: len(items)}
	missing, err := s.missing(ctx, items)
	if err != nil {
		return res, err
	}
	res.Missing = len(missing)
	s.Metrics.observe(len(items), len(missing))
	for i, d := range missing {
		if i == MaxPerSweep {
			log.Warn("redelivery sweep: more missing deliveries than one sweep asks for; the next sweep continues", "missing", len(missing))
			return res, nil
		}
		// GitHub answers 202 Accepted, which go-github reports as an error.
		var accepted *github.AcceptedError
		if _, _, err := s.App().Apps.RedeliverHookDelivery(ctx, d.GetID()); err != nil && !errors.As(err, &accepted) {
			return res, fmt.Errorf("redeliver %s (%s): %w", d.GetGUID(), d.GetEvent(), err)
		}
		res.Asked = append(res.Asked, Asked{GUID: d.GetGUID(), DeliveryID: d.GetID(), Event: d.GetEvent()})
		s.Metrics.Redelivered.Inc()
		log.Info("asked GitHub to redeliver a delivery changegate never received", "guid", d.GetGUID(), "event", d.GetEvent(), "delivered_at", d.GetDeliveredAt().Time)
	}
	res.Cursor = newest
	return res, nil
}

// page lists deliveries newest first, back to the cursor or the window.
func (s *Sweeper) page(ctx context.Context, since int64) ([]*github.HookDelivery, int64, error) {
	oldest := s.Now().Add(-Window)
	opts := &github.ListCursorOptions{PerPage: 100}
	var out []*github.HookDelivery
	var newest int64
	for {
		page, resp, err := s.App().Apps.ListHookDeliveries(ctx, opts)
		var er *github.ErrorResponse
		if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
			return nil, since, nil // the App has no webhook: nothing was delivered
		}
		if err != nil {
			return nil, 0, fmt.Errorf("list hook deliveries: %w", err)
		}
		for _, d := range page {
			if d.GetID() <= since || d.GetDeliveredAt().Time.Before(oldest) {
				return out, max(newest, since), nil
			}
			newest = max(newest, d.GetID())
			out = append(out, d)
		}
		if resp.Cursor == "" || len(page) == 0 {
			return out, max(newest, since), nil
		}
		opts.Cursor = resp.Cursor
	}
}

// missing are the latest deliveries of the GUIDs that never succeeded,
// that changegate does not hold and has not asked for before, oldest
// first.
func (s *Sweeper) missing(ctx context.Context, items []*github.HookDelivery) ([]*github.HookDelivery, error) {
	succeeded := map[string]bool{}
	latest := map[string]*github.HookDelivery{}
	var order []string
	for _, d := range items {
		g := d.GetGUID()
		if code := d.GetStatusCode(); code >= 200 && code < 400 {
			succeeded[g] = true
		}
		if _, seen := latest[g]; !seen {
			order = append(order, g) // newest first: the first seen is the latest
			latest[g] = d
		}
	}
	var guids []string
	for _, g := range order {
		if !succeeded[g] {
			guids = append(guids, g)
		}
	}
	known, err := s.Store.KnownDeliveries(ctx, guids)
	if err != nil {
		return nil, err
	}
	asked, err := s.Store.Redelivered(ctx, guids)
	if err != nil {
		return nil, err
	}
	var out []*github.HookDelivery
	for i := len(guids) - 1; i >= 0; i-- {
		if g := guids[i]; !known[g] && !asked[g] {
			out = append(out, latest[g])
		}
	}
	return out, nil
}

// Metrics count what the sweeps saw, found missing and redelivered.
type Metrics struct {
	Seen, Missing, Redelivered prometheus.Counter
}

// NewMetrics registers the sweep's counters.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Seen:        prometheus.NewCounter(prometheus.CounterOpts{Name: "changegate_redelivery_sweep_seen_total", Help: "Webhook deliveries the redelivery sweep listed."}),
		Missing:     prometheus.NewCounter(prometheus.CounterOpts{Name: "changegate_redelivery_sweep_missing_total", Help: "Listed deliveries whose GUID never succeeded and that changegate does not hold."}),
		Redelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "changegate_redelivery_sweep_redelivered_total", Help: "Redeliveries the sweep asked GitHub for."}),
	}
	reg.MustRegister(m.Seen, m.Missing, m.Redelivered)
	return m
}

func (m *Metrics) observe(seen, missing int) {
	m.Seen.Add(float64(seen))
	m.Missing.Add(float64(missing))
}
