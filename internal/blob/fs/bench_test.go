package fs_test

import (
	"fmt"
	"testing"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/fs"
)

// BenchmarkPutAll stores batches of 3 KB blobs (the size of a change
// record's envelope), durably; batch=1 is a plain Put.
//
//	go test ./internal/blob/fs -run '^$' -bench PutAll -benchtime 1000x
func BenchmarkPutAll(b *testing.B) {
	for _, n := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s, err := fs.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 3000)
			batch := make([]blob.Entry, 0, n)
			for i := range b.N {
				batch = append(batch, blob.Entry{Key: fmt.Sprintf("records/%012d", i), Data: data})
				if len(batch) == n || i == b.N-1 {
					if err := s.PutAll(b.Context(), batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blobs/s")
		})
	}
}
