// Package audit is what auditors do with the evidence ledger: pull the
// population of production changes for a period, draw a reproducible
// sample, build an evidence package, and verify one offline.
//
// It only reads. The index answers the queries (a store implements Index),
// the blob store holds the signed bytes (Log), and every figure an export
// gives is tied to a signed checkpoint: the same query at the same
// checkpoint gives the same bytes, on any machine.
package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
)

// Index is the store's side of the ledger: its queryable copy.
type Index interface {
	Population(ctx context.Context, q evidence.Query, fn func(evidence.PopulationRow) error) error
	// Closed maps each record whose exception a record among the first
	// size closes to the closing record's id.
	Closed(ctx context.Context, size uint64) (map[string]string, error)
	Lookup(ctx context.Context, id string) (seq uint64, ok bool, err error)
	// LeafHashes returns the leaf hashes of the first n records, 32
	// bytes each.
	LeafHashes(ctx context.Context, n uint64) ([]byte, error)
	Size(ctx context.Context) (uint64, error)
}

// Log is the signed side of the ledger (ledger.Reader).
type Log interface {
	// Checkpoint returns the largest checkpoint of at most maxSize records.
	Checkpoint(ctx context.Context, maxSize uint64) (uint64, []byte, error)
	Envelope(ctx context.Context, seq uint64) ([]byte, error)
}

// Service answers auditors from one ledger. It is safe for concurrent use.
type Service struct {
	index    Index
	log      Log
	signer   *evidence.Signer
	verifier *evidence.Verifier
	origin   string

	mu   sync.Mutex
	tree *evidence.Log // the log's tree as far as it was read, for proofs
}

// New returns a Service. The signer signs export manifests; it holds the
// ledger's key, so an export is signed by the same key as the records.
func New(index Index, log Log, signer *evidence.Signer, origin string) (*Service, error) {
	v, err := evidence.NewVerifier(signer.Public())
	if err != nil {
		return nil, err
	}
	return &Service{index: index, log: log, signer: signer, verifier: v, origin: origin, tree: evidence.NewLog()}, nil
}

// Public is the ledger's public key.
func (s *Service) Public() ed25519.PublicKey { return s.signer.Public() }

// Origin names the log in its checkpoints.
func (s *Service) Origin() string { return s.origin }

// Checkpoint is a signed checkpoint an export is read at.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	// Note is the signed note, as stored.
	Note []byte
	// AsOf is when the newest record the checkpoint covers was observed:
	// the moment the log was complete to. Exports carry it as their
	// generated_at, since they carry no wall-clock time (they are
	// reproducible).
	AsOf time.Time
}

// ErrEmpty says the ledger has no signed checkpoint yet: nothing to audit.
var ErrEmpty = errors.New("the ledger has no records yet")

// Latest returns the newest checkpoint the index covers, checked against
// the ledger's key.
func (s *Service) Latest(ctx context.Context) (Checkpoint, error) {
	n, err := s.index.Size(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	return s.checkpoint(ctx, n, false)
}

// At returns the checkpoint of exactly size records.
func (s *Service) At(ctx context.Context, size uint64) (Checkpoint, error) {
	return s.checkpoint(ctx, size, true)
}

func (s *Service) checkpoint(ctx context.Context, max uint64, exact bool) (Checkpoint, error) {
	size, note, err := s.log.Checkpoint(ctx, max)
	if errors.Is(err, ledger.ErrNoCheckpoint) && !exact {
		return Checkpoint{}, ErrEmpty
	}
	if err != nil {
		return Checkpoint{}, err
	}
	if exact && size != max {
		return Checkpoint{}, fmt.Errorf("%w of size %d in the log", ledger.ErrNoCheckpoint, max)
	}
	nv, err := evidence.NoteVerifier(s.origin, s.signer.Public())
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := evidence.VerifyCheckpoint(note, nv)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %d: %w", size, err)
	}
	if cp.Size != size {
		return Checkpoint{}, fmt.Errorf("checkpoint stored as size %d says size %d", size, cp.Size)
	}
	last, err := s.record(ctx, size-1)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Origin: s.origin, Size: size, Root: cp.Hash, Note: note, AsOf: last.ObservedAt.UTC()}, nil
}

// record reads and checks the record at seq.
func (s *Service) record(ctx context.Context, seq uint64) (*evidence.Record, error) {
	env, err := s.log.Envelope(ctx, seq)
	if err != nil {
		return nil, err
	}
	rec, err := s.verifier.VerifyEnvelope(env)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", seq, err)
	}
	return rec, nil
}

// treeAt returns the log's tree covering at least size leaves, read from
// the index's leaf hashes, and checks it against cp's root. The tree is
// kept and extended, so a server pays for it once.
func (s *Service) treeAt(ctx context.Context, cp Checkpoint) (*evidence.Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.growTree(ctx, cp.Size); err != nil {
		s.tree = evidence.NewLog() // a partial tree is not kept
		return nil, err
	}
	root, err := s.tree.Root(cp.Size)
	if err != nil {
		return nil, err
	}
	if string(root) != string(cp.Root) {
		s.tree = evidence.NewLog()
		return nil, fmt.Errorf("the index's leaf hashes do not give checkpoint %d's root: run changegate audit verify", cp.Size)
	}
	return s.tree, nil
}

// growTree extends the tree to size leaves from the index: built a level
// at a time the first time, appended to after.
func (s *Service) growTree(ctx context.Context, size uint64) error {
	have := s.tree.Size()
	if have >= size {
		return nil
	}
	leaves, err := s.index.LeafHashes(ctx, size)
	if err != nil {
		return err
	}
	if have == 0 {
		s.tree, err = evidence.LogFromLeaves(leaves)
		return err
	}
	for i := have; i < size; i++ {
		if _, err := s.tree.AppendLeafHash(leaves[i*32 : (i+1)*32]); err != nil {
			return err
		}
	}
	return nil
}
