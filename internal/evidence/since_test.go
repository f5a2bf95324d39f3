package evidence

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// after is what storage holds from a trusted checkpoint of size on: the
// source VerifySince reads, and the Since it starts from, with the leaf
// hashes and prior records taken from src's index.
func after(t *testing.T, src *memSource, trusted []byte) (*memSource, Since) {
	t.Helper()
	cp, err := TrustedCheckpoint(trusted, testSigner(t, 1).Public(), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	out := &memSource{}
	var leaves []byte
	for _, r := range src.records {
		if uint64(r.Seq) < cp.Size {
			leaves = append(leaves, LeafHash(r.Envelope)...)
		} else {
			out.records = append(out.records, r)
		}
	}
	for _, c := range src.checkpoints {
		if c.Size >= cp.Size {
			out.checkpoints = append(out.checkpoints, c)
		}
	}
	prior := map[string]IndexRow{}
	for _, r := range src.rows {
		if uint64(r.Seq) >= cp.Size {
			out.rows = append(out.rows, r)
		} else {
			prior[r.Fields[FieldID]] = r
		}
	}
	return out, Since{Checkpoint: cp, Leaves: leaves, Prior: func(id string) (int64, string, bool, error) {
		r, ok := prior[id]
		return r.Seq, r.Fields[FieldExceptionState], ok, nil
	}}
}

func checkpointOf(t *testing.T, src *memSource, size uint64) []byte {
	t.Helper()
	for _, c := range src.checkpoints {
		if c.Size == size {
			return c.Data
		}
	}
	t.Fatalf("no checkpoint of size %d", size)
	return nil
}

// An incremental verify reads only what follows the trusted checkpoint,
// including a record closing an exception opened before it.
func TestVerifySince(t *testing.T) {
	t.Parallel()
	src := goodLedger(t, 4) // checkpoints 4, 8, 10; record 6 closes record 3's exception
	for _, size := range []uint64{0, 4, 8, 10} {
		var trusted []byte
		if size == 0 {
			trusted = emptyCheckpoint(t)
		} else {
			trusted = checkpointOf(t, src, size)
		}
		rest, since := after(t, src, trusted)
		rep, err := VerifySince(rest, testSigner(t, 1).Public(), testOrigin, since)
		if err != nil {
			t.Fatalf("since %d: %v", size, err)
		}
		if rep.Since != size || rep.Records != int64(10-size) || rep.Size != 10 || !bytes.Equal(rep.Root, rootOf(src)) {
			t.Errorf("since %d: report %+v", size, rep)
		}
		if want := checkpointOf(t, src, 10); !bytes.Equal(rep.Checkpoint, want) {
			t.Errorf("since %d: latest checkpoint %q, want %q", size, rep.Checkpoint, want)
		}
	}
}

func emptyCheckpoint(t *testing.T) []byte {
	t.Helper()
	root, _ := NewLog().Root(0)
	cp, err := testSigner(t, 1).SignCheckpoint(testOrigin, 0, root)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// What an incremental verify must catch: history before the trusted
// checkpoint rewritten, a checkpoint not from the auditor's key, the log
// cut back, and bad records after it.
func TestVerifySinceTamper(t *testing.T) {
	t.Parallel()
	good := goodLedger(t, 4)
	signer := testSigner(t, 1)
	cases := []struct {
		name    string
		tamper  func(t *testing.T, src *memSource, since *Since)
		seq     int64
		problem string
	}{
		{"history rewritten before the checkpoint", func(t *testing.T, src *memSource, since *Since) {
			since.Leaves[32*2] ^= 1
		}, 3, "does not extend the trusted checkpoint"},
		{"log cut back", func(t *testing.T, src *memSource, since *Since) {
			since.Leaves = since.Leaves[:32*2]
		}, 2, "log truncated"},
		{"record after it changed", func(t *testing.T, src *memSource, since *Since) {
			flipPayloadByte(src.records[1].Envelope) // record 5
		}, 5, "signature"},
		{"record after it removed", func(t *testing.T, src *memSource, since *Since) {
			src.records = append(src.records[:1], src.records[2:]...)
		}, 5, "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src, since := after(t, good.clone(), checkpointOf(t, good, 4))
			c.tamper(t, src, &since)
			_, err := VerifySince(src, signer.Public(), testOrigin, since)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Seq != c.seq || !strings.Contains(ve.Problem, c.problem) {
				t.Errorf("VerifySince = %v, want record %d: %q", err, c.seq, c.problem)
			}
		})
	}
}

// A record after the checkpoint that repeats the id of one before it is
// found through the index, without reading the old records.
func TestVerifySinceDuplicate(t *testing.T) {
	t.Parallel()
	signer := testSigner(t, 1)
	l := newLedger(signer, 4)
	for i := range 5 {
		l.append(t, sampleRecord(i))
	}
	l.append(t, sampleRecord(1))
	l.checkpoint(t)
	src, since := after(t, l.src, checkpointOf(t, l.src, 4))
	_, err := VerifySince(src, signer.Public(), testOrigin, since)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 5 || !strings.Contains(ve.Problem, "duplicate record id: also at 1, before the trusted checkpoint") {
		t.Errorf("VerifySince = %v, want record 5 named as a duplicate of 1", err)
	}
}

// A checkpoint the auditor did not get from the ledger's key is refused
// before anything is read.
func TestTrustedCheckpointKey(t *testing.T) {
	t.Parallel()
	src := goodLedgerSignedBy(t, testSigner(t, 2))
	if _, err := TrustedCheckpoint(src.checkpoints[0].Data, testSigner(t, 1).Public(), testOrigin); !errors.Is(err, ErrSignature) {
		t.Errorf("TrustedCheckpoint = %v, want ErrSignature", err)
	}
	// A copy that lost its final newline, or gained blank lines, is the
	// same checkpoint.
	data := goodLedger(t, 4).checkpoints[0].Data
	for _, d := range [][]byte{bytes.TrimSuffix(data, []byte("\n")), append([]byte("\n"), append(data, '\n', '\n')...)} {
		if cp, err := TrustedCheckpoint(d, testSigner(t, 1).Public(), testOrigin); err != nil || cp.Size != 4 {
			t.Errorf("TrustedCheckpoint(%q) = %+v, %v", d, cp, err)
		}
	}
}
