package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// run executes the CLI and returns the process exit code.
func run(ctx context.Context, args []string, getenv config.LookupEnv, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "changegate",
		Short:         "Enforce CC8.1 change management on GitHub and keep the evidence",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(serveCmd(getenv, stdout, stderr), policyCmd(stdout), auditCmd(getenv, stdout, stderr), demoCmd(stdout), reconcileCmd(getenv, stdout, stderr), backfillCmd(getenv, stdout, stderr), versionCmd(stdout),
		evidenceCmd(getenv, stdout), healthcheckCmd(getenv, stdout))
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "changegate:", err)
		return exitCode(err)
	}
	return 0
}

func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(stdout, "changegate", version)
			return err
		},
	}
}
