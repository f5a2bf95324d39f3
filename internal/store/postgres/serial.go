package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Serial holds PostgreSQL advisory locks on keys, so that work on one key
// (an evaluation of one pull request) runs on one replica at a time. A
// lock is held by a session of its own pool, for as long as the work
// takes: a replica that dies drops its locks with its sessions.
type Serial struct{ pool *pgxpool.Pool }

// Serial is the store's key lock.
func (s *DB) Serial() *Serial { return &Serial{pool: s.locks} }

// serialSpace is the first key of the two-int4 advisory lock space the
// keys' locks use ("cg"); the ledger's and the migrations' single-bigint
// locks are a space apart.
const serialSpace = 0x6367

// Lock waits for key's lock, until ctx ends. Two keys whose hashes collide
// share a lock, which only serialises them.
func (l *Serial) Lock(ctx context.Context, key string) (unlock func(), err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1::int4, hashtext($2::text))`, serialSpace, key); err != nil {
		// The wait may have ended as the lock was granted: end the
		// session, which drops whatever it holds.
		conn.Hijack().Close(context.Background())
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1::int4, hashtext($2::text))`, serialSpace, key); err != nil {
			conn.Hijack().Close(ctx)
			return
		}
		conn.Release()
	}, nil
}
