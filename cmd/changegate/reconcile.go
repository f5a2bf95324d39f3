package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/jobs"
)

func reconcileCmd(getenv config.LookupEnv, stdout, stderr io.Writer) *cobra.Command {
	var wo walkOptions
	cmd := &cobra.Command{
		Use:   "reconcile [--repo O/R] [--since DATE]",
		Short: "Walk production branches for commits no change record covers, and archive each as an unrecorded exception",
		Long: `reconcile walks each installed repository's production branches from the
last reconciled commit and archives every commit no change record covers:
a merge no webhook brought, or a push outside a merged pull request, each
an unrecorded exception. A branch never reconciled is backfilled first
(the last 30 days), unless --since is given. A second run adds nothing.
With a server running on the data dir, the runs are queued for it, and
reconcile waits for them; otherwise it runs them itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var since time.Time
			if wo.since != "" {
				var err error
				if since, err = parseSince(wo.since); err != nil {
					return err
				}
			}
			return runWalk(cmd.Context(), wo, since, reconciliation, getenv, stdout, stderr)
		},
	}
	walkFlags(cmd, &wo, "walk from this date (YYYY-MM-DD, UTC) where a branch was never reconciled", 10*time.Minute)
	return cmd
}

// walkFlags are the flags reconcile and backfill share.
func walkFlags(cmd *cobra.Command, wo *walkOptions, since string, wait time.Duration) {
	cmd.Flags().StringVar(&wo.configPath, "config", "", "YAML configuration file, as for serve")
	cmd.Flags().StringVar(&wo.o.DataDir, "data-dir", "", "data dir (default ./data, or CHANGEGATE_DATA_DIR)")
	cmd.Flags().StringVar(&wo.repo, "repo", "", "only this repository (owner/name)")
	cmd.Flags().StringVar(&wo.since, "since", "", since)
	cmd.Flags().DurationVar(&wo.wait, "wait", wait, "how long to wait for a running server to finish the queued runs")
}

var reconciliation = walker{
	noun: "reconciliation",
	verb: "archived",
	run: func(ctx context.Context, a *assess.Assessor, r assess.InstalledRepo, since time.Time, log *slog.Logger, _ io.Writer) (assess.ReconcileReport, error) {
		return a.Reconcile(ctx, log, r.Installation, r.Repo, "", since)
	},
	job: func(r assess.InstalledRepo, since time.Time) (river.JobArgs, bool) {
		return jobs.Reconcile{Installation: r.Installation, Repo: r.Repo, Since: since, Reason: "changegate reconcile"}, false
	},
}
