// Package sqlite is the embedded store: one SQLite database (modernc, pure
// Go) in WAL mode under the data dir. It holds the intake records, the
// installation inventory and River's job tables, so a delivery and its jobs
// commit in one transaction.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	msqlite "modernc.org/sqlite"

	"github.com/changegate/changegate/internal/jobs"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside the data dir.
const FileName = "changegate.db"

// DB is the embedded store.
type DB struct {
	db      *sql.DB
	lock    *os.File
	ackSync string // synchronous level of DurableTx
}

// Options tune Open.
type Options struct {
	// Synchronous is SQLite's synchronous level for DurableTx, the writes
	// that acknowledge a delivery: FULL (default) survives power loss;
	// NORMAL survives a process crash only.
	//
	// Other writes use NORMAL. In WAL mode they survive a process crash, and
	// the next DurableTx commit syncs them to disk too, because the WAL is
	// written in order. A power cut can lose the last job completions, but
	// each completion commits with the job's effects, so the job simply runs
	// again. This makes job processing 2.5 times faster (BenchmarkProcess).
	Synchronous string
	Logger      *slog.Logger
}

// Open opens (creating if needed) the store in dataDir, takes an exclusive
// lock on it so that a second server cannot share the file, and migrates the
// schema, River's included.
func Open(ctx context.Context, dataDir string, o Options) (*DB, error) {
	switch o.Synchronous {
	case "":
		o.Synchronous = "FULL"
	case "FULL", "NORMAL", "EXTRA":
	default:
		return nil, fmt.Errorf("synchronous %q: want FULL, NORMAL or EXTRA", o.Synchronous)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockDir(dataDir)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	path := filepath.Join(dataDir, FileName)
	// SQLite gives its WAL and shared-memory files the database's mode, so
	// creating the file first keeps all three private.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("create database: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?" + q.Encode()
	db := sql.OpenDB(connector{dsn: dsn, drv: &msqlite.Driver{}})
	// SQLite has one writer. River's driver documentation recommends a single
	// connection; everything, intake included, takes turns on it.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &DB{db: db, lock: lock, ackSync: o.Synchronous}
	if err := s.migrate(ctx, o.Logger); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ErrInUse is Open's error when a running server holds the data dir.
var ErrInUse = errors.New("in use by another changegate process")

// OpenQueueClient opens the store of a data dir that a running server
// holds, to queue jobs for it: no lock, no migration.
func OpenQueueClient(dataDir string) (*sql.DB, error) {
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
}

// Wrap gives the store's queries over a connection from OpenQueueClient or
// OpenReadOnly; Close leaves db open.
func Wrap(db *sql.DB) *DB { return &DB{db: db, ackSync: "FULL"} }

func lockDir(dataDir string) (*os.File, error) {
	path := filepath.Join(dataDir, "changegate.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s: %w (%v)", dataDir, ErrInUse, err)
	}
	return f, nil
}

func (s *DB) migrate(ctx context.Context, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// River announces each migration at INFO, on every start: routine,
	// so it is logged at DEBUG.
	m, err := rivermigrate.New(riversqlite.New(s.db), &rivermigrate.Config{Logger: slog.New(debugOnly{log.Handler()})})
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	return nil
}

// sqlTx is the SQLite transaction behind a jobs.Tx, which this store or
// the queue on it began: anything else is a wiring mistake.
func sqlTx(tx jobs.Tx) *sql.Tx { return tx.(*sql.Tx) }

// DurableTx runs fn in a transaction whose commit is synced at the
// configured level (FULL by default) before it returns. The level is a
// setting of the connection, raised before the transaction and lowered
// after it while the connection is held, so no other write can run at the
// raised level or commit this one at the lowered level.
func (s *DB) DurableTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	// Holding the pool's one connection for the whole sequence keeps any
	// other statement from running between the pragma and the commit.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	if s.ackSync != "NORMAL" {
		// SQLite refuses to change the level inside a transaction.
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = "+s.ackSync); err != nil {
			return fmt.Errorf("set synchronous: %w", err)
		}
		defer func() {
			if _, e := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = NORMAL"); e != nil {
				err = errors.Join(err, fmt.Errorf("reset synchronous: %w", e))
			}
		}()
	}
	return runTx(ctx, conn.BeginTx, fn)
}

// runTx begins a transaction with begin, runs fn in it, and commits when
// fn returns nil.
func runTx(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), fn func(tx *sql.Tx) error) error {
	tx, err := begin(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// InTx is DurableTx for code that sees the transaction as a jobs.Tx, as
// the PostgreSQL store's InTx does.
func (s *DB) InTx(ctx context.Context, fn func(tx jobs.Tx) error) error {
	return s.DurableTx(ctx, func(tx *sql.Tx) error { return fn(tx) })
}

// WorkTx runs fn in a transaction at the store's ordinary synchronous
// level (NORMAL): a job's commit or a dispatch, which a power cut can undo
// without losing anything acknowledged (see Options.Synchronous).
func (s *DB) WorkTx(ctx context.Context, fn func(tx jobs.Tx) error) error {
	return runTx(ctx, s.db.BeginTx, func(tx *sql.Tx) error { return fn(tx) })
}

// Heartbeat does nothing: one process holds the embedded store.
func (s *DB) Heartbeat(context.Context, string) error { return nil }

// Retire does nothing: one process holds the embedded store.
func (s *DB) Retire(context.Context, string) error { return nil }

// RescueAbandonedJobs does nothing: one process holds the embedded store,
// and RescueOrphanedJobs rescues at start what a crash left.
func (s *DB) RescueAbandonedJobs(context.Context, string, time.Duration) (int64, error) {
	return 0, nil
}

// RescueOwnJobs does nothing: the embedded store is not reached over a
// network, so no outage leaves a job's end unrecorded while the process
// lives.
func (s *DB) RescueOwnJobs(context.Context, string, []int64, time.Duration) (int64, error) {
	return 0, nil
}

// JobStates counts River's jobs by state.
func (s *DB) JobStates(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM river_job GROUP BY state`)
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
	var oldestQueued, oldestRecorded sql.NullString
	err := s.db.QueryRowContext(ctx, `
		SELECT COUNT(*), MIN(scheduled_at) FROM river_job
		WHERE state IN ('available', 'retryable', 'scheduled') AND scheduled_at <= datetime('now', 'subsec')`).Scan(&queued, &oldestQueued)
	if err != nil {
		return 0, time.Time{}, err
	}
	err = s.db.QueryRowContext(ctx, `
		SELECT COALESCE(SUM(jobs), 0), MIN(received_at) FROM deliveries WHERE dispatched = 0`).Scan(&recorded, &oldestRecorded)
	if err != nil {
		return 0, time.Time{}, err
	}
	var oldest time.Time
	for _, t := range []struct {
		s      sql.NullString
		layout string
	}{{oldestQueued, riverTimeLayout}, {oldestRecorded, time.RFC3339Nano}} {
		if v, err := time.Parse(t.layout, t.s.String); t.s.Valid && err == nil && (oldest.IsZero() || v.Before(oldest)) {
			oldest = v
		}
	}
	return queued + recorded, oldest, nil
}

// riverTimeLayout is how River's SQLite driver writes times (UTC).
const riverTimeLayout = "2006-01-02 15:04:05.999999999"

// SQL returns the database handle, for River and transactions.
func (s *DB) SQL() *sql.DB { return s.db }

// Close closes the database and releases the data dir lock.
func (s *DB) Close() error {
	err := s.db.Close()
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	return err
}

// RescueOrphanedJobs makes jobs left running by a crashed process available
// again. It is only safe while no worker runs, which the data dir lock and
// calling it before the queue starts guarantee: with one process per
// database, any job still marked running belongs to a process that died.
// River's own rescuer covers jobs stuck in a live process.
func (s *DB) RescueOrphanedJobs(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx,
		`UPDATE river_job SET state = 'available', scheduled_at = datetime('now', 'subsec') WHERE state = 'running'`)
	if err != nil {
		return 0, fmt.Errorf("rescue orphaned jobs: %w", err)
	}
	return res.RowsAffected()
}

// SwapServerState sets key to value and returns what it was ("" if unset).
func (s *DB) SwapServerState(ctx context.Context, key, value string) (string, error) {
	var old string
	err := s.DurableTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM server_state WHERE key = ?`, key).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO server_state (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("server state %s: %w", key, err)
	}
	return old, nil
}

// WakeScheduledJobs makes the jobs of the given kinds that wait for a later
// time available now: those snoozed for App credentials, when a start
// brings them (a snooze leaves no error to tell them by). A job that was
// backing off retries early, which costs one attempt at most. Call it
// before the queue starts.
func (s *DB) WakeScheduledJobs(ctx context.Context, kinds []string) (int64, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	args := make([]any, len(kinds))
	for i, k := range kinds {
		args[i] = k
	}
	res, err := s.db.ExecContext(ctx, `UPDATE river_job SET state = 'available', scheduled_at = datetime('now', 'subsec')
		WHERE state = 'scheduled' AND kind IN (?`+strings.Repeat(", ?", len(kinds)-1)+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("wake waiting jobs: %w", err)
	}
	return res.RowsAffected()
}

// CheckWritable proves that the store takes a durable write.
func (s *DB) CheckWritable(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at`,
		now.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("store not writable: %w", err)
	}
	return nil
}

// debugOnly logs what its handler is given at DEBUG, whatever its level
// was, warnings and errors excepted.
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demote(l))
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(as []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(as)} }
func (d debugOnly) WithGroup(name string) slog.Handler    { return debugOnly{d.h.WithGroup(name)} }

func demote(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}
