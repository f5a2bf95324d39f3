package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/blob/s3"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/store/sqlite"
)

func auditCmd(getenv config.LookupEnv, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the evidence ledger (read-only)",
	}
	cmd.AddCommand(pubkeyCmd(stdout), verifyCmd(stdout), reindexCmd(stdout),
		populationCmd(getenv, stdout, stderr), sampleCmd(getenv, stdout), exportCmd(getenv, stdout),
		exceptionsCmd(getenv, stdout), coverageCmd(stdout), tokenCmd(stdout))
	return cmd
}

func pubkeyCmd(stdout io.Writer) *cobra.Command {
	var dataDir, keyFile string
	cmd := &cobra.Command{
		Use:   "pubkey",
		Short: "Print the evidence signing key's public key and fingerprint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := readPublicKey(keyFile, dataDir)
			if err != nil {
				return err
			}
			pemBytes, err := evidence.PublicKeyPEM(pub)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%sfingerprint: SHA256:%s\nlog origin: %s\n", pemBytes, evidence.Fingerprint(pub), LedgerOrigin(pub))
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory holding signing-key.pem")
	cmd.Flags().StringVar(&keyFile, "key", "", "signing key file (default DATA_DIR/signing-key.pem)")
	return cmd
}

// openEvidence opens the blob store the records live in: S3 when an
// evidence URL is given (credentials from the standard AWS environment),
// else the data dir's evidence directory, read-only unless writable is set.
func openEvidence(ctx context.Context, dataDir, evidenceURL string, writable bool) (blob.Store, error) {
	switch {
	case evidenceURL != "":
		return s3.Open(ctx, evidenceURL, s3.Options{})
	case writable:
		return fs.Open(filepath.Join(dataDir, "evidence"))
	default:
		return fs.OpenReadOnly(filepath.Join(dataDir, "evidence"))
	}
}

// closeEvidence releases a blob store that holds resources.
func closeEvidence(b blob.Store) error {
	if c, ok := b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func verifyCmd(stdout io.Writer) *cobra.Command {
	var o verifyLedgerOptions
	var pubFile, manifestFile string
	cmd := &cobra.Command{
		Use:   "verify PACKAGE.zip | POPULATION.csv [--manifest FILE] | --data-dir DIR [--since CHECKPOINT] [--save-checkpoint FILE]",
		Short: "Verify an evidence package or the ledger offline; exits non-zero naming the first bad file or record",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				for _, f := range []string{"data-dir", "since", "save-checkpoint", "database-url"} {
					if cmd.Flags().Changed(f) {
						return usage("--%s is for a ledger: give a package or --data-dir, not both", f)
					}
				}
				return verifyFileCmd(args[0], manifestFile, pubFile, stdout)
			}
			if o.databaseURL != "" && (o.evidenceURL == "" || pubFile == "") {
				return usage("--database-url needs --evidence-url (the records in S3) and --pubkey (the key you trust)")
			}
			var err error
			if o.pub, err = ledgerKey(pubFile, o.dataDir); err != nil {
				return err
			}
			return verifyLedgerCmd(cmd.Context(), o, stdout)
		},
	}
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "./data", "data directory to verify")
	cmd.Flags().StringVar(&pubFile, "pubkey", "", "public key to trust: a PEM file as printed by audit pubkey (or, for a package, its SHA256 fingerprint); default: DATA_DIR/signing-key.pem, or the package's own key")
	cmd.Flags().StringVar(&o.evidenceURL, "evidence-url", "", "s3://bucket/prefix?… when the records are in S3 (as CHANGEGATE_EVIDENCE_URL)")
	cmd.Flags().StringVar(&manifestFile, "manifest", "", "a population export's signed manifest (default FILE.manifest.json)")
	cmd.Flags().StringVar(&o.databaseURL, "database-url", "", "postgres://… when the index is in PostgreSQL (as CHANGEGATE_DATABASE_URL; read only); needs --evidence-url and --pubkey")
	cmd.Flags().StringVar(&o.since, "since", "", "a checkpoint verified before (as --save-checkpoint wrote it, or GET /api/v1/checkpoint): check only the records after it and that the log extends it")
	cmd.Flags().StringVar(&o.save, "save-checkpoint", "", "once the ledger verifies, write its latest checkpoint to FILE, for a later --since")
	return cmd
}

// verifyLedgerOptions are audit verify's flags for a ledger.
type verifyLedgerOptions struct {
	dataDir, evidenceURL string
	databaseURL          string // the index in PostgreSQL, not the data dir
	pub                  ed25519.PublicKey
	since, save          string // checkpoint files
}

// verifyLedgerCmd verifies a data dir's ledger, whole or from a trusted
// checkpoint on.
func verifyLedgerCmd(ctx context.Context, o verifyLedgerOptions, stdout io.Writer) error {
	origin := LedgerOrigin(o.pub)
	var trusted []byte
	if o.since != "" {
		var err error
		if trusted, err = readCheckpointFile(o.since); err != nil {
			return err
		}
	}
	blobs, err := openEvidence(ctx, o.dataDir, o.evidenceURL, false)
	if err != nil {
		return err
	}
	defer closeEvidence(blobs)
	index, err := openReadIndex(ctx, o.dataDir, o.databaseURL)
	if err != nil {
		return err
	}
	defer index.close()
	var report *evidence.Report
	if trusted == nil {
		report, err = evidence.Verify(ledger.Source(ctx, blobs, index.rowsFrom(0)), o.pub, origin)
	} else {
		report, err = verifySince(ctx, blobs, index, o, trusted)
	}
	var bad *evidence.VerifyError
	if errors.As(err, &bad) {
		return fmt.Errorf("ledger does not verify: %w", bad)
	}
	if err != nil {
		return err
	}
	if err := saveCheckpoint(o.save, report, trusted); err != nil {
		return err
	}
	return printVerified(stdout, report, o.pub)
}

// verifySince is the incremental verify from the trusted checkpoint.
func verifySince(ctx context.Context, blobs blob.Store, vi *readIndex, o verifyLedgerOptions, trusted []byte) (*evidence.Report, error) {
	origin := LedgerOrigin(o.pub)
	cp, err := evidence.TrustedCheckpoint(trusted, o.pub, origin)
	if err != nil {
		return nil, fmt.Errorf("--since %s: %w", o.since, err)
	}
	index := vi.reader
	size, err := index.Size(ctx)
	if err != nil {
		return nil, err
	}
	leaves, err := index.LeafHashes(ctx, min(cp.Size, size))
	if err != nil {
		return nil, err
	}
	since := evidence.Since{Checkpoint: cp, Leaves: leaves, Expect: size - min(cp.Size, size),
		Prior: func(id string) (int64, string, bool, error) { return index.ExceptionOf(ctx, id) }}
	src := ledger.SourceFrom(ctx, blobs, vi.rowsFrom(cp.Size), cp.Size)
	return evidence.VerifySince(src, o.pub, origin, since)
}

// printVerified says what verified.
func printVerified(stdout io.Writer, r *evidence.Report, pub ed25519.PublicKey) error {
	if r.Since > 0 {
		_, err := fmt.Fprintf(stdout, "ok: %d records after trusted checkpoint %d, %d checkpoints, tree size %d extends it, root %x, key SHA256:%s\n",
			r.Records, r.Since, r.Checkpoints, r.Size, r.Root, evidence.Fingerprint(pub))
		return err
	}
	_, err := fmt.Fprintf(stdout, "ok: %d records, %d checkpoints, tree size %d, root %x, key SHA256:%s\n",
		r.Records, r.Checkpoints, r.Size, r.Root, evidence.Fingerprint(pub))
	return err
}

// readCheckpointFile reads a checkpoint an auditor kept: the signed note
// itself, or JSON holding it as "note" (a manifest's checkpoint) or as
// "checkpoint"."note" (GET /api/v1/checkpoint).
func readCheckpointFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("--since %s: %d bytes is too large for a checkpoint", path, len(b))
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return b, nil
	}
	var j struct {
		Note       string `json:"note"`
		Checkpoint struct {
			Note string `json:"note"`
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("--since %s: not a signed checkpoint nor JSON holding one: %w", path, err)
	}
	note := cmp.Or(j.Note, j.Checkpoint.Note)
	if note == "" {
		return nil, fmt.Errorf("--since %s: the JSON holds no checkpoint note", path)
	}
	return []byte(note), nil
}

// saveCheckpoint writes the latest checkpoint that verified to path, in
// place only once it is whole. With no new checkpoint since the trusted
// one, that is the trusted one.
func saveCheckpoint(path string, r *evidence.Report, trusted []byte) error {
	if path == "" {
		return nil
	}
	note := r.Checkpoint
	if note == nil {
		note = trusted
	}
	if note == nil {
		return fmt.Errorf("--save-checkpoint: the ledger has no checkpoint yet")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, note, 0o644); err != nil {
		return fmt.Errorf("--save-checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--save-checkpoint: %w", err)
	}
	return nil
}

// readPublicKey derives the public key from the signing key file.
func readPublicKey(keyFile, dataDir string) (ed25519.PublicKey, error) {
	if keyFile == "" {
		keyFile = filepath.Join(dataDir, "signing-key.pem")
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("signing key %s: no PEM block", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T is not ed25519", keyFile, k)
	}
	return priv.Public().(ed25519.PublicKey), nil
}

// ledgerKey is the public key a ledger command trusts: pubFile as audit
// pubkey prints it, or, when none is given, the data dir's signing key's.
func ledgerKey(pubFile, dataDir string) (ed25519.PublicKey, error) {
	if pubFile != "" {
		return readPublicKeyPEM(pubFile)
	}
	return readPublicKey("", dataDir)
}

// readPublicKeyPEM reads a public key as audit pubkey prints it.
func readPublicKeyPEM(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("public key %s: no PEM block", path)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key %s: %T is not ed25519", path, k)
	}
	return pub, nil
}

func reindexCmd(stdout io.Writer) *cobra.Command {
	var dataDir, evidenceURL, databaseURL, pubFile string
	cmd := &cobra.Command{
		Use:   "reindex --data-dir DIR | --database-url URL --evidence-url URL --pubkey FILE",
		Short: "Rebuild the ledger index from the signed records (the servers must be stopped)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if databaseURL != "" && (evidenceURL == "" || pubFile == "") {
				return usage("--database-url needs --evidence-url (the records in S3) and --pubkey (the key that signed them)")
			}
			pub, err := ledgerKey(pubFile, dataDir)
			if err != nil {
				return err
			}
			index, done, err := openReindexTarget(cmd.Context(), dataDir, databaseURL)
			if err != nil {
				return err
			}
			defer done()
			// Writable, so that what a crashed server journaled is
			// replayed before the records are read.
			blobs, err := openEvidence(cmd.Context(), dataDir, evidenceURL, true)
			if err != nil {
				return err
			}
			defer closeEvidence(blobs)
			n, err := ledger.Reindex(cmd.Context(), blobs, index, pub)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "reindexed %d records\n", n)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory")
	cmd.Flags().StringVar(&evidenceURL, "evidence-url", "", "s3://bucket/prefix?… when the records are in S3 (as CHANGEGATE_EVIDENCE_URL)")
	cmd.Flags().StringVar(&databaseURL, "database-url", "", "postgres://… to rebuild the index the replicas share (as CHANGEGATE_DATABASE_URL); needs --evidence-url and --pubkey")
	cmd.Flags().StringVar(&pubFile, "pubkey", "", "public key that signed the records, as audit pubkey prints it (default: DATA_DIR/signing-key.pem)")
	return cmd
}

// openReindexTarget opens the index to rebuild, refusing while a server
// writes it. The data dir's lock refuses beside a running server. In
// PostgreSQL, a replica seen alive refuses, and the ledger's writer lock is
// held until done, so that a replica starting meanwhile waits for it.
func openReindexTarget(ctx context.Context, dataDir, databaseURL string) (ledger.Rebuilder, func(), error) {
	if databaseURL == "" {
		s, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
		if err != nil {
			return nil, nil, err
		}
		return s.Ledger(), func() { s.Close() }, nil
	}
	if err := postgres.CheckURL(databaseURL); err != nil {
		return nil, nil, usage("--database-url: %v", err)
	}
	pg, err := postgres.Open(ctx, databaseURL, postgres.Options{MaxConns: 4})
	if err != nil {
		return nil, nil, fmt.Errorf("--database-url: %w", err)
	}
	unlock, err := pg.LedgerWriters().Lock(ctx)
	if err != nil {
		pg.Close()
		return nil, nil, fmt.Errorf("ledger: take the writer lock: %w", err)
	}
	done := func() { unlock(); pg.Close() }
	live, err := pg.LiveReplicas(ctx, 2*queue.HeartbeatEvery)
	if err == nil && len(live) > 0 {
		err = fmt.Errorf("replicas are running on this database (%s): stop them first, as reindex rebuilds the index they write", strings.Join(live, ", "))
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return pg.Ledger(), done, nil
}
