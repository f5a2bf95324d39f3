package evidence

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// LeafHash is the RFC 6962 leaf hash of a stored envelope: the exact bytes,
// never a re-encoding.
func LeafHash(envelope []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(envelope) }

// Log is an append-only RFC 6962 Merkle tree over envelopes, held in
// memory. It keeps the hash of every perfect subtree (about two hashes per
// leaf), so the root at any size and any proof cost O(log n) hashes, and
// rebuilding a log of a million leaves costs two million SHA-256 calls.
// The caller persists leaf hashes and rebuilds a Log with AppendLeafHash.
//
// A Log is not safe for concurrent use.
type Log struct {
	rf *compact.RangeFactory
	cr *compact.Range
	// nodes[level][index] is the hash of the perfect subtree of 2^level
	// leaves starting at leaf index<<level.
	nodes [][][sha256.Size]byte
}

// NewLog returns an empty log.
func NewLog() *Log {
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	return &Log{rf: rf, cr: rf.NewEmptyRange(0)}
}

// Size is the number of leaves.
func (l *Log) Size() uint64 { return l.cr.End() }

// Append adds an envelope and returns its index.
func (l *Log) Append(envelope []byte) uint64 {
	i, _ := l.AppendLeafHash(LeafHash(envelope)) // a computed leaf hash has the right size
	return i
}

// Grow makes room for n more leaves, so that appending a known number of
// leaves does not reallocate the levels as they grow.
func (l *Log) Grow(n uint64) {
	size := l.Size() + n
	for level := 0; size>>level > 0; level++ {
		for len(l.nodes) <= level {
			l.nodes = append(l.nodes, nil)
		}
		if more := int(size>>level) - len(l.nodes[level]); more > 0 {
			l.nodes[level] = slices.Grow(l.nodes[level], more)
		}
	}
}

// AppendLeafHash adds a leaf by its hash and returns its index.
func (l *Log) AppendLeafHash(h []byte) (uint64, error) {
	if len(h) != sha256.Size {
		return 0, fmt.Errorf("leaf hash has %d bytes, want %d", len(h), sha256.Size)
	}
	i := l.cr.End()
	err := l.cr.Append(h, l.store)
	return i, err
}

func (l *Log) store(id compact.NodeID, hash []byte) {
	for uint(len(l.nodes)) <= id.Level {
		l.nodes = append(l.nodes, nil)
	}
	// Nodes complete left to right on every level, so each is appended.
	l.nodes[id.Level] = append(l.nodes[id.Level], [sha256.Size]byte(hash))
}

func (l *Log) node(id compact.NodeID) []byte {
	h := l.nodes[id.Level][id.Index]
	return h[:]
}

// LeafHashAt returns the leaf hash at index.
func (l *Log) LeafHashAt(index uint64) ([]byte, error) {
	if index >= l.Size() {
		return nil, fmt.Errorf("leaf %d is beyond log size %d", index, l.Size())
	}
	return l.node(compact.NewNodeID(0, index)), nil
}

// Root returns the root hash of the tree of the first size leaves.
func (l *Log) Root(size uint64) ([]byte, error) {
	if size > l.Size() {
		return nil, fmt.Errorf("size %d is beyond log size %d", size, l.Size())
	}
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		hashes[i] = l.node(id)
	}
	r, err := l.rf.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// RootAfter returns the root the log would have after appending leaves
// (leaf hashes), without appending them: a writer signs the checkpoint of a
// batch before the batch is stored, and only then appends it.
func (l *Log) RootAfter(leaves [][]byte) ([]byte, error) {
	// A copy: the range keeps the slice it is given and appends in place.
	r, err := l.rf.NewRange(0, l.Size(), slices.Clone(l.cr.Hashes()))
	if err != nil {
		return nil, err
	}
	for _, h := range leaves {
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("leaf hash has %d bytes, want %d", len(h), sha256.Size)
		}
		if err := r.Append(h, nil); err != nil {
			return nil, err
		}
	}
	if r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// InclusionProof proves that leaf index is in the tree of the given size;
// check it with proof.VerifyInclusion.
func (l *Log) InclusionProof(index, size uint64) ([][]byte, error) {
	if size > l.Size() {
		return nil, fmt.Errorf("size %d is beyond log size %d", size, l.Size())
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return l.rehash(nodes)
}

// ConsistencyProof proves that the tree of size2 extends the tree of size1;
// check it with proof.VerifyConsistency.
func (l *Log) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	if size2 > l.Size() {
		return nil, fmt.Errorf("size %d is beyond log size %d", size2, l.Size())
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return l.rehash(nodes)
}

func (l *Log) rehash(nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		// Copy: Rehash overwrites its input, and these are the log's own.
		hashes[i] = append([]byte(nil), l.node(id)...)
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// RootOfLeaves is the RFC 6962 root of a tree of the given leaf hashes,
// concatenated (32 bytes each). It pairs each level's nodes left to right
// and carries a last odd one up unchanged, which gives the left-balanced
// tree of RFC 6962, in place in one copy of the leaves and without an
// allocation per node: a verifier rebuilding the root of a million leaves
// does nothing else.
func RootOfLeaves(leaves []byte) ([]byte, error) {
	if len(leaves)%sha256.Size != 0 {
		return nil, fmt.Errorf("leaf hashes: %d bytes is not a multiple of %d", len(leaves), sha256.Size)
	}
	n := len(leaves) / sha256.Size
	if n == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	if n == 1 {
		return slices.Clone(leaves), nil
	}
	// The first level reads the leaves and writes half as many nodes; the
	// levels above it are hashed in place.
	buf := make([]byte, (n+1)/2*sha256.Size)
	src := leaves
	var in [1 + 2*sha256.Size]byte
	in[0] = rfc6962.RFC6962NodeHashPrefix
	for ; n > 1; n, src = (n+1)/2, buf {
		for i := 0; i+1 < n; i += 2 {
			copy(in[1:], src[i*sha256.Size:(i+2)*sha256.Size])
			sum := sha256.Sum256(in[:])
			copy(buf[i/2*sha256.Size:], sum[:])
		}
		if n%2 == 1 {
			copy(buf[n/2*sha256.Size:], src[(n-1)*sha256.Size:n*sha256.Size])
		}
	}
	return buf[:sha256.Size:sha256.Size], nil
}

// LogFromLeaves builds the log of the given leaf hashes, concatenated (32
// bytes each), as AppendLeafHash would one by one, but a level at a time:
// no allocation per node, and each level sized once.
func LogFromLeaves(leaves []byte) (*Log, error) { return logFromLeaves(leaves, 0) }

// logFromLeaves is LogFromLeaves with room in every level for more leaves,
// which are then appended without copying the levels.
func logFromLeaves(leaves []byte, more uint64) (*Log, error) {
	if len(leaves)%sha256.Size != 0 {
		return nil, fmt.Errorf("leaf hashes: %d bytes is not a multiple of %d", len(leaves), sha256.Size)
	}
	l := NewLog()
	n := len(leaves) / sha256.Size
	if n == 0 {
		return l, nil
	}
	total := uint64(n) + more
	level := make([][sha256.Size]byte, n, total)
	for i := range level {
		level[i] = [sha256.Size]byte(leaves[i*sha256.Size:])
	}
	l.nodes = append(l.nodes, level)
	var in [1 + 2*sha256.Size]byte
	in[0] = rfc6962.RFC6962NodeHashPrefix
	for len(level) > 1 {
		total /= 2
		up := make([][sha256.Size]byte, len(level)/2, max(total, uint64(len(level)/2)))
		for i := range up {
			copy(in[1:], level[2*i][:])
			copy(in[1+sha256.Size:], level[2*i+1][:])
			up[i] = sha256.Sum256(in[:])
		}
		l.nodes = append(l.nodes, up)
		level = up
	}
	ids := compact.RangeNodes(0, uint64(n), nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		hashes[i] = slices.Clone(l.node(id))
	}
	cr, err := l.rf.NewRange(0, uint64(n), hashes)
	if err != nil {
		return nil, err
	}
	l.cr = cr
	return l, nil
}
