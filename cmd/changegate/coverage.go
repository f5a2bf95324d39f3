package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/store/sqlite"
)

func coverageCmd(stdout io.Writer) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "coverage [--data-dir DIR]",
		Short: "List, per repository, production branch and environment, whether changegate is enforced, and since when",
		Long: `coverage lists what the control watch last saw: for each production
branch, whether a rule in force requires the changegate check from this
App; for each production environment, whether its deployment protection
rules include this App. The watch runs with every reconciliation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := sqlite.OpenReadOnly(dataDir)
			if err != nil {
				return err
			}
			defer db.Close()
			states, err := sqlite.Coverage(cmd.Context(), db)
			if err != nil {
				return err
			}
			if len(states) == 0 {
				_, err := fmt.Fprintln(stdout, "no coverage yet: the control watch runs with the server's reconciliation")
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "REPOSITORY\tTARGET\tENFORCED\tSINCE\tCHECKED\tDETAIL")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Repo, s.Target, yesNo(s.Enforced), s.Since.Format(time.RFC3339), s.CheckedAt.Format(time.RFC3339), s.Detail)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
