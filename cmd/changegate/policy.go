package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/policy"
)

func policyCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with changegate policy files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file (.github/changegate.yml); exits non-zero with file:line on error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := policy.CheckFile(args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(stdout, "%s: valid\n", args[0])
			return err
		},
	})
	return cmd
}
