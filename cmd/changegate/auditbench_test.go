package main

import (
	"bytes"
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
		zip, err := svc.Sample(b.Context(), audit.SampleRequest{Query: benchMonth, Size: 60, Seed: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(zip))/1e6, "MB")
	}
}

// BenchmarkAuditVerifyPackage: verify of that package, offline.
func BenchmarkAuditVerifyPackage(b *testing.B) {
	svc := benchService(b)
	zip, err := svc.Sample(b.Context(), audit.SampleRequest{Query: benchMonth, Size: 60, Seed: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := audit.VerifyPackage(bytes.NewReader(zip), int64(len(zip)), audit.TrustedKey{Public: svc.Public()}); err != nil {
			b.Fatal(err)
		}
	}
}
