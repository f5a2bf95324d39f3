package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// storage is the database the server runs on: the embedded SQLite store
// in the data dir, or PostgreSQL, which several replicas share. Both pass
// the same conformance suites (internal/store/storetest).
type storage interface {
	queue.Store
	store.Deliveries
	store.Inventory
	store.PullRequests
	store.Completeness
	CheckWritable(ctx context.Context, now time.Time) error
	Close() error
	LaterCommitJobs(ctx context.Context, repo, sha string, queuedAt time.Time) ([]jobs.EvaluateSHA, error)
	HasCheckRun(ctx context.Context, repo, sha string) (bool, error)
	WakeScheduledJobs(ctx context.Context, kinds []string) (int64, error)

	// ledgerIndex is the evidence index the ledger writes.
	ledgerIndex() ledgerIndex
	// auditIndex is the index the auditor's queries read.
	auditIndex() audit.Index
	// backend is River on this database.
	backend() *queue.Backend
	// writers is the ledger's lock across replicas; nil when one process
	// holds the store.
	writers() ledger.Writers
	// serial serialises a pull request's evaluations across replicas; nil
	// when one process holds the store.
	serial() assess.Serializer
	// describe names the store for logs.
	describe() string
	// clientID names this process among the replicas sharing the store
	// (River's client id, and its heartbeat); "" when it holds the store
	// alone.
	clientID() string
}

// ledgerIndex is what the server uses of the evidence index.
type ledgerIndex interface {
	ledger.Index
	IDsFor(ctx context.Context, repo, sha string) ([]string, error)
	TicketsOf(ctx context.Context, ids []string) ([]string, error)
}

// sqliteStorage is the embedded store.
type sqliteStorage struct{ *sqlite.DB }

func (s sqliteStorage) ledgerIndex() ledgerIndex { return s.Ledger() }
func (s sqliteStorage) auditIndex() audit.Index  { return s.LedgerReader() }
func (s sqliteStorage) backend() *queue.Backend {
	return queue.NewBackend(riversqlite.New(s.SQL()), s.DB)
}
func (s sqliteStorage) writers() ledger.Writers   { return nil }
func (s sqliteStorage) serial() assess.Serializer { return nil }
func (s sqliteStorage) describe() string          { return "sqlite" }
func (s sqliteStorage) clientID() string          { return "" }

// postgresStorage is the scale-out store.
type postgresStorage struct {
	*postgres.DB
	id string
}

func (s postgresStorage) ledgerIndex() ledgerIndex { return s.Ledger() }
func (s postgresStorage) auditIndex() audit.Index  { return s.LedgerReader() }
func (s postgresStorage) backend() *queue.Backend {
	return queue.NewBackend(riverpgxv5.New(s.Pool()), s.DB)
}
func (s postgresStorage) writers() ledger.Writers   { return s.LedgerWriters() }
func (s postgresStorage) serial() assess.Serializer { return s.Serial() }
func (s postgresStorage) describe() string          { return "postgres" }
func (s postgresStorage) clientID() string          { return s.id }

// openStorage opens the store cfg names: PostgreSQL when
// CHANGEGATE_DATABASE_URL is set, else SQLite in the data dir.
func openStorage(ctx context.Context, cfg config.Config, log *slog.Logger) (storage, error) {
	if cfg.DatabaseURL == "" {
		s, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Logger: log.With("component", "store")})
		if err != nil {
			return nil, err
		}
		return sqliteStorage{s}, nil
	}
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("CHANGEGATE_DATABASE_URL: %w", err)
	}
	return postgresStorage{DB: s, id: replicaID()}, nil
}

// replicaID names this process among the replicas: its host (the pod's
// name on Kubernetes), its pid and a random suffix, so that a restarted
// replica is a new one and the jobs of the one it replaces are rescued.
func replicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%x", cmp.Or(host, "changegate"), os.Getpid(), b)
}

var (
	_ storage = sqliteStorage{}
	_ storage = postgresStorage{}
)
