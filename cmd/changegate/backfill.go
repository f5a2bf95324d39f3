package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/riverqueue/river"
	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/jobs"
)

func backfillCmd(getenv config.LookupEnv, stdout, stderr io.Writer) *cobra.Command {
	var wo walkOptions
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
			if wo.since == "" {
				return usage("--since is required: the first day of the period to backfill (YYYY-MM-DD)")
			}
			since, err := parseSince(wo.since)
			if err != nil {
				return err
			}
			return runWalk(cmd.Context(), wo, since, backfilling, getenv, stdout, stderr)
		},
	}
	walkFlags(cmd, &wo, "the period's first day (YYYY-MM-DD, UTC); required", time.Hour)
	return cmd
}

var backfilling = walker{
	noun: "backfill",
	verb: "backfilled",
	run:  backfillRepo,
	job: func(r assess.InstalledRepo, since time.Time) (river.JobArgs, bool) {
		return jobs.Backfill{Installation: r.Installation, Repo: r.Repo, Since: since}, true
	},
}

// backfillRepo backfills one repository, and on a rate limit waits for
// its reset and continues: the backfill is resumable, so running it again
// skips what is archived.
func backfillRepo(ctx context.Context, a *assess.Assessor, r assess.InstalledRepo, since time.Time, log *slog.Logger, stderr io.Writer) (assess.ReconcileReport, error) {
	progress := progressLine(stderr, r.Repo)
	var archived []string
	for {
		rep, err := a.Backfill(ctx, log, r.Installation, r.Repo, since, progress)
		archived = append(archived, rep.Unrecorded...)
		delay, _ := ghapp.RetryDelay(err, time.Now())
		if err == nil || !isRateLimit(err) {
			rep.Unrecorded = archived
			return rep, err
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

// progressLine writes "repo branch: done/total commits" over itself on a
// terminal, and a line every 50 commits otherwise.
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
