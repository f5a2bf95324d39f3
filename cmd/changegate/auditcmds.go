package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/web"
)

func populationCmd(getenv config.LookupEnv, stdout, stderr io.Writer) *cobra.Command {
	var lf ledgerFlags
	var qf queryFlags
	var format, out, manifestOut string
	cmd := &cobra.Command{
		Use:   "population --from DATE --to DATE",
		Short: "Export the population of production changes of a period, with its signed manifest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := qf.query()
			if err != nil {
				return err
			}
			if !slices.Contains(audit.Formats, format) {
				return &audit.FlagError{Flag: "format", Problem: fmt.Sprintf("%q is not one of csv, json, xlsx", format)}
			}
			if format == "xlsx" && (out == "" || out == "-") {
				return usage("--format xlsx needs --out FILE")
			}
			if lf.server == "" {
				return streamPopulation(cmd, &lf, q, format, out, manifestOut, stdout, stderr)
			}
			file, manifest, err := remotePopulation(cmd, &lf, &qf, format, getenv)
			if err != nil {
				return err
			}
			return writePopulation(file, manifest, out, manifestOut, stdout, stderr)
		},
	}
	lf.add(cmd)
	qf.add(cmd)
	cmd.Flags().StringVar(&format, "format", "csv", "csv, json or xlsx")
	cmd.Flags().StringVar(&out, "out", "-", "file to write (default stdout)")
	cmd.Flags().StringVar(&manifestOut, "manifest", "", "where to write the signed manifest (default OUT.manifest.json)")
	return cmd
}

func remotePopulation(cmd *cobra.Command, lf *ledgerFlags, qf *queryFlags, format string, getenv config.LookupEnv) ([]byte, []byte, error) {
	client, err := lf.remote(getenv)
	if err != nil {
		return nil, nil, err
	}
	v := qf.values()
	v.Set("format", format)
	body, h, err := client.get(cmd.Context(), "/api/v1/changes", v)
	if err != nil {
		return nil, nil, err
	}
	manifest, err := base64.StdEncoding.DecodeString(h.Get(web.ManifestHeader))
	if err != nil || len(manifest) == 0 {
		return nil, nil, fmt.Errorf("audit API: the population came without its manifest")
	}
	return body, manifest, nil
}

// streamPopulation writes a data dir's population straight to its file,
// which appears whole or not at all, then the manifest beside it.
func streamPopulation(cmd *cobra.Command, lf *ledgerFlags, q audit.Query, format, out, manifestOut string, stdout, stderr io.Writer) error {
	svc, done, err := lf.local(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	cp, err := svc.Latest(cmd.Context())
	if err != nil {
		return err
	}
	var manifest []byte
	err = writeStream(out, stdout, func(w io.Writer) error {
		manifest, err = svc.WritePopulation(cmd.Context(), w, q, cp, format)
		return err
	})
	if err != nil {
		return err
	}
	return writePopulation(nil, manifest, out, manifestOut, io.Discard, stderr)
}

func manifestOrDefault(out, manifestOut string) string {
	if manifestOut == "" && out != "" && out != "-" {
		return out + ".manifest.json"
	}
	return manifestOut
}

// writePopulation writes the file (unless nil) and its manifest beside it.
func writePopulation(file, manifest []byte, out, manifestOut string, stdout, stderr io.Writer) error {
	manifestOut = manifestOrDefault(out, manifestOut)
	if manifestOut != "" {
		if err := writeOutput(manifestOut, manifest, stdout); err != nil {
			return err
		}
	}
	if file != nil {
		if err := writeOutput(out, file, stdout); err != nil {
			return err
		}
	}
	if manifestOut == "" {
		fmt.Fprintln(stderr, "changegate: the signed manifest was not written: give --out FILE or --manifest FILE to keep it")
		return nil
	}
	if out == "" || out == "-" {
		out = "standard output"
	}
	fmt.Fprintf(stderr, "changegate: wrote %s and its signed manifest %s\n", out, manifestOut)
	return nil
}

func sampleCmd(getenv config.LookupEnv, stdout io.Writer) *cobra.Command {
	var lf ledgerFlags
	var qf queryFlags
	var req audit.SampleRequest
	var out string
	cmd := &cobra.Command{
		Use:   "sample --from DATE --to DATE (--size N | --frequency F) (--seed S | --auditor-nonce N --checkpoint SIZE) --out FILE.zip",
		Short: "Draw a reproducible sample of a period's population and write its evidence package",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := qf.query()
			if err != nil {
				return err
			}
			req.Query = q
			if err := req.Validate(); err != nil {
				return err
			}
			if out == "" {
				return usage("--out FILE.zip is required")
			}
			return writePackage(out, stdout, func(w io.Writer) error { return samplePackage(cmd, &lf, &qf, req, getenv, w) })
		},
	}
	lf.add(cmd)
	qf.add(cmd)
	cmd.Flags().IntVar(&req.Size, "size", 0, "sample size (overrides --frequency)")
	cmd.Flags().StringVar(&req.Frequency, "frequency", "", "how often the control runs, for the default size: "+strings.Join(audit.Frequencies, ", "))
	cmd.Flags().StringVar(&req.Seed, "seed", "", "the seed that ranks the records (HMAC-SHA256 key)")
	cmd.Flags().StringVar(&req.Nonce, "auditor-nonce", "", "a nonce you pick after holding the population's checkpoint: the seed is SHA-256(root ‖ nonce)")
	cmd.Flags().Uint64Var(&req.CheckpointSize, "checkpoint", 0, "size of the checkpoint in the population manifest you hold (required with --auditor-nonce)")
	cmd.Flags().BoolVar(&req.IncludeExceptions, "include-exceptions", false, "add every record with an exception on top of the random sample")
	cmd.Flags().StringVar(&out, "out", "", "the package to write (FILE.zip)")
	return cmd
}

// writePackage writes the package that build streams to out, which
// appears only when the whole package was written.
func writePackage(out string, stdout io.Writer, build func(io.Writer) error) error {
	if err := writeStream(out, stdout, build); err != nil || out == "-" {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", out, st.Size())
	return err
}

func samplePackage(cmd *cobra.Command, lf *ledgerFlags, qf *queryFlags, req audit.SampleRequest, getenv config.LookupEnv, w io.Writer) error {
	client, err := lf.remote(getenv)
	if err != nil {
		return err
	}
	if client != nil {
		body, _, err := client.post(cmd.Context(), "/api/v1/samples", web.SampleWire{
			From: qf.from, To: qf.to, Repo: qf.repo, Types: qf.types, Size: req.Size, Frequency: req.Frequency,
			Seed: req.Seed, Nonce: req.Nonce, Checkpoint: req.CheckpointSize, IncludeExceptions: req.IncludeExceptions,
		})
		if err != nil {
			return err
		}
		var created struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
			return fmt.Errorf("audit API: no sample id in %q", body)
		}
		return client.fetch(cmd.Context(), w, "/api/v1/samples/"+url.PathEscape(created.ID)+"/package", nil)
	}
	return lf.withLocal(cmd.Context(), func(svc *audit.Service) error { return svc.WriteSample(cmd.Context(), w, req) })
}

func exportCmd(getenv config.LookupEnv, stdout io.Writer) *cobra.Command {
	var lf ledgerFlags
	var ids []string
	var out string
	cmd := &cobra.Command{
		Use:   "export --id ID… --out FILE.zip",
		Short: "Write the evidence package of chosen records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(ids) == 0 {
				return &audit.FlagError{Flag: "id", Problem: "is required: name at least one record"}
			}
			if out == "" {
				return usage("--out FILE.zip is required")
			}
			return writePackage(out, stdout, func(w io.Writer) error { return exportPackage(cmd, &lf, ids, getenv, w) })
		},
	}
	lf.add(cmd)
	cmd.Flags().StringSliceVar(&ids, "id", nil, "record id (repeat, or comma-separated)")
	cmd.Flags().StringVar(&out, "out", "", "the package to write (FILE.zip)")
	return cmd
}

func exportPackage(cmd *cobra.Command, lf *ledgerFlags, ids []string, getenv config.LookupEnv, w io.Writer) error {
	client, err := lf.remote(getenv)
	if err != nil {
		return err
	}
	if client != nil {
		return client.fetch(cmd.Context(), w, "/api/v1/export", url.Values{"id": ids})
	}
	return lf.withLocal(cmd.Context(), func(svc *audit.Service) error { return svc.WriteExport(cmd.Context(), w, ids) })
}

func exceptionsCmd(getenv config.LookupEnv, stdout io.Writer) *cobra.Command {
	var lf ledgerFlags
	var qf queryFlags
	var state, format string
	cmd := &cobra.Command{
		Use:   "exceptions --from DATE --to DATE [--state open|closed|late]",
		Short: "List the exceptions of a period: bypasses, direct pushes, emergency changes, unrecorded deployments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := qf.query()
			if err != nil {
				return err
			}
			if state != "" && !slices.Contains(audit.ExceptionStates, state) {
				return &audit.FlagError{Flag: "state", Problem: fmt.Sprintf("%q is not one of open, closed, late", state)}
			}
			if format != "text" && format != "csv" {
				return &audit.FlagError{Flag: "format", Problem: fmt.Sprintf("%q is not one of text, csv", format)}
			}
			p, err := exceptionRows(cmd, &lf, &qf, q, state, getenv)
			if err != nil {
				return err
			}
			if format == "csv" {
				return p.WriteCSV(stdout)
			}
			return writeExceptions(stdout, p)
		},
	}
	lf.add(cmd)
	qf.add(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only exceptions in this state: open (open or late), closed, late")
	cmd.Flags().StringVar(&format, "format", "text", "text or csv")
	return cmd
}

func exceptionRows(cmd *cobra.Command, lf *ledgerFlags, qf *queryFlags, q audit.Query, state string, getenv config.LookupEnv) (*audit.Population, error) {
	client, err := lf.remote(getenv)
	if err != nil {
		return nil, err
	}
	if client != nil {
		v := qf.values()
		v.Set("format", "csv")
		if state != "" {
			v.Set("state", state)
		}
		body, _, err := client.get(cmd.Context(), "/api/v1/exceptions", v)
		if err != nil {
			return nil, err
		}
		return audit.ReadCSV(bytes.NewReader(body))
	}
	svc, done, err := lf.local(cmd.Context())
	if err != nil {
		return nil, err
	}
	defer done()
	return svc.Exceptions(cmd.Context(), q, state)
}

// writeExceptions prints the report: one line per exception, then "n of N".
func writeExceptions(w io.Writer, p *audit.Population) error {
	for _, r := range p.Rows {
		e := r.Exception
		due := ""
		if !e.DueAt.IsZero() {
			due = " due " + e.DueAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		subject := r.Repo
		if r.PR != 0 {
			subject += "#" + strconv.Itoa(r.PR)
		}
		if _, err := fmt.Fprintf(w, "%s  %-11s %-8s %-7s %s%s  %s  (record %s, seq %d)\n",
			r.EventTime, r.ChangeType, e.Kind, r.ExceptionState, subject, due, e.Reason, r.ID, r.Seq); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d exceptions\n", len(p.Rows))
	return err
}

// verifyFileCmd verifies an evidence package, or a population export
// against its signed manifest.
func verifyFileCmd(path, manifest, pubkey string, stdout io.Writer) error {
	trust, err := trustedKey(pubkey)
	if err != nil {
		return err
	}
	if isZip(path) {
		return verifyPackageCmd(path, trust, stdout)
	}
	if manifest == "" {
		manifest = path + ".manifest.json"
	}
	file, err := os.ReadFile(path)
	if err != nil {
		return usage("%v", err)
	}
	signed, err := os.ReadFile(manifest)
	if err != nil {
		return usage("%v (give the population's signed manifest with --manifest)", err)
	}
	pm, err := audit.VerifyPopulation(file, signed, trust)
	if err != nil {
		return fmt.Errorf("population does not verify: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "ok: population of %d rows (%s to %s), checkpoint %d root %s, key %s\n",
		pm.Rows, pm.Query.From, pm.Query.To, pm.Checkpoint.Size, pm.Checkpoint.Root, pm.PublicKey.Fingerprint)
	if err == nil && trust.Public == nil && trust.Fingerprint == "" {
		_, err = fmt.Fprintln(stdout, "note: checked against the key the manifest names; compare its fingerprint with one you hold, or pass --pubkey")
	}
	return err
}

// isZip says whether path is meant as a package: named .zip, or starting
// like a zip archive.
func isZip(path string) bool {
	if strings.EqualFold(filepath.Ext(path), ".zip") {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return true // let the package reader say what is wrong
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err != nil || string(magic[:]) == "PK\x03\x04" || string(magic[:]) == "PK\x05\x06"
}

func verifyPackageCmd(path string, trust audit.TrustedKey, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return usage("%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	exportGC()
	rep, err := audit.VerifyPackage(f, st.Size(), trust)
	if err != nil {
		return fmt.Errorf("package does not verify: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "ok: %s package, %d records of a population of %d, checkpoint %d root %s, key %s\n",
		rep.Kind, rep.Records, rep.Population, rep.Checkpoint.Size, rep.Checkpoint.Root, rep.Fingerprint)
	if err == nil && rep.KeyFromPackage {
		_, err = fmt.Fprintln(stdout, "note: checked against the package's own key; compare its fingerprint with one you hold, or pass --pubkey")
	}
	return err
}

// trustedKey reads --pubkey: a PEM file, or a fingerprint.
func trustedKey(s string) (audit.TrustedKey, error) {
	if s == "" {
		return audit.TrustedKey{}, nil
	}
	if _, err := os.Stat(s); err == nil {
		pub, err := readPublicKeyPEM(s)
		if err != nil {
			return audit.TrustedKey{}, usage("--pubkey: %v", err)
		}
		return audit.TrustedKey{Public: pub}, nil
	}
	fp := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "SHA256:"), "sha256:"))
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		return audit.TrustedKey{}, usage("--pubkey %q is neither a PEM file nor a SHA256 fingerprint", s)
	}
	return audit.TrustedKey{Fingerprint: fp}, nil
}
