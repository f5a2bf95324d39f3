package ledger_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/changegate/changegate/internal/evidence"
)

// BenchmarkAppend measures durable appends: sign, write the record blobs
// and the checkpoint blob (fsync'd files and directories), and index the
// records, with 1 to 64 callers appending at once (the archive jobs of a
// busy server). Concurrent appends share commits.
//
//	go test ./internal/ledger -run '^$' -bench Append -benchtime 2000x
func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			e := newEnvTB(b)
			l := e.open(b)
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if _, err := l.Append(b.Context(), record(int(i), evidence.Standard)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			cps := 0
			e.blobs.List(b.Context(), "checkpoints/", func(string) error { cps++; return nil })
			b.ReportMetric(float64(b.N)/float64(cps), "records/checkpoint")
		})
	}
}
