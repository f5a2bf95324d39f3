package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// InsertDeliveries records deliveries in tx, in one round trip. inserted[i]
// is false, and nothing is written for it, when ds[i].ID was recorded
// before.
//
// Rows are inserted in id order, so that two replicas' batches holding the
// same redelivered ids take their locks in the same order and wait for
// each other instead of deadlocking.
func (s *DB) InsertDeliveries(ctx context.Context, jtx jobs.Tx, ds []store.Delivery) ([]bool, error) {
	tx := pgTx(jtx)
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(ds[a].ID, ds[b].ID) })
	b := &pgx.Batch{}
	for _, i := range order {
		d := ds[i]
		args := d.JobArgs
		if len(args) == 0 {
			args = json.RawMessage("[]")
		}
		b.Queue(`
			INSERT INTO deliveries (id, source, event, action, installation_id, repo, received_at, jobs, job_args)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO NOTHING`,
			d.ID, d.Source, d.Event, d.Action, d.InstallationID, d.Repo, d.ReceivedAt.UTC(), d.Jobs, string(args))
	}
	res := tx.SendBatch(ctx, b)
	inserted := make([]bool, len(ds))
	for _, i := range order {
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return nil, fmt.Errorf("insert delivery %s: %w", ds[i].ID, err)
		}
		inserted[i] = tag.RowsAffected() == 1
	}
	if err := res.Close(); err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	return inserted, nil
}

// Undispatched returns up to limit deliveries whose jobs are not yet in the
// queue, oldest first. Rows another replica's dispatcher holds are skipped,
// so dispatchers on several replicas never move the same delivery twice.
func (s *DB) Undispatched(ctx context.Context, jtx jobs.Tx, limit int) ([]store.Delivery, error) {
	rows, err := pgTx(jtx).Query(ctx, `
		SELECT id, job_args FROM deliveries WHERE NOT dispatched ORDER BY seq LIMIT $1
		FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return nil, fmt.Errorf("list undispatched deliveries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Delivery, error) {
		var d store.Delivery
		var args []byte
		if err := r.Scan(&d.ID, &args); err != nil {
			return d, fmt.Errorf("list undispatched deliveries: %w", err)
		}
		d.JobArgs = json.RawMessage(args)
		return d, nil
	})
}

// MarkDispatched records that the deliveries' jobs are in the queue.
func (s *DB) MarkDispatched(ctx context.Context, jtx jobs.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := pgTx(jtx).Exec(ctx, `UPDATE deliveries SET dispatched = true, job_args = '[]' WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("mark deliveries dispatched: %w", err)
	}
	return nil
}

// MarkProcessed counts one completed job of a delivery, in the job's own
// transaction.
func (s *DB) MarkProcessed(ctx context.Context, jtx jobs.Tx, deliveryID string, now time.Time) error {
	_, err := pgTx(jtx).Exec(ctx, `UPDATE deliveries SET processed = processed + 1, processed_at = $1 WHERE id = $2`, now.UTC(), deliveryID)
	if err != nil {
		return fmt.Errorf("mark delivery %s processed: %w", deliveryID, err)
	}
	return nil
}

// Deliveries lists recorded deliveries, oldest first.
func (s *DB) Deliveries(ctx context.Context) ([]store.Delivery, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, source, event, action, installation_id, repo, received_at, jobs, processed
		FROM deliveries ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Delivery, error) {
		var d store.Delivery
		err := r.Scan(&d.ID, &d.Source, &d.Event, &d.Action, &d.InstallationID, &d.Repo, &d.ReceivedAt, &d.Jobs, &d.Processed)
		d.ReceivedAt = d.ReceivedAt.UTC()
		return d, err
	})
}
