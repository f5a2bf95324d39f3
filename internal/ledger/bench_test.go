package ledger_test

import (
	"testing"

	"github.com/changegate/changegate/internal/evidence"
)

// BenchmarkAppend measures durable appends: sign, write the record blob and
// the checkpoint blob (fsync'd files), and index the record (synced commit).
//
//	go test ./internal/ledger -run '^$' -bench Append -benchtime 500x
func BenchmarkAppend(b *testing.B) {
	e := newEnvTB(b)
	l := e.open(b)
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.Append(b.Context(), record(i, evidence.Standard)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
