package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// walkOptions are the flags reconcile and backfill share.
type walkOptions struct {
	configPath string
	o          config.Overrides
	repo       string
	since      string
	wait       time.Duration
}

// walker is what differs between reconcile and backfill.
type walker struct {
	noun string // "reconciliation" or "backfill"
	// run walks one repository in this process.
	run func(ctx context.Context, a *assess.Assessor, r assess.InstalledRepo, since time.Time, log *slog.Logger, stderr io.Writer) (assess.ReconcileReport, error)
	// job is the queued run of one repository, and whether it waits
	// behind live work.
	job func(r assess.InstalledRepo, since time.Time) (river.JobArgs, bool)
	// verb names what run did to the commits it archived.
	verb string
}

// runWalk checks the flags, then walks in this process, or, when a server
// holds the data dir, queues the runs for it and waits for them. On
// PostgreSQL it walks in this process, beside the replicas.
func runWalk(ctx context.Context, wo walkOptions, since time.Time, w walker, getenv config.LookupEnv, stdout, stderr io.Writer) error {
	if wo.repo != "" && strings.Count(wo.repo, "/") != 1 {
		return usage("--repo %q: give owner/name", wo.repo)
	}
	cfg, err := config.Load(wo.configPath, getenv, wo.o)
	if err != nil {
		return usage("%v", err)
	}
	if err := cfg.UseStoredApp(); err != nil {
		return err
	}
	// The command prints its own summary; its log says only what went wrong.
	log := newLogger(stderr, quieter(cfg.LogLevel)).With("app_version", version)
	if cfg.DatabaseURL != "" {
		// Replicas share the database: this process walks beside them,
		// appending to the ledger under its writer lock as they do.
		shared, err := openStorage(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer shared.Close()
		return walkHere(ctx, cfg, shared, wo.repo, since, w, log, stdout, stderr)
	}
	store, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Logger: log.With("component", "store")})
	if errors.Is(err, sqlite.ErrInUse) {
		return queueWalk(ctx, cfg, wo, since, w, stdout)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	return walkHere(ctx, cfg, sqliteStorage{store}, wo.repo, since, w, log, stdout, stderr)
}

// parseSince reads --since as a UTC day.
func parseSince(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return t, usage("--since %q: give a date as YYYY-MM-DD", s)
	}
	return t, nil
}

// targets are the inventory's repositories, or the one asked for.
func targets(ctx context.Context, repos func(context.Context) ([]assess.InstalledRepo, error), only string) ([]assess.InstalledRepo, error) {
	all, err := repos(ctx)
	if err != nil {
		return nil, err
	}
	if only == "" {
		if len(all) == 0 {
			return nil, errors.New("the inventory holds no installed repository: start the server once, so that it lists the installations")
		}
		return all, nil
	}
	for _, r := range all {
		if strings.EqualFold(r.Repo, only) {
			return []assess.InstalledRepo{r}, nil
		}
	}
	return nil, usage("--repo %s: not a repository of the App's installations (as the inventory knows them)", only)
}

// walkHere walks in this process: no server holds the data dir.
func walkHere(ctx context.Context, cfg config.Config, store storage, only string, since time.Time, w walker, log *slog.Logger, stdout, stderr io.Writer) error {
	if !cfg.GitHub.Configured() {
		return fmt.Errorf("GitHub App credentials are not configured: %s reads the branches from GitHub", w.noun)
	}
	repos, err := targets(ctx, installedRepos(store), only)
	if err != nil {
		return err
	}
	led, err := openLedger(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer led.Close()
	a, err := walkAssessor(ctx, cfg, store, led, log)
	if err != nil {
		return err
	}
	for _, r := range repos {
		rep, err := w.run(ctx, a, r, since, log.With("repo", r.Repo), stderr)
		if err != nil {
			return fmt.Errorf("%s of %s: %w", w.noun, r.Repo, err)
		}
		fmt.Fprintf(stdout, "%s: %s: %d commits checked, %d %s%s\n", r.Repo, strings.Join(rep.Branches, ", "), rep.Checked, len(rep.Unrecorded), w.verb, listShort(rep.Unrecorded))
	}
	return nil
}

// walkAssessor is the assessor as serve wires it, without a queue.
func walkAssessor(ctx context.Context, cfg config.Config, store storage, led *openedLedger, log *slog.Logger) (*assess.Assessor, error) {
	key, err := readPrivateKey(cfg)
	if err != nil {
		return nil, err
	}
	apps, err := ghapp.New(ghapp.Config{AppID: cfg.GitHub.AppID, PrivateKey: key, BaseURL: cfg.GitHub.APIURL}, ghapp.Options{Logger: log.With("component", "github")})
	if err != nil {
		return nil, err
	}
	tickets, err := newJira(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	floor, err := loadFloor(cfg.Policy.FloorFile)
	if err != nil {
		return nil, err
	}
	a, err := newAssessor(store, apps, cfg.GitHub.AppID, tickets, archiver{led, store.ledgerIndex()}, floor, log.With("component", "policy"))
	if err != nil {
		return nil, err
	}
	a.BackfillPeriod = cfg.Completeness.BackfillPeriod.D()
	a.ReconcileGrace = cfg.Completeness.ReconcileGrace.D()
	return a, nil
}

// queueWalk queues one run per repository for the server that holds the
// data dir, waits for them, and lists what they archived.
func queueWalk(ctx context.Context, cfg config.Config, wo walkOptions, since time.Time, w walker, stdout io.Writer) error {
	db, err := sqlite.OpenQueueClient(cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	repos, err := targets(ctx, installedRepos(sqlite.Wrap(db)), wo.repo)
	if err != nil {
		return err
	}
	started := time.Now().UTC()
	var ids []int64
	for _, r := range repos {
		args, background := w.job(r, since)
		id, err := queue.InsertInto(ctx, db, args, background)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	fmt.Fprintf(stdout, "a server holds %s: queued %d %s run(s) for it\n", cfg.DataDir, len(ids), w.noun)
	if err := waitJobs(ctx, db, ids, wo.wait, w.noun); err != nil {
		return err
	}
	return printArchived(ctx, db, started, stdout)
}

// waitJobs waits until the jobs finished, and fails on one that did not
// complete.
func waitJobs(ctx context.Context, db *sql.DB, ids []int64, wait time.Duration, noun string) error {
	deadline := time.Now().Add(wait)
	for _, id := range ids {
		for done := false; !done; {
			var state string
			if err := db.QueryRowContext(ctx, `SELECT state FROM river_job WHERE id = ?`, id).Scan(&state); err != nil {
				return fmt.Errorf("job %d: %w", id, err)
			}
			switch {
			case state == "completed":
				done = true
			case state == "discarded" || state == "cancelled":
				return fmt.Errorf("%s job %d %s: see the server's log", noun, id, state)
			case time.Now().After(deadline):
				return fmt.Errorf("%s job %d is still %s after %s: the server runs it; see its log", noun, id, state, wait)
			default:
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// printArchived lists the changes archived since start: unrecorded
// exceptions, and backfilled records.
func printArchived(ctx context.Context, db *sql.DB, since time.Time, stdout io.Writer) error {
	rows, err := db.QueryContext(ctx, `SELECT repo, sha, change_type, exception, json_extract(summary, '$.backfilled') FROM ledger_records
		WHERE julianday(observed_at) >= julianday(?) ORDER BY seq`, since.Format(time.RFC3339Nano))
	if err != nil {
		return err
	}
	defer rows.Close()
	unrecorded, backfilled := 0, 0
	for rows.Next() {
		var repo, sha, kind, exception string
		var back sql.NullBool
		if err := rows.Scan(&repo, &sha, &kind, &exception, &back); err != nil {
			return err
		}
		switch {
		case exception == "unrecorded":
			unrecorded++
			fmt.Fprintf(stdout, "unrecorded: %s %s (%s)\n", repo, short(sha), kind)
		case back.Bool:
			backfilled++
			fmt.Fprintf(stdout, "backfilled: %s %s (%s)\n", repo, short(sha), kind)
		}
	}
	fmt.Fprintf(stdout, "done: %d unrecorded, %d backfilled\n", unrecorded, backfilled)
	return rows.Err()
}

func readPrivateKey(cfg config.Config) ([]byte, error) {
	key, err := os.ReadFile(cfg.GitHub.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("github.private_key_file: %w", err)
	}
	return key, nil
}

// quieter is a CLI's log level: warn, unless a quieter one is configured.
func quieter(level string) string {
	if level == "error" {
		return level
	}
	return "warn"
}

// listShort names up to ten commits.
func listShort(shas []string) string {
	if len(shas) == 0 {
		return ""
	}
	var out []string
	for i, s := range shas {
		if i == 10 {
			out = append(out, fmt.Sprintf("and %d more", len(shas)-10))
			break
		}
		out = append(out, short(s))
	}
	return " (" + strings.Join(out, ", ") + ")"
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
