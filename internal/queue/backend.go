package queue

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Store is a store's side of the queue: its intake table, its view of
// River's tables, and its transactions. The embedded SQLite store and the
// PostgreSQL one both provide it; the queue knows neither.
type Store interface {
	// InTx runs fn in a transaction whose commit is durable before InTx
	// returns: intake acknowledges after it.
	InTx(ctx context.Context, fn func(tx jobs.Tx) error) error
	// WorkTx runs fn in a transaction for a job's commit or a dispatch.
	WorkTx(ctx context.Context, fn func(tx jobs.Tx) error) error

	InsertDeliveries(ctx context.Context, tx jobs.Tx, ds []store.Delivery) ([]bool, error)
	Undispatched(ctx context.Context, tx jobs.Tx, limit int) ([]store.Delivery, error)
	MarkDispatched(ctx context.Context, tx jobs.Tx, ids []string) error
	MarkProcessed(ctx context.Context, tx jobs.Tx, deliveryID string, now time.Time) error

	// RescueOrphanedJobs makes jobs a crashed process left running
	// available again, at start; a store that several processes share
	// leaves them to River's rescuer.
	RescueOrphanedJobs(ctx context.Context) (int64, error)
	// Heartbeat says the process whose River client is clientID is alive.
	Heartbeat(ctx context.Context, clientID string) error
	// Retire says the process whose River client is clientID stopped
	// cleanly: it runs nothing, and is not alive.
	Retire(ctx context.Context, clientID string) error
	// RescueAbandonedJobs makes the jobs left running by clients other than
	// self not seen alive for dead available again.
	RescueAbandonedJobs(ctx context.Context, self string, dead time.Duration) (int64, error)
	// RescueOwnJobs makes the jobs the database shows self running, that
	// started more than after ago and are not among running (what self's
	// workers run), available again: a job whose end River could not
	// record because the database was down.
	RescueOwnJobs(ctx context.Context, self string, running []int64, after time.Duration) (int64, error)
	// JobStates counts River's jobs by state.
	JobStates(ctx context.Context) (map[string]int, error)
	// WaitingJobs counts the jobs that are due and not yet running, in
	// River's queue and in deliveries not yet dispatched, and when the
	// oldest of them became due (zero if none).
	WaitingJobs(ctx context.Context) (n int, oldest time.Time, err error)
}

// Backend is a store with River's driver for its database.
type Backend struct {
	store     Store
	newClient func(cfg *river.Config) (riverClient, error)
}

// NewBackend pairs a store with the River driver on its database:
// riversqlite over the SQLite store's connection, riverpgxv5 over the
// PostgreSQL store's pool.
func NewBackend[TDriver riverdriver.Driver[TTx], TTx any](driver TDriver, s Store) *Backend {
	return &Backend{store: s, newClient: func(cfg *river.Config) (riverClient, error) {
		c, err := river.NewClient[TTx](driver, cfg)
		if err != nil {
			return nil, err
		}
		return typedClient[TDriver, TTx]{c}, nil
	}}
}

// riverClient is what the queue uses of River's client, with the
// transaction as a jobs.Tx.
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	insertTx(ctx context.Context, tx jobs.Tx, args river.JobArgs, opts *river.InsertOpts) error
	insertManyTx(ctx context.Context, tx jobs.Tx, params []river.InsertManyParams) error
	completeTx(ctx context.Context, tx jobs.Tx, job *rivertype.JobRow) error
}

// typedClient is River's client for one driver.
type typedClient[TDriver riverdriver.Driver[TTx], TTx any] struct {
	*river.Client[TTx]
}

func (c typedClient[TDriver, TTx]) insertTx(ctx context.Context, tx jobs.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := c.InsertTx(ctx, tx.(TTx), args, opts)
	return err
}

func (c typedClient[TDriver, TTx]) insertManyTx(ctx context.Context, tx jobs.Tx, params []river.InsertManyParams) error {
	_, err := c.InsertManyTx(ctx, tx.(TTx), params)
	return err
}

// completeTx completes a running job in tx. River reads only the row; the
// arguments it decodes back are not used.
func (c typedClient[TDriver, TTx]) completeTx(ctx context.Context, tx jobs.Tx, job *rivertype.JobRow) error {
	_, err := river.JobCompleteTx[TDriver](ctx, tx.(TTx), &river.Job[rawArgs]{JobRow: job})
	return err
}
