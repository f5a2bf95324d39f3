package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Delivery is the store-wide row.
type Delivery = store.Delivery

const insertDelivery = `
	INSERT INTO deliveries (id, source, event, action, installation_id, repo, received_at, jobs, job_args)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

// InsertDeliveries records deliveries in tx. inserted[i] is false, and
// nothing is written for it, when ds[i].ID was recorded before.
func (s *DB) InsertDeliveries(ctx context.Context, jtx jobs.Tx, ds []Delivery) ([]bool, error) {
	tx := sqlTx(jtx)
	stmt, err := tx.PrepareContext(ctx, insertDelivery)
	if err != nil {
		return nil, fmt.Errorf("prepare insert delivery: %w", err)
	}
	defer stmt.Close()
	inserted := make([]bool, len(ds))
	for i, d := range ds {
		res, err := stmt.ExecContext(ctx, d.ID, d.Source, d.Event, d.Action, d.InstallationID, d.Repo,
			ts(d.ReceivedAt), d.Jobs, string(d.JobArgs))
		if err != nil {
			return nil, fmt.Errorf("insert delivery %s: %w", d.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("insert delivery %s: %w", d.ID, err)
		}
		inserted[i] = n == 1
	}
	return inserted, nil
}

// Undispatched returns up to limit deliveries whose jobs are not yet in the
// queue, oldest first.
func (s *DB) Undispatched(ctx context.Context, jtx jobs.Tx, limit int) ([]Delivery, error) {
	tx := sqlTx(jtx)
	rows, err := tx.QueryContext(ctx, `
		SELECT id, job_args FROM deliveries WHERE dispatched = 0 ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list undispatched deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var args string
		if err := rows.Scan(&d.ID, &args); err != nil {
			return nil, fmt.Errorf("list undispatched deliveries: %w", err)
		}
		d.JobArgs = json.RawMessage(args)
		out = append(out, d)
	}
	return out, rows.Err()
}

// MarkDispatched records that the deliveries' jobs are in the queue.
func (s *DB) MarkDispatched(ctx context.Context, jtx jobs.Tx, ids []string) error {
	tx := sqlTx(jtx)
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `UPDATE deliveries SET dispatched = 1, job_args = '[]' WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("mark deliveries dispatched: %w", err)
	}
	return nil
}

// MarkProcessed counts one completed job of a delivery, in the job's own
// transaction.
func (s *DB) MarkProcessed(ctx context.Context, jtx jobs.Tx, deliveryID string, now time.Time) error {
	tx := sqlTx(jtx)
	_, err := tx.ExecContext(ctx,
		`UPDATE deliveries SET processed = processed + 1, processed_at = ? WHERE id = ?`,
		ts(now), deliveryID)
	if err != nil {
		return fmt.Errorf("mark delivery %s processed: %w", deliveryID, err)
	}
	return nil
}

// Deliveries lists recorded deliveries, oldest first.
func (s *DB) Deliveries(ctx context.Context) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, source, event, action, installation_id, repo, received_at, jobs, processed
		FROM deliveries ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var received string
		if err := rows.Scan(&d.ID, &d.Source, &d.Event, &d.Action, &d.InstallationID, &d.Repo, &received, &d.Jobs, &d.Processed); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.ReceivedAt, _ = time.Parse(time.RFC3339Nano, received)
		out = append(out, d)
	}
	return out, rows.Err()
}
