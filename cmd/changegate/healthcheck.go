package main

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/config"
)

// healthcheckCmd asks a server on this machine whether it is ready: the
// container's health check, on an image without a shell or curl.
func healthcheckCmd(getenv config.LookupEnv, stdout io.Writer) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "healthcheck [--url URL]",
		Short: "Exit 0 when the server's /readyz answers 200 (default: the CHANGEGATE_LISTEN port on 127.0.0.1)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				listen, _ := getenv("CHANGEGATE_LISTEN")
				_, port, err := net.SplitHostPort(cmp.Or(listen, ":8080"))
				if err != nil {
					return usage("CHANGEGATE_LISTEN %q: %v", listen, err)
				}
				target = "http://" + net.JoinHostPort("127.0.0.1", port) + "/readyz"
			}
			client := &http.Client{Timeout: 5 * time.Second}
			resp, err := client.Get(target)
			if err != nil {
				return fmt.Errorf("not ready: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("not ready: %s answered %d: %s", target, resp.StatusCode, body)
			}
			_, err = fmt.Fprintf(stdout, "ready: %s\n", body)
			return err
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "the readiness URL to ask")
	return cmd
}
