package evidence

import (
	"bytes"
	"fmt"
	"math/bits"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// referenceRoot is RFC 6962's MTH, written straight from section 2.1.
func referenceRoot(leaves [][]byte) []byte {
	h := rfc6962.DefaultHasher
	switch n := len(leaves); n {
	case 0:
		return h.EmptyRoot()
	case 1:
		return h.HashLeaf(leaves[0])
	default:
		k := 1 << (bits.Len(uint(n-1)) - 1) // largest power of two < n
		return h.HashChildren(referenceRoot(leaves[:k]), referenceRoot(leaves[k:]))
	}
}

func testLeaves(n int) [][]byte {
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = fmt.Appendf(nil, `{"envelope":%d}`, i)
	}
	return leaves
}

func TestLogRootMatchesReference(t *testing.T) {
	t.Parallel()
	leaves := testLeaves(70)
	l := NewLog()
	for size := 0; size <= len(leaves); size++ {
		if size > 0 {
			if got := l.Append(leaves[size-1]); got != uint64(size-1) {
				t.Fatalf("Append returned index %d, want %d", got, size-1)
			}
		}
		// Every earlier size, not only the current one.
		for s := 0; s <= size; s++ {
			got, err := l.Root(uint64(s))
			if err != nil {
				t.Fatal(err)
			}
			if want := referenceRoot(leaves[:s]); !bytes.Equal(got, want) {
				t.Fatalf("log of %d: Root(%d) = %x, want %x", size, s, got, want)
			}
		}
	}
	if _, err := l.Root(71); err == nil {
		t.Error("Root beyond the log succeeded")
	}
}

func TestLogProofs(t *testing.T) {
	t.Parallel()
	h := rfc6962.DefaultHasher
	leaves := testLeaves(37)
	l := NewLog()
	for _, leaf := range leaves {
		l.Append(leaf)
	}
	for size := uint64(1); size <= l.Size(); size++ {
		root, _ := l.Root(size)
		for i := range size {
			p, err := l.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(h, i, size, h.HashLeaf(leaves[i]), p, root); err != nil {
				t.Errorf("inclusion of %d in %d: %v", i, size, err)
			}
			// The proof is for that leaf and no other.
			other := h.HashLeaf(leaves[(i+1)%size])
			if size > 1 && proof.VerifyInclusion(h, i, size, other, p, root) == nil {
				t.Errorf("inclusion of %d in %d verified for the wrong leaf", i, size)
			}
		}
		for size1 := uint64(0); size1 <= size; size1++ {
			root1, _ := l.Root(size1)
			p, err := l.ConsistencyProof(size1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(h, size1, size, p, root1, root); err != nil {
				t.Errorf("consistency %d→%d: %v", size1, size, err)
			}
			if size1 > 0 && size1 < size {
				forked := referenceRoot(append(append([][]byte{}, leaves[:size1-1]...), []byte("forged")))
				if proof.VerifyConsistency(h, size1, size, p, forked, root) == nil {
					t.Errorf("consistency %d→%d verified against a forked root", size1, size)
				}
			}
		}
	}
	if _, err := l.InclusionProof(5, 38); err == nil {
		t.Error("inclusion proof beyond the log succeeded")
	}
	if _, err := l.ConsistencyProof(6, 5); err == nil {
		t.Error("consistency proof with size1 > size2 succeeded")
	}
}

func TestLogRebuildFromLeafHashes(t *testing.T) {
	t.Parallel()
	leaves := testLeaves(20)
	a, b := NewLog(), NewLog()
	for _, leaf := range leaves {
		a.Append(leaf)
		if _, err := b.AppendLeafHash(LeafHash(leaf)); err != nil {
			t.Fatal(err)
		}
	}
	ra, _ := a.Root(20)
	rb, _ := b.Root(20)
	if !bytes.Equal(ra, rb) {
		t.Errorf("roots differ: %x %x", ra, rb)
	}
	if h, _ := b.LeafHashAt(3); !bytes.Equal(h, LeafHash(leaves[3])) {
		t.Errorf("LeafHashAt(3) = %x", h)
	}
	if _, err := b.AppendLeafHash([]byte("short")); err == nil {
		t.Error("AppendLeafHash accepted a short hash")
	}
}

func TestRootAfterDoesNotAppend(t *testing.T) {
	l := NewLog()
	var leaves [][]byte
	for i := range 7 {
		leaves = append(leaves, LeafHash([]byte{byte(i)}))
	}
	for i := range 3 {
		l.Append([]byte{byte(i)})
	}
	before, _ := l.Root(3)
	got, err := l.RootAfter(leaves[3:])
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := l.Root(3); l.Size() != 3 || !bytes.Equal(after, before) {
		t.Fatalf("RootAfter changed the log: size %d, root %x, was %x", l.Size(), after, before)
	}
	for i := 3; i < 7; i++ {
		l.Append([]byte{byte(i)})
	}
	want, _ := l.Root(7)
	if !bytes.Equal(got, want) {
		t.Errorf("RootAfter = %x, root after appending = %x", got, want)
	}
	if empty, _ := NewLog().RootAfter(nil); !bytes.Equal(empty, rfc6962.DefaultHasher.EmptyRoot()) {
		t.Errorf("empty RootAfter = %x", empty)
	}
}

// TestRootOfLeaves: the in-place root is the log's root at every size.
func TestRootOfLeaves(t *testing.T) {
	t.Parallel()
	l := NewLog()
	var leaves []byte
	for n := 0; n <= 300; n++ {
		want, err := l.Root(uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := RootOfLeaves(leaves)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: got %x (%v), want %x", n, got, err, want)
		}
		l.Append([]byte{byte(n), byte(n >> 8)})
		h, _ := l.LeafHashAt(uint64(n))
		leaves = append(leaves, h...)
	}
	if _, err := RootOfLeaves(make([]byte, 33)); err == nil {
		t.Error("33 bytes of leaves accepted")
	}
}

// TestLogFromLeaves: a log built from its leaves at once has the roots and
// proofs of one built leaf by leaf, and takes appends after.
func TestLogFromLeaves(t *testing.T) {
	t.Parallel()
	one := NewLog()
	var leaves []byte
	for n := 0; n <= 70; n++ {
		built, err := LogFromLeaves(leaves)
		if err != nil {
			t.Fatal(err)
		}
		for size := uint64(0); size <= uint64(n); size++ {
			a, _ := one.Root(size)
			b, err := built.Root(size)
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("n=%d root(%d): %x (%v), want %x", n, size, b, err, a)
			}
			for i := uint64(0); i < size; i++ {
				pa, _ := one.InclusionProof(i, size)
				pb, err := built.InclusionProof(i, size)
				if err != nil || fmt.Sprint(pa) != fmt.Sprint(pb) {
					t.Fatalf("n=%d proof(%d,%d) differs (%v)", n, i, size, err)
				}
			}
		}
		built.Append([]byte("next"))
		extended := NewLog()
		for i := 0; i < n; i++ {
			h, _ := one.LeafHashAt(uint64(i))
			extended.AppendLeafHash(h)
		}
		extended.Append([]byte("next"))
		a, _ := extended.Root(uint64(n + 1))
		b, _ := built.Root(uint64(n + 1))
		if !bytes.Equal(a, b) {
			t.Fatalf("n=%d: an append after building gives another root", n)
		}
		one.Append([]byte{byte(n)})
		h, _ := one.LeafHashAt(uint64(n))
		leaves = append(leaves, h...)
	}
}
