package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/demo"
	"github.com/changegate/changegate/internal/web"
)

type demoOptions struct {
	dataDir, listen string
	exit            bool
}

func demoCmd(stdout io.Writer) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Walk scripted changes through a real changegate against a fake GitHub and Jira, and leave the evidence to browse",
		Long: `demo starts the real server wiring in-process on 127.0.0.1, against the
fake GitHub and fake Jira the tests use, and walks scripted pull requests
through it with signed webhooks, printing each check's title as it changes.
It leaves a data dir, and serves the audit UI until Ctrl-C (or exits with
--exit), printing an auditor token to sign in with.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), o, stdout) },
	}
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "./changegate-demo", "data dir to create; it must not exist, or be empty")
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:0", "address of the demo server (port 0: any free port)")
	cmd.Flags().BoolVar(&o.exit, "exit", false, "stop when the script is done, instead of serving the audit UI until Ctrl-C")
	return cmd
}

// demoRun is one demo: the fakes, the server and what it leaves.
type demoRun struct {
	o          demoOptions
	world      *demo.World
	log        *os.File
	base       string
	token      string
	tokenFile  string
	jiraSecret string
	stop       func() error // stops the server and waits for it
}

func runDemo(ctx context.Context, o demoOptions, stdout io.Writer) error {
	if err := freshDir(o.dataDir); err != nil {
		return err
	}
	d, err := startDemo(ctx, o)
	if err != nil {
		return err
	}
	defer d.world.Close()
	defer d.log.Close()
	fmt.Fprintf(stdout, "changegate demo: a real changegate at %s, against a fake GitHub and a fake Jira.\n", d.base)
	fmt.Fprintf(stdout, "Repository acme/payments requires a PAY ticket in status Approved, a peer review, a successful staging deployment\n"+
		"of the head commit and a release manager's approval (acme/release-managers: carol). Server log: %s\n", d.log.Name())
	if err := d.script(ctx, stdout); err != nil {
		return errors.Join(fmt.Errorf("the demo stopped: %w (server log: %s)", err, d.log.Name()), d.stop())
	}
	if err := d.verify(ctx, stdout); err != nil {
		return errors.Join(err, d.stop())
	}
	d.printAuditor(stdout)
	if !o.exit {
		fmt.Fprintln(stdout, "\nServing the audit UI until Ctrl-C.")
		<-ctx.Done()
	}
	return d.stop()
}

// freshDir refuses a data dir that holds anything: the demo's deliveries
// and records must not mix with another run's.
func freshDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return usage("--data-dir %s: %v", dir, err)
	case len(entries) > 0:
		return usage("--data-dir %s is not empty: the demo makes a fresh data dir; remove it or name another", dir)
	}
	return nil
}

// startDemo starts the fakes and the server, and waits until it is ready.
func startDemo(ctx context.Context, o demoOptions) (*demoRun, error) {
	if err := os.MkdirAll(filepath.Join(o.dataDir, "demo"), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(o.dataDir, "demo", "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	d := &demoRun{o: o, log: logFile, world: demo.NewWorld(logFile)}
	cfg, err := d.config()
	if err == nil {
		err = d.serve(ctx, cfg)
	}
	if err != nil {
		d.world.Close()
		logFile.Close()
		return nil, err
	}
	return d, nil
}

// config is the server's configuration: the fakes, an auditor token, and
// nothing from the caller's environment.
func (d *demoRun) config() (config.Config, error) {
	d.jiraSecret = randomHex()
	env, err := d.world.ServerEnv(d.o.dataDir, d.jiraSecret)
	if err != nil {
		return config.Config{}, err
	}
	token, line, err := web.NewToken("demo-auditor")
	if err != nil {
		return config.Config{}, err
	}
	d.token, d.tokenFile = token, filepath.Join(d.o.dataDir, "demo", "auditor-tokens")
	if err := os.WriteFile(d.tokenFile, []byte(line+"\n"), 0o600); err != nil {
		return config.Config{}, err
	}
	env["CHANGEGATE_AUDITOR_TOKENS_FILE"] = d.tokenFile
	env["CHANGEGATE_LISTEN"] = d.o.listen
	return config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, config.Overrides{})
}

// serve runs the server until stop, and waits for /readyz.
func (d *demoRun) serve(ctx context.Context, cfg config.Config) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	d.base = "http://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- serve(sctx, cfg, ln, d.log) }()
	d.stop = func() error {
		cancel()
		return <-done
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("the server stopped: %v (log: %s)", err, d.log.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if ready(d.base) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("the server was not ready within 30s (log: %s)", d.log.Name()), d.stop())
		}
	}
}

func ready(base string) bool {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// script plays the scenes, signing deliveries with the secret the server
// generated on its first start.
func (d *demoRun) script(ctx context.Context, stdout io.Writer) error {
	secret, err := os.ReadFile(filepath.Join(d.o.dataDir, "webhook-secret"))
	if err != nil {
		return err
	}
	s := &demo.Script{World: d.world, Base: d.base, Secret: bytes.TrimSpace(secret), JiraSecret: []byte(d.jiraSecret), Token: d.token, Out: stdout}
	return s.Run(ctx)
}

// verify checks the ledger the demo wrote, as an auditor would offline.
func (d *demoRun) verify(ctx context.Context, stdout io.Writer) error {
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"audit", "verify", "--data-dir", d.o.dataDir}, func(string) (string, bool) { return "", false }, &out, &errOut); code != 0 {
		return fmt.Errorf("audit verify of the demo's ledger failed: %s", strings.TrimSpace(errOut.String()))
	}
	fmt.Fprintf(stdout, "\nchangegate audit verify --data-dir %s\n  %s", d.o.dataDir, out.String())
	return nil
}

func (d *demoRun) printAuditor(stdout io.Writer) {
	fmt.Fprintf(stdout, `
For the auditor:
  audit UI:      %s/audit/
  auditor token: %s
  Sign in with the token to browse the population, open records, draw a sample and download its evidence package.
  API:           curl -H 'Authorization: Bearer %s' '%s/api/v1/changes?from=%s&to=%s'
  Later, from the data dir alone:
    CHANGEGATE_DATA_DIR=%s CHANGEGATE_AUDITOR_TOKENS_FILE=%s changegate serve --listen 127.0.0.1:8080
    changegate audit population --data-dir %s --from %s --to %s --out population.csv
`, d.base, d.token, d.token, d.base, today(0), today(2), d.o.dataDir, d.tokenFile, d.o.dataDir, today(0), today(2))
}

func today(days int) string {
	return time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly)
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
