package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Intake is two steps, both durable and transactional:
//
//  1. Enqueue writes the delivery and its job arguments to the deliveries
//     table, group-committed with other deliveries arriving at the same time,
//     and only then returns, so the 202 means "on disk".
//  2. The dispatcher moves those jobs into River's queue in batches, marking
//     the deliveries dispatched in the same transaction.
//
// The split is measured, not taste: River's SQLite driver inserts and
// prepares one job at a time, which put its insert on the request path at a
// fifth of intake's throughput (see BenchmarkIntake in internal/webhook).

// ErrStopped is returned for deliveries offered after Stop.
var ErrStopped = errors.New("queue stopped")

type pending struct {
	row  store.Delivery
	done chan result
}

type result struct {
	duplicate bool
	err       error
}

// storedJob is how a job's arguments are kept in the deliveries table.
type storedJob struct {
	Kind string          `json:"kind"`
	Args json.RawMessage `json:"args"`
}

// rawArgs hands stored JSON to River unchanged.
type rawArgs struct {
	kind string
	args json.RawMessage
}

func (r rawArgs) Kind() string                 { return r.kind }
func (r rawArgs) MarshalJSON() ([]byte, error) { return r.args, nil }

// Enqueue records d and its jobs durably before returning. Concurrent calls
// share one transaction (group commit): SQLite has one writer, and one
// commit for many deliveries is what lets intake keep up with bursts.
func (q *Queue) Enqueue(ctx context.Context, d *jobs.Delivery) (bool, error) {
	stored := make([]storedJob, len(d.Jobs))
	for i, j := range d.Jobs {
		args, err := json.Marshal(j)
		if err != nil {
			return false, fmt.Errorf("encode %s job: %w", j.Kind(), err)
		}
		stored[i] = storedJob{Kind: j.Kind(), Args: args}
	}
	all, err := json.Marshal(stored)
	if err != nil {
		return false, fmt.Errorf("encode jobs: %w", err)
	}
	p := &pending{
		row: store.Delivery{
			ID: d.ID, Source: d.Source, Event: d.Event, Action: d.Action,
			InstallationID: d.InstallationID, Repo: d.Repo, ReceivedAt: d.ReceivedAt,
			Jobs: len(d.Jobs), JobArgs: all,
		},
		done: make(chan result, 1),
	}
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
	inserted, err := q.insertBatch(batch)
	q.metrics.batchSize.Observe(float64(len(batch)))
	for i, p := range batch {
		p.done <- result{duplicate: err == nil && !inserted[i], err: err}
	}
	if len(batch) >= pressureBatch {
		q.lastPressure.Store(time.Now().UnixNano())
	}
	if err == nil {
		q.wakeDispatcher()
	}
}

func (q *Queue) insertBatch(batch []*pending) ([]bool, error) {
	q.gate.lockHigh()
	defer q.gate.unlock()
	// The batch must not die with one caller's request context.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows := make([]store.Delivery, len(batch))
	for i, p := range batch {
		rows[i] = p.row
	}
	var inserted []bool
	err := q.store.InTx(ctx, func(tx jobs.Tx) error {
		var err error
		inserted, err = q.store.InsertDeliveries(ctx, tx, rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	return inserted, nil
}

func (q *Queue) wakeDispatcher() {
	select {
	case q.dispatchWake <- struct{}{}:
	default: // already woken
	}
}

// runDispatcher moves recorded jobs into River. It wakes after each intake
// commit, and polls so that jobs recorded before a crash are moved too.
func (q *Queue) runDispatcher() {
	defer close(q.dispatchDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-q.dispatchWake:
		case <-tick.C:
		case <-q.dispatchStop:
			q.dispatchAll()
			return
		}
		q.dispatchAll()
	}
}

func (q *Queue) dispatchAll() {
	deferredSince := time.Now()
	for {
		// During a burst, dispatch yields the CPU to intake, up to
		// maxDispatchLag: an acknowledgement is what GitHub waits for.
		if q.intakePressed() && time.Since(deferredSince) < maxDispatchLag {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		deferredSince = time.Now()
		n, err := q.dispatchBatch()
		if err != nil {
			// The jobs stay recorded; the next tick tries again.
			q.cfg.Logger.Error("dispatch jobs", "error", err)
			return
		}
		if n == 0 {
			return
		}
	}
}

func (q *Queue) dispatchBatch() (int, error) {
	q.gate.lockLow()
	defer q.gate.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	err := q.store.WorkTx(ctx, func(tx jobs.Tx) error {
		ds, err := q.store.Undispatched(ctx, tx, dispatchBatch)
		if err != nil || len(ds) == 0 {
			return err
		}
		var params []river.InsertManyParams
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
			var stored []storedJob
			if err := json.Unmarshal(d.JobArgs, &stored); err != nil {
				return fmt.Errorf("decode jobs of delivery %s: %w", d.ID, err)
			}
			for _, s := range stored {
				params = append(params, river.InsertManyParams{Args: rawArgs{kind: s.Kind, args: s.Args}})
			}
		}
		if len(params) > 0 {
			if err := q.client.insertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("queue jobs: %w", err)
			}
		}
		if err := q.store.MarkDispatched(ctx, tx, ids); err != nil {
			return err
		}
		n = len(ds)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("dispatch: %w", err)
	}
	return n, nil
}

// dispatchBatch bounds one dispatch transaction. River's SQLite driver
// prepares each insert, so a dispatch holds the one connection for about
// 60µs a job; small batches keep intake's wait for it short.
const dispatchBatch = 16

// During a burst, deliveries queue up behind the intake commit and batches
// grow. Dispatch and jobs then step aside for up to maxDispatchLag, so that
// acknowledgements, which GitHub waits for, get the CPU first. At ordinary
// rates batches hold one or two deliveries and nothing waits.
const (
	pressureBatch  = 4
	maxDispatchLag = 250 * time.Millisecond
)

// intakePressed reports whether a batch of pressureBatch or more deliveries
// was written in the last few milliseconds.
func (q *Queue) intakePressed() bool { return q.pressedAt(time.Now()) }

func (q *Queue) pressedAt(now time.Time) bool {
	return now.Sub(time.Unix(0, q.lastPressure.Load())) < 5*time.Millisecond
}
