package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/web"
)

func tokenCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage auditor tokens for the audit API and web UI"}
	cmd.AddCommand(&cobra.Command{
		Use:   "new NAME",
		Short: "Make an auditor token: prints the token once, and the line to add to CHANGEGATE_AUDITOR_TOKENS_FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, line, err := web.NewToken(args[0])
			if err != nil {
				return usage("%v", err)
			}
			_, err = fmt.Fprintf(stdout, "token (give it to the auditor; it is not stored): %s\nadd this line to the tokens file: %s\n", token, line)
			return err
		},
	})
	return cmd
}
