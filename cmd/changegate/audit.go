package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/blob/s3"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
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
	var dataDir, pubFile, evidenceURL, manifestFile string
	cmd := &cobra.Command{
		Use:   "verify PACKAGE.zip | POPULATION.csv [--manifest FILE] | --data-dir DIR",
		Short: "Verify an evidence package or the ledger offline; exits non-zero naming the first bad file or record",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if cmd.Flags().Changed("data-dir") {
					return usage("give a package or --data-dir, not both")
				}
				return verifyFileCmd(args[0], manifestFile, pubFile, stdout)
			}
			var pub ed25519.PublicKey
			var err error
			if pubFile != "" {
				pub, err = readPublicKeyPEM(pubFile)
			} else {
				pub, err = readPublicKey("", dataDir)
			}
			if err != nil {
				return err
			}
			blobs, err := openEvidence(cmd.Context(), dataDir, evidenceURL, false)
			if err != nil {
				return err
			}
			defer closeEvidence(blobs)
			db, err := sqlite.OpenReadOnly(dataDir)
			if err != nil {
				return err
			}
			defer db.Close()
			report, err := evidence.Verify(ledger.Source(cmd.Context(), blobs, sqlite.LedgerRows(db)), pub, LedgerOrigin(pub))
			var bad *evidence.VerifyError
			if errors.As(err, &bad) {
				return fmt.Errorf("ledger does not verify: %w", bad)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "ok: %d records, %d checkpoints, tree size %d, root %x, key SHA256:%s\n",
				report.Records, report.Checkpoints, report.Size, report.Root, evidence.Fingerprint(pub))
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory to verify")
	cmd.Flags().StringVar(&pubFile, "pubkey", "", "public key to trust: a PEM file as printed by audit pubkey (or, for a package, its SHA256 fingerprint); default: DATA_DIR/signing-key.pem, or the package's own key")
	cmd.Flags().StringVar(&evidenceURL, "evidence-url", "", "s3://bucket/prefix?… when the records are in S3 (as CHANGEGATE_EVIDENCE_URL)")
	cmd.Flags().StringVar(&manifestFile, "manifest", "", "a population export's signed manifest (default FILE.manifest.json)")
	return cmd
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
	var dataDir, evidenceURL string
	cmd := &cobra.Command{
		Use:   "reindex --data-dir DIR",
		Short: "Rebuild the ledger index from the signed records (the server must be stopped)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := readPublicKey("", dataDir)
			if err != nil {
				return err
			}
			// Open takes the data dir's lock: reindexing beside a running
			// server is refused.
			store, err := sqlite.Open(cmd.Context(), dataDir, sqlite.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			// Writable, so that what a crashed server journaled is
			// replayed before the records are read.
			blobs, err := openEvidence(cmd.Context(), dataDir, evidenceURL, true)
			if err != nil {
				return err
			}
			defer closeEvidence(blobs)
			n, err := ledger.Reindex(cmd.Context(), blobs, store.Ledger(), pub)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "reindexed %d records\n", n)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory")
	cmd.Flags().StringVar(&evidenceURL, "evidence-url", "", "s3://bucket/prefix?… when the records are in S3 (as CHANGEGATE_EVIDENCE_URL)")
	return cmd
}
