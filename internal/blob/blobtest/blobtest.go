// Package blobtest is the conformance suite for blob.Store. Every
// implementation runs it from its own tests:
//
//	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t) }, blobtest.Options{})
package blobtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/blob"
)

// Options tune the suite for a store's cost.
type Options struct {
	// ListKeys is how many keys the listing test writes; 0 means 120. S3
	// stores pass more than one page (1000 keys) to exercise pagination.
	ListKeys int
}

// Run runs the suite. newStore returns an empty store, fresh for each
// subtest; subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store, o Options) {
	t.Helper()
	if o.ListKeys <= 0 {
		o.ListKeys = 120
	}
	t.Run("RoundTrip", func(t *testing.T) { t.Parallel(); testRoundTrip(t, newStore(t)) })
	t.Run("Idempotent", func(t *testing.T) { t.Parallel(); testIdempotent(t, newStore(t)) })
	t.Run("Exists", func(t *testing.T) { t.Parallel(); testExists(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { t.Parallel(); testNotFound(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { t.Parallel(); testList(t, newStore(t), o.ListKeys) })
	t.Run("InvalidKeys", func(t *testing.T) { t.Parallel(); testInvalidKeys(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { t.Parallel(); testConcurrent(t, newStore(t)) })
	t.Run("PutAll", func(t *testing.T) { t.Parallel(); testPutAll(t, newStore(t)) })
}

func allBytes() []byte {
	b := make([]byte, 0, 512)
	for i := range 512 {
		b = append(b, byte(i))
	}
	return b
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustPut(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func wantGet(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes, want the %d bytes put (first difference at %d)", key, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testRoundTrip(t *testing.T, s blob.Store) {
	tests := []struct {
		name, key string
		data      []byte
	}{
		{"json", "records/000000000042-01J9ZQ.dsse.json", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}` + "\n")},
		{"every byte value", "bin/all-bytes", allBytes()},
		{"crlf and nul", "bin/crlf", []byte("a\r\nb\x00\r\n\n")},
		{"one MiB random", "bin/random", randomBytes(1, 1<<20)},
		{"empty", "bin/empty", []byte{}},
		{"deep key", "a/b/c/d/e/f_g-h.i", []byte("deep")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.data)
			mustPut(t, s, tc.key, in)
			// The store must have copied the input, and Get must hand out a
			// copy too.
			for i := range in {
				in[i] ^= 0xff
			}
			got, err := s.Get(t.Context(), tc.key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			for i := range got {
				got[i] ^= 0xff
			}
			wantGet(t, s, tc.key, tc.data)
		})
	}
}

func testIdempotent(t *testing.T, s blob.Store) {
	key, data := "records/000000000001-a.dsse.json", randomBytes(2, 4096)
	for i := range 3 {
		if err := s.Put(t.Context(), key, bytes.Clone(data)); err != nil {
			t.Fatalf("Put #%d of the same bytes: %v, want nil", i+1, err)
		}
	}
	wantGet(t, s, key, data)
	var keys []string
	if err := s.List(t.Context(), "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{key}, keys); diff != "" {
		t.Errorf("List after re-puts (-want +got):\n%s", diff)
	}
}

func testExists(t *testing.T, s blob.Store) {
	key, orig := "records/000000000002-b.dsse.json", []byte("original record")
	mustPut(t, s, key, orig)
	others := map[string][]byte{
		"last byte flipped": []byte("original recorD"),
		"longer":            []byte("original record\n"),
		"shorter":           []byte("original recor"),
		"empty":             {},
	}
	for name, data := range others {
		t.Run(name, func(t *testing.T) {
			err := s.Put(t.Context(), key, data)
			if !errors.Is(err, blob.ErrExists) {
				t.Fatalf("Put of different bytes: %v, want ErrExists", err)
			}
			wantGet(t, s, key, orig)
		})
	}
}

func testNotFound(t *testing.T, s blob.Store) {
	mustPut(t, s, "records/x/leaf", []byte("leaf"))
	for _, key := range []string{
		"missing",
		"records/missing",
		"records",         // a prefix of a key, not a key
		"records/x",       // idem
		"records/x/leaf2", // a sibling
		"records/x/leaf/below",
	} {
		_, err := s.Get(t.Context(), key)
		if !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", key, err)
		}
	}
}

func listAll(t *testing.T, s blob.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	if err := s.List(t.Context(), prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s blob.Store, n int) {
	var records []string
	for i := range n {
		records = append(records, fmt.Sprintf("records/%012d-id%d.dsse.json", i, i))
	}
	// Neighbours that a sloppy prefix match or a directory-order listing
	// would get wrong: "-" sorts before "/", so "records-old/…" comes first.
	others := []string{"records-old/1", "recordsX", "checkpoints/000000000001", "a/b", "a-b"}
	all := slices.Concat(records, others)

	// Write in parallel, bounded, in a shuffled order: the order of the
	// listing must come from the store, not from the order of writes.
	work := make(chan string)
	errs := make(chan error, len(all))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range work {
				if err := s.Put(t.Context(), k, []byte(k)); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", k, err)
				}
			}
		})
	}
	shuffled := slices.Clone(all)
	rand.New(rand.NewPCG(3, 3)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	sorted := func(keys []string) []string { keys = slices.Clone(keys); slices.Sort(keys); return keys }
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", sorted(all)},
		{"records/", records},
		{"records", sorted(slices.Concat(records, []string{"records-old/1", "recordsX"}))},
		{"records/00000000001", records[min(10, n):min(20, n)]},
		{fmt.Sprintf("records/%012d-", n-1), records[n-1:]},
		{"a", []string{"a-b", "a/b"}},
		{"a/", []string{"a/b"}},
		{"nothing/", []string{}},
		{"zzz", []string{}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, listAll(t, s, tc.prefix)); diff != "" {
			t.Errorf("List(%q) (-want +got):\n%s", tc.prefix, diff)
		}
	}

	t.Run("fn error stops", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := s.List(t.Context(), "records/", func(string) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 3 {
			t.Errorf("List with fn failing on call 3: err %v after %d calls, want %v after 3", err, calls, stop)
		}
	})
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	bad := []string{
		"", "/", "/abs", "trailing/", "a//b", "..", "../up", "a/../b", "a/./b", ".", ".hidden", "a/.tmp-1",
		"sp ace", `back\slash`, "nul\x00", "new\nline", "pct%2e", "colon:x", "star*", "é",
		strings.Repeat("a", 256), strings.Repeat("a/", 256) + "a",
	}
	for _, key := range bad {
		if err := s.Put(t.Context(), key, []byte("x")); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(t.Context(), key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "/a", "../", "a//", ".tmp", "a/../", "sp ace"} {
		err := s.List(t.Context(), prefix, func(string) error { return nil })
		if !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("List(%q): %v, want ErrInvalidKey", prefix, err)
		}
	}
	if keys := listAll(t, s, ""); len(keys) != 0 {
		t.Errorf("store holds %q after invalid puts, want nothing", keys)
	}
}

func testConcurrent(t *testing.T, s blob.Store) {
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.Put(t.Context(), fmt.Sprintf("c/distinct-%02d", i), randomBytes(uint64(100+i), 1000+i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put of distinct key %d: %v", i, err)
		}
	}
	for i := range writers {
		wantGet(t, s, fmt.Sprintf("c/distinct-%02d", i), randomBytes(uint64(100+i), 1000+i))
	}

	t.Run("same key same bytes", func(t *testing.T) {
		data := randomBytes(200, 2000)
		for i := range writers {
			wg.Go(func() { errs[i] = s.Put(t.Context(), "c/same", data) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v, want nil", i, err)
			}
		}
		wantGet(t, s, "c/same", data)
	})

	t.Run("same key different bytes", func(t *testing.T) {
		for i := range writers {
			wg.Go(func() { errs[i] = s.Put(t.Context(), "c/race", randomBytes(uint64(300+i), 3000)) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("writers %d and %d both succeeded", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, blob.ErrExists):
				t.Errorf("writer %d: %v, want nil or ErrExists", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no writer succeeded")
		}
		wantGet(t, s, "c/race", randomBytes(uint64(300+winner), 3000))
	})
}

// testPutAll: a batch across two directories lands whole; retried, it is a
// no-op; a batch with a key that holds other bytes fails with ErrExists and
// stores nothing after that key.
func testPutAll(t *testing.T, s blob.Store) {
	ctx := t.Context()
	var batch []blob.Entry
	for i := range 20 {
		batch = append(batch, blob.Entry{Key: fmt.Sprintf("records/%03d", i), Data: randomBytes(uint64(i), 100+i)})
	}
	batch = append(batch, blob.Entry{Key: "checkpoints/020", Data: []byte("cp")})
	if err := blob.PutAll(ctx, s, batch); err != nil {
		t.Fatalf("PutAll: %v", err)
	}
	for _, e := range batch {
		wantGet(t, s, e.Key, e.Data)
	}
	if err := blob.PutAll(ctx, s, batch); err != nil {
		t.Fatalf("PutAll again with the same bytes: %v", err)
	}

	clash := []blob.Entry{
		{Key: "records/020", Data: []byte("new")},
		{Key: "records/005", Data: []byte("not what is stored")},
		{Key: "records/021", Data: []byte("after the clash")},
	}
	if err := blob.PutAll(ctx, s, clash); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("PutAll over a key with other bytes: %v, want ErrExists", err)
	}
	wantGet(t, s, "records/005", batch[5].Data)
	if _, err := s.Get(ctx, "records/021"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("an entry after the failed one was stored: %v", err)
	}
}
