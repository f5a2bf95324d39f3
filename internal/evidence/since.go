package evidence

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/transparency-dev/formats/log"
)

// Since is where an incremental verify starts: a checkpoint that the
// auditor verified before and trusts, and what storage says the tree of
// that size is.
type Since struct {
	// Checkpoint is the trusted checkpoint, as TrustedCheckpoint opened it.
	Checkpoint log.Checkpoint
	// Leaves are the leaf hashes of the first Checkpoint.Size records as
	// the index holds them, 32 bytes each. They are not trusted: the tree
	// they make must have the checkpoint's root.
	Leaves []byte
	// Prior finds a record before the checkpoint by id, as the index holds
	// it: its sequence number and exception state (ExceptionState*). It
	// lets a new record be checked against the records not read again: a
	// duplicate id, or the exception it closes.
	Prior func(id string) (seq int64, exceptionState string, found bool, err error)
	// Expect is about how many records follow the checkpoint (the index's
	// count will do), so that the tree is sized once; 0 if not known.
	Expect uint64
}

// TrustedCheckpoint opens a checkpoint an auditor kept from an earlier
// verify: a signed note by pub for the log named origin.
func TrustedCheckpoint(data []byte, pub ed25519.PublicKey, origin string) (log.Checkpoint, error) {
	nv, err := NoteVerifier(origin, pub)
	if err != nil {
		return log.Checkpoint{}, err
	}
	// A file may have lost its final newline or gained blank lines; the
	// note is what is between.
	return VerifyCheckpoint(append(bytes.TrimSpace(data), '\n'), nv)
}

// VerifySince is Verify from a trusted checkpoint on, the way a
// transparency-log monitor follows a log: it checks that the stored tree
// of since.Checkpoint.Size leaves has the trusted root, then checks the
// records after it, every checkpoint after it, and that each checkpoint is
// consistent with the trusted one, all as Verify does. The records before
// the checkpoint are not read: their leaf hashes are, 32 bytes each.
//
// src yields what follows the trusted checkpoint: records from sequence
// number since.Checkpoint.Size, checkpoints of that size or larger, and
// index rows from that sequence number.
func VerifySince(src Source, pub ed25519.PublicKey, origin string, since Since) (*Report, error) {
	r, err := newRun(pub, origin)
	if err != nil {
		return nil, err
	}
	tree, err := since.tree()
	if err != nil {
		return nil, err
	}
	r.since = &since
	return r.verify(src, tree)
}

// tree rebuilds the trusted checkpoint's tree from the stored leaf hashes,
// or says why storage no longer holds it.
func (s *Since) tree() (*Log, error) {
	size := s.Checkpoint.Size
	if uint64(len(s.Leaves)) < size*32 {
		return nil, &VerifyError{Seq: int64(len(s.Leaves) / 32), Problem: fmt.Sprintf(
			"log truncated: the trusted checkpoint commits to %d records but only %d are indexed", size, len(s.Leaves)/32)}
	}
	tree, err := logFromLeaves(s.Leaves[:size*32], s.Expect)
	if err != nil {
		return nil, err
	}
	root, err := tree.Root(size)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(root, s.Checkpoint.Hash) {
		return nil, &VerifyError{Seq: max(int64(size)-1, 0), Problem: fmt.Sprintf(
			"the stored log does not extend the trusted checkpoint: the first %d leaf hashes give root %x, the checkpoint says %x; "+
				"a record before it was changed or removed (a full verify names it)", size, root, s.Checkpoint.Hash)}
	}
	return tree, nil
}

// prior looks id up before the trusted checkpoint. An error is kept, and
// fails the verify once it ends.
func (r *run) prior(id string) (seq int64, state string, found bool) {
	if r.since == nil || r.since.Prior == nil {
		return 0, "", false
	}
	seq, state, found, err := r.since.Prior(id)
	if err != nil {
		r.mu.Lock()
		if r.priorErr == nil {
			r.priorErr = fmt.Errorf("look up record %s before the trusted checkpoint: %w", id, err)
		}
		r.mu.Unlock()
		return 0, "", false
	}
	return seq, state, found && seq < int64(r.since.Checkpoint.Size)
}

// closesPrior says whether id is a record before the trusted checkpoint
// that has an exception to close. Whether an earlier record closed it
// already is left to a full verify, which reads them all.
func (r *run) closesPrior(id string) bool {
	_, state, found := r.prior(id)
	return found && (state == ExceptionStateOpen || state == ExceptionStateClosed)
}
