// Package postgres is the scale-out store: the intake records, the
// inventory, the pull request index and River's job tables in one
// PostgreSQL database that several replicas share. pgx v5 talks to it;
// a job's effects, its delivery's count and its completion commit in one
// pgx transaction.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/changegate/changegate/internal/jobs"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the PostgreSQL store.
type DB struct {
	pool  *pgxpool.Pool
	locks *pgxpool.Pool // sessions that hold Serial's locks
}

// Options tune Open.
type Options struct {
	// MaxConns bounds the pool (default: pgx's, the CPUs and at least 4).
	MaxConns int32
	Logger   *slog.Logger
	// ReadOnly opens the database for reading only, as an auditor's
	// commands do: every transaction is read-only, nothing is migrated,
	// and a schema other than this build's is refused. A role with
	// SELECT alone suffices.
	ReadOnly bool
	// LockConns bounds the sessions that hold Serial's locks, one per key
	// held or waited for (default 16).
	LockConns int32
}

// migrationLock is the advisory lock key replicas take to migrate one at a
// time: "changegate" in ASCII, as an int64.
const migrationLock = 0x6368616e67656761

// Open connects to the database at connURL, checks that it answers, and
// migrates the schema, River's included, under an advisory lock, so that
// replicas starting together do not race. Errors name the URL with its
// password masked.
func Open(ctx context.Context, connURL string, o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(connURL)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %s", Redact(connURL), scrub(err, connURL))
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.ReadOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %s", Redact(connURL), scrub(err, connURL))
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %s", Redact(connURL), scrub(err, connURL))
	}
	lcfg := cfg.Copy()
	lcfg.MaxConns = cmp.Or(o.LockConns, 16)
	locks, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %s", Redact(connURL), scrub(err, connURL))
	}
	s := &DB{pool: pool, locks: locks}
	if o.ReadOnly {
		err = s.checkSchema(ctx)
	} else {
		err = s.migrate(ctx, o.Logger)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkSchema refuses a database a server has not migrated to this
// build's schema: a read-only opener cannot migrate it, and would
// misread an older one.
func (s *DB) checkSchema(ctx context.Context) error {
	want, err := latestMigration()
	if err != nil {
		return err
	}
	var have int64
	err = s.pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&have)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return errors.New("the database holds no changegate schema: start a changegate server on it first")
	}
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if have != want {
		return fmt.Errorf("the database's schema is at version %d, this changegate reads version %d: use the changegate version the servers run", have, want)
	}
	return nil
}

// latestMigration is the version of the last embedded migration.
func latestMigration() (int64, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		return 0, fmt.Errorf("embedded migrations: %v", err)
	}
	var v int64
	for _, n := range names {
		var n64 int64
		if _, err := fmt.Sscanf(path.Base(n), "%d_", &n64); err != nil {
			return 0, fmt.Errorf("migration %s: %w", n, err)
		}
		v = max(v, n64)
	}
	return v, nil
}

// CheckURL reports whether connURL parses as a connection string, without
// connecting; the error masks the password.
func CheckURL(connURL string) error {
	if _, err := pgxpool.ParseConfig(connURL); err != nil {
		return fmt.Errorf("database URL %s: %s", Redact(connURL), scrub(err, connURL))
	}
	return nil
}

// Redact is connURL with its password, if any, masked.
func Redact(connURL string) string {
	u, err := url.Parse(connURL)
	if err != nil || u.User == nil {
		if strings.Contains(connURL, "@") {
			return "(a URL that does not parse; not shown, as it may hold a password)"
		}
		return connURL
	}
	return u.Redacted()
}

// scrub is err's text with the URL's password, should the driver quote it,
// masked.
func scrub(err error, connURL string) string {
	text := err.Error()
	if u, perr := url.Parse(connURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			text = strings.ReplaceAll(text, pw, "xxxxx")
		}
	}
	return text
}

func (s *DB) migrate(ctx context.Context, log *slog.Logger) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))

	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(s.pool), &rivermigrate.Config{Logger: log})
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	return nil
}

// Pool is the connection pool, for River's driver.
func (s *DB) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pools.
func (s *DB) Close() error {
	s.locks.Close()
	s.pool.Close()
	return nil
}

// InTx runs fn in a transaction, committed when fn returns nil. PostgreSQL
// syncs every commit, so this is also the acknowledging write.
func (s *DB) InTx(ctx context.Context, fn func(tx jobs.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(tx) })
}

// WorkTx is InTx: PostgreSQL has no cheaper commit to offer a job.
func (s *DB) WorkTx(ctx context.Context, fn func(tx jobs.Tx) error) error { return s.InTx(ctx, fn) }

// RescueOrphanedJobs does nothing: replicas share the database, so a job
// running at start may be another replica's. A job a dead replica left
// running is River's rescuer's (after the job timeout).
func (s *DB) RescueOrphanedJobs(context.Context) (int64, error) { return 0, nil }

// Heartbeat records that the replica whose River client is clientID is
// alive.
func (s *DB) Heartbeat(ctx context.Context, clientID string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO replicas (id, seen_at) VALUES ($1, now())
		ON CONFLICT (id) DO UPDATE SET seen_at = now()`, clientID)
	return err
}

// Retire forgets the replica whose River client is clientID: it stopped
// cleanly, so it runs no job and holds no lock.
func (s *DB) Retire(ctx context.Context, clientID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, clientID)
	return err
}

// LiveReplicas names the replicas seen alive within the last within.
func (s *DB) LiveReplicas(ctx context.Context, within time.Duration) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM replicas WHERE seen_at > now() - $1::interval ORDER BY id`, within)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// RescueAbandonedJobs makes the jobs left running by replicas other than
// self not seen for dead available again, and forgets replicas long gone.
// Its own jobs a replica never rescues: after an outage of the database,
// its heartbeat may be stale while its workers still run them. A job's last
// attempt names the client that runs it.
func (s *DB) RescueAbandonedJobs(ctx context.Context, self string, dead time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE state = 'running' AND cardinality(attempted_by) > 0 AND attempted_by[cardinality(attempted_by)] <> $2
			AND NOT EXISTS (SELECT 1 FROM replicas r
				WHERE r.id = attempted_by[cardinality(attempted_by)] AND r.seen_at > now() - $1::interval)`, dead, self)
	if err != nil {
		return 0, err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM replicas WHERE seen_at < now() - interval '1 day'`); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// RescueOwnJobs makes the jobs the database shows self running, that
// started more than after ago and that self's workers do not run (the
// running ids), available again: River could not record their end while
// the database was down. A job fetched moments ago and not yet started is
// younger than after, and left alone.
func (s *DB) RescueOwnJobs(ctx context.Context, self string, running []int64, after time.Duration) (int64, error) {
	if running == nil {
		running = []int64{}
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE state = 'running' AND cardinality(attempted_by) > 0 AND attempted_by[cardinality(attempted_by)] = $1
			AND attempted_at < now() - $2::interval AND NOT (id = ANY($3))`, self, after, running)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// JobStates counts River's jobs by state.
func (s *DB) JobStates(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state::text, COUNT(*) FROM river_job GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[state] = n
	}
	return out, rows.Err()
}

// WaitingJobs counts the jobs that are due and not yet running, in River's
// queue and in deliveries not yet dispatched, and when the oldest became
// due.
func (s *DB) WaitingJobs(ctx context.Context) (int, time.Time, error) {
	var queued, recorded int
	var oldestQueued, oldestRecorded *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT COUNT(*), MIN(scheduled_at) FROM river_job
		WHERE state IN ('available', 'retryable', 'scheduled') AND scheduled_at <= now()`).Scan(&queued, &oldestQueued)
	if err != nil {
		return 0, time.Time{}, err
	}
	err = s.pool.QueryRow(ctx, `
		SELECT COALESCE(SUM(jobs), 0), MIN(received_at) FROM deliveries WHERE NOT dispatched`).Scan(&recorded, &oldestRecorded)
	if err != nil {
		return 0, time.Time{}, err
	}
	var oldest time.Time
	for _, t := range []*time.Time{oldestQueued, oldestRecorded} {
		if t != nil && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t.UTC()
		}
	}
	return queued + recorded, oldest, nil
}

// pgTx is the pgx transaction behind a jobs.Tx, which this store or the
// queue on it began: anything else is a wiring mistake.
func pgTx(tx jobs.Tx) pgx.Tx { return tx.(pgx.Tx) }

// CheckWritable proves the database takes a write, for /readyz.
func (s *DB) CheckWritable(ctx context.Context, now time.Time) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO health (id, checked_at) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at`, now)
	if err != nil {
		return fmt.Errorf("database not writable: %w", err)
	}
	return nil
}

// errNoRows reports whether err is pgx's "no rows".
func errNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
