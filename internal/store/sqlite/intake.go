package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Delivery is the row kept for an acknowledged delivery.
type Delivery struct {
	ID             string
	Source         string
	Event          string
	Action         string
	InstallationID int64
	Repo           string
	ReceivedAt     time.Time
	Jobs           int
	Processed      int
}

// InsertDelivery records a delivery in tx. It reports false, and writes
// nothing, when the ID was recorded before.
func (s *DB) InsertDelivery(ctx context.Context, tx *sql.Tx, d Delivery) (bool, error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO deliveries (id, source, event, action, installation_id, repo, received_at, jobs)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Source, d.Event, d.Action, d.InstallationID, d.Repo,
		ts(d.ReceivedAt), d.Jobs)
	if err != nil {
		return false, fmt.Errorf("insert delivery %s: %w", d.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert delivery %s: %w", d.ID, err)
	}
	return n == 1, nil
}

// MarkProcessed counts one completed job of a delivery, in the job's own
// transaction.
func (s *DB) MarkProcessed(ctx context.Context, tx *sql.Tx, deliveryID string, now time.Time) error {
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
		FROM deliveries ORDER BY received_at, id`)
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
