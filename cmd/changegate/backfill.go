package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/sqlite"
)

func backfillCmd(getenv config.LookupEnv, stdout, stderr io.Writer) *cobra.Command {
	var ro reconcileOptions
	cmd := &cobra.Command{
		Use:   "backfill --since DATE [--repo O/R]",
		Short: "Archive the merged pull requests and direct pushes of a past period, marked backfilled",
		Long: `backfill walks each installed repository's production branches back to
--since and archives every change no record covers, from what GitHub and
Jira say now: merged pull requests as merges, other commits as direct
pushes. Each record is marked backfilled, with the change's own time and
when it was archived. It can be stopped and run again: it continues where
it stopped, and writes no record twice. Rate limits make it wait. With a
server running on the data dir, the runs are queued behind its live work.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBackfill(cmd.Context(), ro, getenv, stdout, stderr)
		},
	}
	cmd.Flags().StringVar(&ro.configPath, "config", "", "YAML configuration file, as for serve")
	cmd.Flags().StringVar(&ro.o.DataDir, "data-dir", "", "data dir (default ./data, or CHANGEGATE_DATA_DIR)")
	cmd.Flags().StringVar(&ro.repo, "repo", "", "only this repository (owner/name)")
	cmd.Flags().StringVar(&ro.since, "since", "", "the period's first day (YYYY-MM-DD, UTC); required")
	cmd.Flags().DurationVar(&ro.wait, "wait", time.Hour, "how long to wait for a running server to finish the queued runs")
	return cmd
}

func runBackfill(ctx context.Context, ro reconcileOptions, getenv config.LookupEnv, stdout, stderr io.Writer) error {
	if ro.since == "" {
		return usage("--since is required: the first day of the period to backfill (YYYY-MM-DD)")
	}
	since, err := time.Parse(time.DateOnly, ro.since)
	if err != nil {
		return usage("--since %q: give a date as YYYY-MM-DD", ro.since)
	}
	if ro.repo != "" && strings.Count(ro.repo, "/") != 1 {
		return usage("--repo %q: give owner/name", ro.repo)
	}
	cfg, err := config.Load(ro.configPath, getenv, ro.o)
	if err != nil {
		return usage("%v", err)
	}
	if err := cfg.UseStoredApp(); err != nil {
		return err
	}
	// The command prints its own summary; its log says only what went wrong.
	log := newLogger(stderr, quieter(cfg.LogLevel)).With("app_version", version)
	store, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Logger: log.With("component", "store")})
	if errors.Is(err, sqlite.ErrInUse) {
		return queueBackfill(ctx, cfg, ro, since, stdout)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	return backfillHere(ctx, cfg, store, ro.repo, since, log, stdout, stderr)
}

// backfillHere runs the backfill in this process, waiting out rate
// limits, with a progress line.
func backfillHere(ctx context.Context, cfg config.Config, store *sqlite.DB, only string, since time.Time, log *slog.Logger, stdout, stderr io.Writer) error {
	if !cfg.GitHub.Configured() {
		return errors.New("GitHub App credentials are not configured: backfill reads the history from GitHub")
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
		rep, err := backfillRepo(ctx, a, r, since, log, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s: %d commits checked, %d backfilled%s\n", r.Repo, strings.Join(rep.Branches, ", "), rep.Checked, len(rep.Unrecorded), listShort(rep.Unrecorded))
	}
	return nil
}

// backfillRepo backfills one repository, and on a rate limit waits for
// its reset and continues: the backfill is resumable, so the run again
// skips what is archived.
func backfillRepo(ctx context.Context, a *assess.Assessor, r assess.InstalledRepo, since time.Time, log *slog.Logger, stderr io.Writer) (assess.ReconcileReport, error) {
	progress := progressLine(stderr, r.Repo)
	var archived []string
	for {
		rep, err := a.Backfill(ctx, log.With("repo", r.Repo), r.Installation, r.Repo, since, progress)
		archived = append(archived, rep.Unrecorded...)
		delay, retry := ghapp.RetryDelay(err, time.Now())
		if err == nil || !retry || !isRateLimit(err) {
			rep.Unrecorded = archived
			if err != nil {
				return rep, fmt.Errorf("backfill %s: %w", r.Repo, err)
			}
			return rep, nil
		}
		delay = max(delay, time.Second)
		fmt.Fprintf(stderr, "\n%s: rate limited by GitHub; waiting %s, then continuing\n", r.Repo, delay.Round(time.Second))
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(delay):
		}
	}
}

func isRateLimit(err error) bool {
	var primary *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	return errors.As(err, &primary) || errors.As(err, &secondary)
}

// progressLine writes "repo branch: done/total" over itself on a terminal,
// and a line every 50 commits otherwise.
func progressLine(w io.Writer, repo string) func(branch string, done, total int) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return func(branch string, done, total int) {
		switch {
		case tty:
			fmt.Fprintf(w, "\r%s %s: %d/%d commits", repo, branch, done, total)
			if done == total {
				fmt.Fprintln(w)
			}
		case done%50 == 0 || done == total:
			fmt.Fprintf(w, "%s %s: %d/%d commits\n", repo, branch, done, total)
		}
	}
}

// queueBackfill queues the runs behind a running server's live work, and
// waits for them.
func queueBackfill(ctx context.Context, cfg config.Config, ro reconcileOptions, since time.Time, stdout io.Writer) error {
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
		id, err := queue.InsertInto(ctx, db, jobs.Backfill{Installation: r.Installation, Repo: r.Repo, Since: since}, true)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	fmt.Fprintf(stdout, "a server holds %s: queued %d backfill run(s) behind its live work\n", cfg.DataDir, len(ids))
	if err := waitJobs(ctx, db, ids, ro.wait); err != nil {
		return err
	}
	return printArchived(ctx, db, started, stdout)
}
