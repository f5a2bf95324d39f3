package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/webhook"
)

// ErrStopped is returned for deliveries offered after Stop.
var ErrStopped = errors.New("queue stopped")

type pending struct {
	d    *webhook.Delivery
	done chan result
}

type result struct {
	duplicate bool
	err       error
}

// Enqueue records d and its jobs durably before returning. Concurrent calls
// share one transaction (group commit): SQLite has one writer, and one
// fsync for many deliveries is what lets intake keep up with bursts.
func (q *Queue) Enqueue(ctx context.Context, d *webhook.Delivery) (bool, error) {
	p := &pending{d: d, done: make(chan result, 1)}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return false, ErrStopped
	}
	select {
	case q.intake <- p:
		q.mu.RUnlock()
	case <-ctx.Done():
		q.mu.RUnlock()
		return false, ctx.Err()
	}
	// Once handed over, wait for the outcome even if the caller gives up:
	// the answer must match what was stored.
	r := <-p.done
	return r.duplicate, r.err
}

// runIntake is the single intake writer.
func (q *Queue) runIntake() {
	defer close(q.intakeDone)
	batch := make([]*pending, 0, q.cfg.MaxBatch)
	for {
		select {
		case p := <-q.intake:
			batch = append(batch[:0], p)
		case <-q.stopIntake:
			// Answer whatever was handed over before the stop.
			for {
				select {
				case p := <-q.intake:
					q.writeBatch([]*pending{p})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < q.cfg.MaxBatch {
			select {
			case p := <-q.intake:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		q.writeBatch(batch)
	}
}

func (q *Queue) writeBatch(batch []*pending) {
	dups, err := q.insertBatch(batch)
	q.metrics.batchSize.Observe(float64(len(batch)))
	for i, p := range batch {
		p.done <- result{duplicate: err == nil && dups[i], err: err}
	}
}

func (q *Queue) insertBatch(batch []*pending) ([]bool, error) {
	// The batch must not die with one caller's request context.
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.JobTimeout)
	defer cancel()
	tx, err := q.store.SQL().BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin intake: %w", err)
	}
	defer tx.Rollback()
	dups := make([]bool, len(batch))
	var params []river.InsertManyParams
	for i, p := range batch {
		d := p.d
		inserted, err := q.store.InsertDelivery(ctx, tx, sqlite.Delivery{
			ID: d.ID, Source: "github", Event: d.Event, Action: d.Action,
			InstallationID: d.InstallationID, Repo: d.Repo, ReceivedAt: d.ReceivedAt, Jobs: len(d.Jobs),
		})
		if err != nil {
			return nil, err
		}
		if !inserted {
			dups[i] = true
			continue
		}
		for _, j := range d.Jobs {
			params = append(params, river.InsertManyParams{Args: j})
		}
	}
	if len(params) > 0 {
		if _, err := q.client.InsertManyTx(ctx, tx, params); err != nil {
			return nil, fmt.Errorf("queue jobs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit intake: %w", err)
	}
	return dups, nil
}
