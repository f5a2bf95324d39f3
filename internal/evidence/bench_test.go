package evidence

import (
	"runtime"
	"sync"
	"testing"
)

// BenchmarkAppend is the work of one append, without storage: sign the
// record, add it to the log, and sign a checkpoint of the new root.
func BenchmarkAppend(b *testing.B) {
	s := testSigner(b, 1)
	l := NewLog()
	recs := make([]*Record, 1024)
	for i := range recs {
		recs[i] = sampleRecord(i)
	}
	var size int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		env, err := s.Sign(recs[i%len(recs)])
		if err != nil {
			b.Fatal(err)
		}
		size += len(env)
		l.Append(env)
		root, err := l.Root(l.Size())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SignCheckpoint(testOrigin, l.Size(), root); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(size)/float64(i), "envelope-bytes")
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkVerify100k verifies a ledger of 100,000 records with a
// checkpoint after every append, as the server writes it.
func BenchmarkVerify100k(b *testing.B) {
	const n = 100_000
	s := testSigner(b, 1)
	recs, envs := signAll(b, s, n)
	l := newLedger(s, 0)
	for i := range n {
		l.appendEnvelope(b, recs[i], envs[i])
	}
	// A checkpoint for every size, signed on every CPU: the tree is only
	// read from here on.
	l.src.checkpoints = make([]StoredCheckpoint, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				size := uint64(i + 1)
				root, _ := l.log.Root(size)
				cp, err := s.SignCheckpoint(testOrigin, size, root)
				if err != nil {
					panic(err)
				}
				l.src.checkpoints[i] = StoredCheckpoint{Size: size, Data: cp}
			}
		})
	}
	wg.Wait()
	runs := 0
	for b.Loop() {
		runs++
		rep, err := Verify(l.src, s.Public(), testOrigin)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Records != n {
			b.Fatalf("verified %d records", rep.Records)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(runs*n), "ns/record")
}
