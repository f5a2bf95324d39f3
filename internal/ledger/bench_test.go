package ledger_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/changegate/changegate/internal/evidence"
)

// BenchmarkAppend measures durable appends: sign, journal and link the
// records' bundle and the checkpoint blob, and index the records, with 1 to 64
// callers appending at once (the archive jobs of a busy server). Concurrent
// appends share commits.
//
// The disks of small cloud machines vary by several times from minute to
// minute, so each run starts with two baselines on the same disk: durable
// single-file writes (temporary file, fsync, link, directory fsync), the
// cost of the simplest durable append; and file creations without any
// sync, the ceiling of any layout with a file per record. Compare
// appends/s with them.
//
//	go test ./internal/ledger -run '^$' -bench Append -benchtime 3000x
func BenchmarkAppend(b *testing.B) {
	b.Run("baseline=durable-file", func(b *testing.B) {
		dir := b.TempDir()
		data := make([]byte, 5280) // an envelope's size
		for i := range b.N {
			if err := durableWrite(dir, fmt.Sprintf("r%d", i), data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("baseline=create", func(b *testing.B) {
		dir := b.TempDir()
		data := make([]byte, 5280)
		for i := range b.N {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d", i)), data, 0o444); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	})
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
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func durableWrite(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
