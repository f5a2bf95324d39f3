package evidence

import (
	"crypto/ed25519"
	"runtime"
	"sync"
	"testing"
	"time"
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
	s, l, _ := benchLedger(b, n)
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

// BenchmarkVerifyAgainstFloor measures a full Verify of 100k records with
// one checkpoint at the end, beside its floor in the same run: checking
// each record's envelope signature with crypto/ed25519 on every CPU, the
// messages prepared beforehand. Report: ns/record of each, and full/floor.
//
//	go test ./internal/evidence -run '^$' -bench VerifyAgainstFloor -benchtime 3x
func BenchmarkVerifyAgainstFloor(b *testing.B) {
	const n = 100_000
	s, l, envs := benchLedger(b, n)
	root, _ := l.log.Root(n)
	cp, err := s.SignCheckpoint(testOrigin, n, root)
	if err != nil {
		b.Fatal(err)
	}
	l.src.checkpoints = []StoredCheckpoint{{Size: n, Data: cp}}
	v, err := NewVerifier(s.Public())
	if err != nil {
		b.Fatal(err)
	}
	msgs, sigs := make([][]byte, n), make([][]byte, n)
	for i, env := range envs {
		_, o, err := v.openEnvelope(nil, env)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i], sigs[i] = o.msg, o.sigs[0]
	}
	var floor, full time.Duration
	for b.Loop() {
		start := time.Now()
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					if !ed25519.Verify(s.Public(), msgs[i], sigs[i]) {
						panic("a signature does not verify")
					}
				}
			})
		}
		wg.Wait()
		floor += time.Since(start)
		start = time.Now()
		rep, err := Verify(l.src, s.Public(), testOrigin)
		if err != nil || rep.Records != n {
			b.Fatalf("verify: %v %+v", err, rep)
		}
		full += time.Since(start)
	}
	b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N*n), "floor-ns/record")
	b.ReportMetric(float64(full.Nanoseconds())/float64(b.N*n), "verify-ns/record")
	b.ReportMetric(float64(full)/float64(floor), "verify/floor")
}

// benchLedger is a ledger of n signed sample records, held in memory, and
// their envelopes.
func benchLedger(b *testing.B, n int) (*Signer, *ledger, [][]byte) {
	b.Helper()
	s := testSigner(b, 1)
	recs, envs := signAll(b, s, n)
	l := newLedger(s, 0)
	for i := range n {
		l.appendEnvelope(b, recs[i], envs[i])
	}
	return s, l, envs
}
