package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// SignCheckpoint returns a C2SP checkpoint for the log named origin at size
// with the given root, signed as a note whose key name is origin.
func (s *Signer) SignCheckpoint(origin string, size uint64, root []byte) ([]byte, error) {
	if len(root) != sha256.Size {
		return nil, fmt.Errorf("checkpoint root has %d bytes, want %d", len(root), sha256.Size)
	}
	v, err := NoteVerifier(origin, s.priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	text := log.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, &noteSigner{name: origin, hash: v.KeyHash(), priv: s.priv})
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint %s/%d: %w", origin, size, err)
	}
	return signed, nil
}

// VerifyCheckpoint opens a checkpoint signed by v for the log named
// v.Name() and returns it. A note carrying no valid signature by v fails
// with ErrSignature, whatever else it is signed by.
func VerifyCheckpoint(data []byte, v note.Verifier) (log.Checkpoint, error) {
	o := openCheckpoint(data, v)
	return o.verified(v, o.msg != nil && v.Verify(o.msg, o.sig))
}

// openedCheckpoint is a checkpoint read by openCheckpoint: everything about
// it is known but whether its signature by the verifier is valid.
type openedCheckpoint struct {
	// msg and sig are the note's text and the verifier's signature of it,
	// still to be checked; msg is nil when note.Open did not get as far.
	msg, sig []byte
	// err is what note.Open found wrong, as if the signature were valid.
	err error
}

// openCheckpoint is VerifyCheckpoint up to the signature check: note.Open,
// with v's check of the signature deferred, so that Verify can check
// signatures in batches and VerifyCheckpoint one at a time, with the same
// errors.
func openCheckpoint(data []byte, v note.Verifier) openedCheckpoint {
	d := deferredVerifier{Verifier: v}
	_, err := note.Open(data, note.VerifierList(&d))
	return openedCheckpoint{msg: d.msg, sig: d.sig, err: err}
}

// deferredVerifier is a note.Verifier that accepts every signature and
// keeps it to be checked later. note.Open asks it about at most one, as it
// ignores a key's signatures after its first.
type deferredVerifier struct {
	note.Verifier
	msg, sig []byte
}

func (d *deferredVerifier) Verify(msg, sig []byte) bool {
	d.msg, d.sig = msg, sig
	return true
}

// verified finishes what openCheckpoint began, once it is known whether the
// signature is valid.
func (o *openedCheckpoint) verified(v note.Verifier, valid bool) (log.Checkpoint, error) {
	err := o.err
	if o.msg != nil && !valid {
		// note.Open stops at the first bad signature.
		err = &note.InvalidSignatureError{Name: v.Name(), Hash: v.KeyHash()}
	}
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return log.Checkpoint{}, fmt.Errorf("%w: checkpoint is not signed by %s+%08x: %v", ErrSignature, v.Name(), v.KeyHash(), err)
		}
		return log.Checkpoint{}, fmt.Errorf("checkpoint is not a signed note: %w", err)
	}
	// The message signed is the note's text.
	return parseCheckpointText(o.msg, v.Name())
}

// parseCheckpointText reads the checkpoint body. Extension lines after the
// root are allowed by C2SP and ignored.
func parseCheckpointText(text []byte, origin string) (log.Checkpoint, error) {
	var cp log.Checkpoint
	if _, err := cp.Unmarshal(text); err != nil {
		return log.Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	if cp.Origin != origin {
		return log.Checkpoint{}, fmt.Errorf("checkpoint origin is %q, want %q", cp.Origin, origin)
	}
	if len(cp.Hash) != sha256.Size {
		return log.Checkpoint{}, fmt.Errorf("checkpoint root has %d bytes, want %d", len(cp.Hash), sha256.Size)
	}
	return cp, nil
}

// peekCheckpoint reads a checkpoint without checking its signature, so that
// the sequential part of Verify can compare roots while the signatures are
// checked in parallel. Its result must not be trusted on its own.
func peekCheckpoint(data []byte, origin string) (log.Checkpoint, error) {
	// A note is its text, a blank line, then signature lines; the text
	// ends at the last blank line, as note.Open reads it.
	i := bytes.LastIndex(data, []byte("\n\n"))
	if i < 0 {
		return log.Checkpoint{}, errors.New("checkpoint is not a signed note: no signature block")
	}
	return parseCheckpointText(data[:i+1], origin)
}
