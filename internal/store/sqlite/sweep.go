package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Redelivery is the store-wide row.
type Redelivery = store.Redelivery

// KnownDeliveries says which of ids are acknowledged deliveries.
func (s *DB) KnownDeliveries(ctx context.Context, ids []string) (map[string]bool, error) {
	return s.present(ctx, "SELECT id FROM deliveries WHERE id IN (%s)", nil, ids)
}

// Redelivered says which of guids changegate asked GitHub to redeliver.
func (s *DB) Redelivered(ctx context.Context, guids []string) (map[string]bool, error) {
	return s.present(ctx, "SELECT guid FROM redeliveries WHERE guid IN (%s)", nil, guids)
}

// present runs a membership query in chunks of SQLite's parameter limit;
// args come before the keys.
func (s *DB) present(ctx context.Context, query string, args []any, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		chunk := keys[:n]
		keys = keys[n:]
		all := append([]any(nil), args...)
		for _, k := range chunk {
			all = append(all, k)
		}
		rows, err := s.db.QueryContext(ctx, fmt.Sprintf(query, strings.TrimSuffix(strings.Repeat("?,", n), ",")), all...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SweepCursor is the newest delivery id the last finished sweep saw; 0
// before the first.
func (s *DB) SweepCursor(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT value FROM sweep_state WHERE name = 'cursor'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// RecordSweep keeps, in tx, the redeliveries a sweep asked for and, when
// it finished, its cursor (0 keeps the old one).
func (s *DB) RecordSweep(ctx context.Context, jtx jobs.Tx, cursor int64, asked []Redelivery, now time.Time) error {
	tx := sqlTx(jtx)
	for _, r := range asked {
		if _, err := tx.ExecContext(ctx, `INSERT INTO redeliveries (guid, delivery_id, event, requested_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (guid) DO NOTHING`, r.GUID, r.DeliveryID, r.Event, now.UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("record redelivery: %w", err)
		}
	}
	if cursor == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO sweep_state (name, value) VALUES ('cursor', ?)
		ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, cursor)
	return err
}
