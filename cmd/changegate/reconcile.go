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

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
)

type reconcileOptions struct {
	configPath string
	o          config.Overrides
	repo       string
	since      string
	wait       time.Duration
}

func reconcileCmd(getenv config.LookupEnv, stdout, stderr io.Writer) *cobra.Command {
	var ro reconcileOptions
	cmd := &cobra.Command{
		Use:   "reconcile [--repo O/R] [--since DATE]",
		Short: "Walk production branches for commits no change record covers, and archive each as an unrecorded exception",
		Long: `reconcile walks each installed repository's production branches from the
last reconciled commit (or --since, or the last 72 hours, the first time)
and archives every commit no change record covers: a merge no webhook
brought, or a push outside a merged pull request. A second run adds
nothing. With a server running on the data dir, the runs are queued for
it, and reconcile waits for them; otherwise it runs them itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReconcile(cmd.Context(), ro, getenv, stdout, stderr)
		},
	}
	cmd.Flags().StringVar(&ro.configPath, "config", "", "YAML configuration file, as for serve")
	cmd.Flags().StringVar(&ro.o.DataDir, "data-dir", "", "data dir (default ./data, or CHANGEGATE_DATA_DIR)")
	cmd.Flags().StringVar(&ro.repo, "repo", "", "only this repository (owner/name)")
	cmd.Flags().StringVar(&ro.since, "since", "", "walk from this date (YYYY-MM-DD, UTC) where a branch was never reconciled")
	cmd.Flags().DurationVar(&ro.wait, "wait", 10*time.Minute, "how long to wait for a running server to finish the queued runs")
	return cmd
}

func runReconcile(ctx context.Context, ro reconcileOptions, getenv config.LookupEnv, stdout, stderr io.Writer) error {
	var since time.Time // a branch never reconciled is backfilled first
	if ro.since != "" {
		t, err := time.Parse(time.DateOnly, ro.since)
		if err != nil {
			return usage("--since %q: give a date as YYYY-MM-DD", ro.since)
		}
		since = t
	}
	if ro.repo != "" && strings.Count(ro.repo, "/") != 1 {
		return usage("--repo %q: give owner/name", ro.repo)
	}
	cfg, err := config.Load(ro.configPath, getenv, ro.o)
	if err != nil {
		return usage("%v", err)
	}
	if !cfg.GitHub.Configured() {
		if err := cfg.UseStoredApp(); err != nil {
			return err
		}
	}
	// The command prints its own summary; its log says only what went wrong.
	log := newLogger(stderr, quieter(cfg.LogLevel)).With("app_version", version)
	store, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Logger: log.With("component", "store")})
	if errors.Is(err, sqlite.ErrInUse) {
		return queueReconcile(ctx, cfg, ro, since, stdout)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	return reconcileHere(ctx, cfg, store, ro.repo, since, log, stdout)
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

// reconcileHere runs the reconciliation in this process: no server holds
// the data dir.
func reconcileHere(ctx context.Context, cfg config.Config, store *sqlite.DB, only string, since time.Time, log *slog.Logger, stdout io.Writer) error {
	if !cfg.GitHub.Configured() {
		return errors.New("GitHub App credentials are not configured: reconciliation reads the branches from GitHub")
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
	a, err := reconcileAssessor(ctx, cfg, store, led, log)
	if err != nil {
		return err
	}
	for _, r := range repos {
		rep, err := a.Reconcile(ctx, log.With("repo", r.Repo), r.Installation, r.Repo, "", since)
		if err != nil {
			return fmt.Errorf("reconcile %s: %w", r.Repo, err)
		}
		fmt.Fprintf(stdout, "%s: %s: %d commits checked, %d archived%s\n", r.Repo, strings.Join(rep.Branches, ", "), rep.Checked, len(rep.Unrecorded), listShort(rep.Unrecorded))
	}
	return nil
}

// reconcileAssessor is the assessor as serve wires it, without a queue.
func reconcileAssessor(ctx context.Context, cfg config.Config, store *sqlite.DB, led *openedLedger, log *slog.Logger) (*assess.Assessor, error) {
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
	a, err := newAssessor(store, apps, cfg.GitHub.AppID, tickets, archiver{led, store.Ledger()}, floor, log.With("component", "policy"))
	if err != nil {
		return nil, err
	}
	a.BackfillPeriod = cfg.Completeness.BackfillPeriod.D()
	return a, nil
}

// queueReconcile queues one run per repository for the server that holds
// the data dir, and waits for them.
func queueReconcile(ctx context.Context, cfg config.Config, ro reconcileOptions, since time.Time, stdout io.Writer) error {
	db, err := sqlite.OpenQueueClient(cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	repos, err := targets(ctx, installedRepos(sqlite.Wrap(db)), ro.repo)
	if err != nil {
		return err
	}
	started := time.Now().UTC()
	var ids []int64
	for _, r := range repos {
		id, err := queue.InsertInto(ctx, db, jobs.Reconcile{Installation: r.Installation, Repo: r.Repo, Since: since, Reason: "changegate reconcile"}, false)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	fmt.Fprintf(stdout, "a server holds %s: queued %d reconciliation run(s) for it\n", cfg.DataDir, len(ids))
	if err := waitJobs(ctx, db, ids, ro.wait); err != nil {
		return err
	}
	return printArchived(ctx, db, started, stdout)
}

// waitJobs waits until the jobs finished, and fails on one that did not
// complete.
func waitJobs(ctx context.Context, db *sql.DB, ids []int64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for _, id := range ids {
		for {
			var state string
			if err := db.QueryRowContext(ctx, `SELECT state FROM river_job WHERE id = ?`, id).Scan(&state); err != nil {
				return fmt.Errorf("job %d: %w", id, err)
			}
			switch state {
			case "completed":
			case "discarded", "cancelled":
				return fmt.Errorf("reconciliation job %d %s: see the server's log", id, state)
			default:
				if time.Now().After(deadline) {
					return fmt.Errorf("reconciliation job %d is still %s after %s: the server runs it; see its log", id, state, wait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			break
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
