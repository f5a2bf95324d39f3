package main

import (
	"context"
	"fmt"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// readIndex is the ledger index as the auditor's commands read it, opened
// read-only: a data dir's, beside a running server or not, or the
// PostgreSQL database the replicas share (--database-url), which a role
// that may only SELECT can read.
type readIndex struct {
	reader interface {
		audit.Index
		ExceptionOf(ctx context.Context, id string) (int64, string, bool, error)
	}
	rowsFrom func(from uint64) ledger.Rows
	coverage func(ctx context.Context) ([]store.ControlState, error)
	close    func()
}

// openReadIndex opens the data dir's index, or PostgreSQL's when
// databaseURL is given.
func openReadIndex(ctx context.Context, dataDir, databaseURL string) (*readIndex, error) {
	if databaseURL != "" {
		if err := postgres.CheckURL(databaseURL); err != nil {
			return nil, usage("--database-url: %v", err)
		}
		pg, err := postgres.Open(ctx, databaseURL, postgres.Options{MaxConns: 4, ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("--database-url: %w", err)
		}
		return &readIndex{
			reader:   pg.LedgerReader(),
			rowsFrom: func(from uint64) ledger.Rows { return pg.Ledger().RowsFrom(from) },
			coverage: pg.Coverage,
			close:    func() { pg.Close() },
		}, nil
	}
	db, err := sqlite.OpenReadOnly(dataDir)
	if err != nil {
		return nil, err
	}
	return &readIndex{
		reader:   sqlite.NewLedgerReader(db),
		rowsFrom: func(from uint64) ledger.Rows { return sqlite.LedgerRowsFrom(db, from) },
		coverage: func(ctx context.Context) ([]store.ControlState, error) { return sqlite.Coverage(ctx, db) },
		close:    func() { db.Close() },
	}, nil
}
