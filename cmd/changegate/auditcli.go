package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
)

// usageError is a command line that cannot be run as given: exit code 2,
// and no file written.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usage(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process exit code: 2 for bad input.
func exitCode(err error) int {
	var u *usageError
	var f *audit.FlagError
	var nf *audit.NotFoundError
	if errors.As(err, &u) || errors.As(err, &f) || errors.As(err, &nf) {
		return 2
	}
	return 1
}

// ledgerFlags say where the audit commands read the ledger: a local data
// dir, or a server's audit API.
type ledgerFlags struct {
	dataDir, evidenceURL, keyFile string
	databaseURL                   string // the index in PostgreSQL, not the data dir
	server, token                 string
}

func (f *ledgerFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "./data", "data directory of the ledger")
	cmd.Flags().StringVar(&f.evidenceURL, "evidence-url", "", "s3://bucket/prefix?… when the records are in S3 (as CHANGEGATE_EVIDENCE_URL)")
	cmd.Flags().StringVar(&f.databaseURL, "database-url", "", "postgres://… when the index is in PostgreSQL (as CHANGEGATE_DATABASE_URL; read only, SELECT suffices); needs --evidence-url and --key")
	cmd.Flags().StringVar(&f.keyFile, "key", "", "signing key that signs the export's manifest (default DATA_DIR/signing-key.pem)")
	cmd.Flags().StringVar(&f.server, "server", "", "read a changegate server's audit API instead of a data dir (https://HOST)")
	cmd.Flags().StringVar(&f.token, "token", "", "auditor token for --server (default CHANGEGATE_AUDIT_TOKEN)")
}

// remote is the server's audit API, when --server is given.
func (f *ledgerFlags) remote(getenv config.LookupEnv) (*auditClient, error) {
	if f.server == "" {
		return nil, nil
	}
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usage("--server %q is not an http(s) URL", f.server)
	}
	token := f.token
	if token == "" {
		token, _ = getenv("CHANGEGATE_AUDIT_TOKEN")
	}
	if token == "" {
		return nil, usage("--server needs --token or CHANGEGATE_AUDIT_TOKEN")
	}
	return &auditClient{base: strings.TrimSuffix(u.String(), "/"), token: token, http: &http.Client{Timeout: 10 * time.Minute}}, nil
}

// local opens the ledger read-only, the data dir's or the one the
// replicas share in PostgreSQL and S3, with the key that signs manifests.
func (f *ledgerFlags) local(ctx context.Context) (*audit.Service, func(), error) {
	if f.databaseURL != "" && (f.evidenceURL == "" || f.keyFile == "") {
		return nil, nil, usage("--database-url needs --evidence-url (the records in S3) and --key (the key that signs the manifest)")
	}
	exportGC()
	keyFile := f.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(f.dataDir, "signing-key.pem")
	}
	key, err := evidence.LoadKey(keyFile)
	if err != nil {
		return nil, nil, err
	}
	signer, err := evidence.NewSigner(key)
	if err != nil {
		return nil, nil, err
	}
	blobs, err := openEvidence(ctx, f.dataDir, f.evidenceURL, false)
	if err != nil {
		return nil, nil, err
	}
	index, err := openReadIndex(ctx, f.dataDir, f.databaseURL)
	if err != nil {
		closeEvidence(blobs)
		return nil, nil, err
	}
	svc, err := audit.New(index.reader, ledger.NewReader(blobs), signer, LedgerOrigin(signer.Public()))
	closer := func() { index.close(); closeEvidence(blobs) }
	if err != nil {
		closer()
		return nil, nil, err
	}
	return svc, closer, nil
}

// withLocal runs fn on the data dir's ledger.
func (f *ledgerFlags) withLocal(ctx context.Context, fn func(*audit.Service) error) error {
	svc, done, err := f.local(ctx)
	if err != nil {
		return err
	}
	defer done()
	return fn(svc)
}

// exportGC sets the GC target of a command that exports or verifies a
// package: it holds a few large buffers for a moment (a month's
// population, the log's leaf hashes and tree), and a lower target keeps
// the peak near them, and measured faster too (README, Benchmarks). A
// data dir's verify, which allocates steadily, is slower with it.
func exportGC() { debug.SetGCPercent(50) }

// queryFlags are a population query's flags.
type queryFlags struct {
	from, to, repo string
	types          []string
}

func (q *queryFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&q.from, "from", "", "first day of the period (2026-01-01, or RFC 3339), inclusive")
	cmd.Flags().StringVar(&q.to, "to", "", "end of the period, exclusive (2026-02-01)")
	cmd.Flags().StringVar(&q.repo, "repo", "", "only this repository (owner/name)")
	cmd.Flags().StringSliceVar(&q.types, "type", nil, "only these change types: "+strings.Join(audit.ChangeTypes, ", "))
}

func (q *queryFlags) query() (audit.Query, error) {
	if q.from == "" {
		return audit.Query{}, &audit.FlagError{Flag: "from", Problem: "is required"}
	}
	if q.to == "" {
		return audit.Query{}, &audit.FlagError{Flag: "to", Problem: "is required"}
	}
	from, err := audit.ParseDate("from", q.from)
	if err != nil {
		return audit.Query{}, err
	}
	to, err := audit.ParseDate("to", q.to)
	if err != nil {
		return audit.Query{}, err
	}
	aq := audit.Query{From: from, To: to, Repo: q.repo, Types: q.types}
	return aq, aq.Validate()
}

func (q *queryFlags) values() url.Values {
	v := url.Values{"from": {q.from}, "to": {q.to}}
	if q.repo != "" {
		v.Set("repo", q.repo)
	}
	for _, t := range q.types {
		v.Add("type", t)
	}
	return v
}

// writeOutput writes data to path ("-" or empty: stdout) atomically: a
// file appears whole or not at all.
func writeOutput(path string, data []byte, stdout io.Writer) error {
	return writeStream(path, stdout, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeStream is writeOutput for what write produces: into a temporary
// file beside path, renamed into place only when write succeeded.
func writeStream(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return write(stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// auditClient calls a server's audit API.
type auditClient struct {
	base, token string
	http        *http.Client
}

// get returns the body of GET path?query, and the response headers.
func (c *auditClient) get(ctx context.Context, path string, query url.Values) ([]byte, http.Header, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	return c.do(req)
}

// fetch writes the body of GET path?query to w.
func (c *auditClient) fetch(ctx context.Context, w io.Writer, path string, query url.Values) error {
	body, _, err := c.get(ctx, path, query)
	if err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

func (c *auditClient) post(ctx context.Context, path string, body any) ([]byte, http.Header, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req)
}

func (c *auditClient) do(req *http.Request) ([]byte, http.Header, error) {
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("audit API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<30))
	if err != nil {
		return nil, nil, fmt.Errorf("audit API %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		err := fmt.Errorf("audit API %s: %s: %s", req.URL.Path, resp.Status, msg)
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound {
			return nil, nil, &usageError{err}
		}
		return nil, nil, err
	}
	return body, resp.Header, nil
}
