package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	shipped "github.com/changegate/changegate/config"
	"github.com/changegate/changegate/internal/policy"
)

func policyCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with changegate policy files",
	}
	var baseline, floor string
	var print bool
	check := &cobra.Command{
		Use:   "check FILE [--baseline ORG_FILE] [--floor FILE] [--print]",
		Short: "Check a policy file as the server would: valid, and tightening its baseline; exits non-zero with file:line on error",
		Long: "Checks FILE as a repository's .github/changegate.yml over its baseline: the organisation's file " +
			"(--baseline), itself over the operator's floor (--floor), or the built-in default. " +
			"To check an organisation's file, give it as FILE with --floor. The verdict is the server's.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			effective, err := checkPolicy(args[0], baseline, floor)
			if err != nil {
				return err
			}
			if !print {
				_, err = fmt.Fprintf(stdout, "%s: valid\n", args[0])
				return err
			}
			out, err := effective.Marshal()
			if err != nil {
				return err
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	check.Flags().StringVar(&baseline, "baseline", "", "the organisation's changegate.yml the file is applied over")
	check.Flags().StringVar(&floor, "floor", "", "the operator's policy floor (policy.floor_file)")
	check.Flags().BoolVar(&print, "print", false, "print the effective policy instead of \"valid\"")
	cmd.AddCommand(check)
	return cmd
}

// checkPolicy is the effective policy of file over its layers, as the
// server computes it (policy.Effective).
func checkPolicy(file, baseline, floor string) (*policy.Policy, error) {
	defaults, err := policy.Parse(shipped.DefaultPolicyName, shipped.DefaultPolicy)
	if err != nil {
		return nil, fmt.Errorf("default policy: %w", err)
	}
	layers := make([]*policy.Policy, 3)
	for i, path := range []string{floor, baseline, file} {
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, usage("%v", err)
		}
		if layers[i], err = policy.Parse(path, data); err != nil {
			return nil, err
		}
	}
	return policy.Effective(defaults.AsFallback(), layers[0], layers[1], layers[2])
}
