package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/blob/s3"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/evidence"
)

// evidenceCmd prepares what the scale-out configuration needs before its
// first replica starts: a signing key every replica shares, and the
// bucket with Object Lock.
func evidenceCmd(getenv config.LookupEnv, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Prepare the evidence ledger's signing key and S3 bucket (for several replicas)",
	}
	cmd.AddCommand(keygenCmd(stdout), createBucketCmd(getenv, stdout))
	return cmd
}

func keygenCmd(stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Generate the ledger's Ed25519 signing key into FILE (0600), for replicas to share; never replaces one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usage("--out FILE is required")
			}
			key, err := evidence.CreateKey(out)
			if errors.Is(err, fs.ErrExist) {
				return usage("%s exists: changegate never replaces a signing key, as the records it signed are checked against it", out)
			}
			if err != nil {
				return err
			}
			pub := key.Public().(ed25519.PublicKey)
			pemBytes, err := evidence.PublicKeyPEM(pub)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "wrote %s; back it up, and give auditors its public key:\n%sfingerprint: SHA256:%s\n", out, pemBytes, evidence.Fingerprint(pub))
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the key file to create (CHANGEGATE_SIGNING_KEY_FILE of every replica)")
	return cmd
}

func createBucketCmd(getenv config.LookupEnv, stdout io.Writer) *cobra.Command {
	var evidenceURL string
	cmd := &cobra.Command{
		Use:   "create-bucket [--evidence-url URL]",
		Short: "Create the evidence bucket with Object Lock (credentials from the AWS environment); a bucket that has it is left as it is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if evidenceURL == "" {
				evidenceURL, _ = getenv("CHANGEGATE_EVIDENCE_URL")
			}
			if evidenceURL == "" {
				return usage("give --evidence-url s3://BUCKET/PREFIX?retention=… or set CHANGEGATE_EVIDENCE_URL")
			}
			cfg, err := s3.ParseURL(evidenceURL)
			if err != nil {
				return usage("--evidence-url: %v", err)
			}
			created, err := s3.CreateBucket(cmd.Context(), evidenceURL, s3.Options{})
			if err != nil {
				return err
			}
			if created {
				_, err = fmt.Fprintf(stdout, "created bucket %s with Object Lock\n", cfg.Bucket)
			} else {
				_, err = fmt.Fprintf(stdout, "bucket %s exists with Object Lock: left as it is\n", cfg.Bucket)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&evidenceURL, "evidence-url", "", "s3://bucket/prefix?retention=… (default CHANGEGATE_EVIDENCE_URL)")
	return cmd
}
