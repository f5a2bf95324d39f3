package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func coverageCmd(stdout io.Writer) *cobra.Command {
	var dataDir, databaseURL string
	cmd := &cobra.Command{
		Use:   "coverage [--data-dir DIR | --database-url URL]",
		Short: "List, per repository, production branch and environment, whether changegate is enforced, and since when",
		Long: `coverage lists what the control watch last saw: for each production
branch, whether a rule in force requires the changegate check from this
App; for each production environment, whether its deployment protection
rules include this App. The watch runs with every reconciliation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			index, err := openReadIndex(cmd.Context(), dataDir, databaseURL)
			if err != nil {
				return err
			}
			defer index.close()
			states, err := index.coverage(cmd.Context())
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
	cmd.Flags().StringVar(&databaseURL, "database-url", "", "postgres://… when the store is PostgreSQL (as CHANGEGATE_DATABASE_URL; read only)")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
