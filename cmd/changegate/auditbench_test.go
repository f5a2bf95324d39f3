package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/audit"
)

// The audit benchmarks run on a ledger TestBuildBenchLedger built (one
// merge every 30 s from 2026-01-01, so January holds about 86k records):
//
//	CHANGEGATE_BENCH_LEDGER=/var/tmp/cg1m go test ./cmd/changegate -run '^$' -bench Audit -benchtime 3x
//
// Each reads the data dir as the CLI does: read-only, with the index and
// the evidence directory.
func benchService(b *testing.B) *audit.Service {
	dir := os.Getenv("CHANGEGATE_BENCH_LEDGER")
	if dir == "" {
		b.Skip("set CHANGEGATE_BENCH_LEDGER=DIR (built by TestBuildBenchLedger) for the audit benchmarks")
	}
	lf := ledgerFlags{dataDir: dir}
	svc, done, err := lf.local(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(done)
	return svc
}

var benchMonth = audit.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}

// BenchmarkAuditPopulation: a month of the population to CSV, with its
// signed manifest, from a fresh service each time (as the CLI runs).
func BenchmarkAuditPopulation(b *testing.B) {
	for b.Loop() {
		svc := benchService(b)
		cp, err := svc.Latest(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		file, _, err := svc.ExportPopulation(b.Context(), benchMonth, cp, "csv")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(bytes.Count(file, []byte("\r\n"))-1), "rows")
	}
}

// BenchmarkAuditSample: a sample of 60 of the month and its package.
func BenchmarkAuditSample(b *testing.B) {
	for b.Loop() {
		svc := benchService(b)
		pkg, err := svc.Sample(b.Context(), audit.SampleRequest{Query: benchMonth, Size: 60, Seed: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(pkg))/1e6, "MB")
	}
}

// BenchmarkAuditVerifyPackage: verify of that package, offline.
func BenchmarkAuditVerifyPackage(b *testing.B) {
	svc := benchService(b)
	pkg, err := svc.Sample(b.Context(), audit.SampleRequest{Query: benchMonth, Size: 60, Seed: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := audit.VerifyPackage(bytes.NewReader(pkg), int64(len(pkg)), audit.TrustedKey{Public: svc.Public()}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditBaselineScan is the population's floor in the same run:
// the month's rows read from the index without being decoded or written.
func BenchmarkAuditBaselineScan(b *testing.B) {
	for b.Loop() {
		svc := benchService(b)
		cp, err := svc.Latest(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		n, err := svc.Count(b.Context(), benchMonth, cp)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n), "rows")
	}
}

// BenchmarkAuditBaselineUnzip is verify's floor in the same run: every
// file of the package inflated and hashed, nothing checked.
func BenchmarkAuditBaselineUnzip(b *testing.B) {
	svc := benchService(b)
	pkg, err := svc.Sample(b.Context(), audit.SampleRequest{Query: benchMonth, Size: 60, Seed: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	}
}
