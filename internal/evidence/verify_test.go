package evidence

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// goodLedger is ten records, a checkpoint after each, and an emergency
// exception (record 3) closed by a later record (record 6).
func goodLedger(t *testing.T, every int) *memSource {
	t.Helper()
	l := newLedger(testSigner(t, 1), every)
	for i := range 10 {
		r := sampleRecord(i)
		switch i {
		case 3:
			r.ChangeType = Emergency
			r.Exception = &Exception{Kind: ExceptionEmergency, Reason: "emergency label", OpenedAt: r.ObservedAt, DueAt: r.ObservedAt.Add(72 * time.Hour)}
		case 6:
			r.ChangeType = Emergency
			r.Exception = &Exception{Kind: ExceptionEmergency, Reason: "approved after the fact by dave", OpenedAt: r.ObservedAt, Closes: "cr-000003"}
			r.Links = []string{"cr-000003"}
		}
		l.append(t, r)
	}
	if every != 1 {
		l.checkpoint(t)
	}
	return l.src
}

func TestVerifyGoodLedger(t *testing.T) {
	t.Parallel()
	for _, every := range []int{1, 4} {
		t.Run(fmt.Sprintf("checkpoint every %d", every), func(t *testing.T) {
			t.Parallel()
			src := goodLedger(t, every)
			rep, err := Verify(src, testSigner(t, 1).Public(), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			root := rootOf(src)
			want := &Report{Records: 10, Checkpoints: int64(len(src.checkpoints)), Size: 10, Root: root, LatestCheckpoint: 10,
				Checkpoint:    src.checkpoints[len(src.checkpoints)-1].Data,
				FirstObserved: sampleRecord(0).ObservedAt, LastObserved: sampleRecord(9).ObservedAt}
			if diff := cmp.Diff(want, rep); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyEmptyLedger(t *testing.T) {
	t.Parallel()
	rep, err := Verify(&memSource{}, testSigner(t, 1).Public(), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 0 || rep.Checkpoints != 0 {
		t.Errorf("report = %+v", rep)
	}
}

// TestVerifyTamper is the tamper suite: each fault is detected, and the
// first bad record is named with what is wrong.
func TestVerifyTamper(t *testing.T) {
	t.Parallel()
	other := testSigner(t, 2)
	tests := []struct {
		name        string
		every       int // checkpoint interval; 0 means 1
		tamper      func(t *testing.T, s *memSource)
		wantSeq     int64
		wantID      string
		wantProblem string
	}{
		{
			name:    "one byte changed in a blob",
			tamper:  func(t *testing.T, s *memSource) { flipPayloadByte(s.records[4].Envelope) },
			wantSeq: 4, wantID: "cr-000004", wantProblem: "no valid signature",
		},
		{
			name:    "one bit flipped in a blob's JSON",
			tamper:  func(t *testing.T, s *memSource) { s.records[4].Envelope[0] ^= 1 },
			wantSeq: 4, wantID: "cr-000004", wantProblem: "not DSSE JSON",
		},
		{
			name: "blob deleted",
			tamper: func(t *testing.T, s *memSource) {
				s.records[4] = StoredRecord{Seq: 4, Missing: true}
			},
			wantSeq: 4, wantID: "cr-000004", wantProblem: "missing from the blob store",
		},
		{
			name:    "record gone from the sequence",
			tamper:  func(t *testing.T, s *memSource) { s.records = append(s.records[:4], s.records[5:]...) },
			wantSeq: 4, wantID: "cr-000004", wantProblem: "skip from 3 to 5",
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, s *memSource) {
				s.records[3].Envelope, s.records[5].Envelope = s.records[5].Envelope, s.records[3].Envelope
			},
			wantSeq: 3, wantID: "cr-000005", wantProblem: "not the one the checkpoint committed to",
		},
		{
			name:  "two records swapped, sparse checkpoints",
			every: 4,
			tamper: func(t *testing.T, s *memSource) {
				s.records[5].Envelope, s.records[6].Envelope = s.records[6].Envelope, s.records[5].Envelope
			},
			wantSeq: 4, wantID: "cr-000004", wantProblem: "a record in 4..7 was reordered",
		},
		{
			name:    "log truncated",
			tamper:  func(t *testing.T, s *memSource) { s.records = s.records[:8] },
			wantSeq: 8, wantID: "cr-000008", wantProblem: "log truncated: the latest checkpoint commits to 10 records but only 8 are stored",
		},
		{
			name: "log and index truncated",
			tamper: func(t *testing.T, s *memSource) {
				s.records, s.rows = s.records[:8], s.rows[:8]
			},
			wantSeq: 8, wantProblem: "log truncated",
		},
		{
			name: "checkpoint replaced by one signed with another key",
			tamper: func(t *testing.T, s *memSource) {
				s.checkpoints[5].Data = resignCheckpoint(t, other, s.checkpoints[5].Data)
			},
			wantSeq: 5, wantID: "cr-000005", wantProblem: "checkpoint is not signed by changegate.test/ledger",
		},
		{
			name: "checkpoint with a forged root signed with another key",
			tamper: func(t *testing.T, s *memSource) {
				data, err := other.SignCheckpoint(testOrigin, 6, make([]byte, 32))
				if err != nil {
					t.Fatal(err)
				}
				s.checkpoints[5].Data = data
			},
			wantSeq: 5, wantID: "cr-000005", wantProblem: "checkpoint is not signed by",
		},
		{
			name: "record re-signed with a foreign key",
			tamper: func(t *testing.T, s *memSource) {
				s.records[7].Envelope = mustSign(t, other, sampleRecord(7))
			},
			wantSeq: 7, wantID: "cr-000007", wantProblem: "no valid signature by key " + KeyID(testSigner(t, 1).Public()),
		},
		{
			name: "whole ledger re-signed with a foreign key",
			tamper: func(t *testing.T, s *memSource) {
				forged := goodLedgerSignedBy(t, other)
				s.records, s.checkpoints = forged.records, forged.checkpoints
			},
			wantSeq: 0, wantID: "cr-000000", wantProblem: "no valid signature",
		},
		{
			name:    "index row edited",
			tamper:  func(t *testing.T, s *memSource) { s.rows[2].Fields[FieldCompliant] = "false" },
			wantSeq: 2, wantID: "cr-000002", wantProblem: `index row disagrees with the record: compliant is "false", the record says "true"`,
		},
		{
			name:    "index row's exception closed without a closing record",
			tamper:  func(t *testing.T, s *memSource) { s.rows[6].Fields[FieldExceptionState] = ExceptionStateClosed },
			wantSeq: 6, wantID: "cr-000006", wantProblem: `exception_state is "closed", the log says "closing"`,
		},
		{
			name:    "index row's closed exception reopened",
			tamper:  func(t *testing.T, s *memSource) { s.rows[3].Fields[FieldExceptionState] = ExceptionStateOpen },
			wantSeq: 3, wantID: "cr-000003", wantProblem: `exception_state is "open", the log says "closed"`,
		},
		{
			name:    "index row deleted",
			tamper:  func(t *testing.T, s *memSource) { s.rows = append(s.rows[:2], s.rows[3:]...) },
			wantSeq: 2, wantID: "cr-000002", wantProblem: "no index row",
		},
		{
			name: "index row without a record",
			tamper: func(t *testing.T, s *memSource) {
				s.rows = append(s.rows, IndexRow{Seq: 10, Fields: map[string]string{FieldID: "cr-phantom"}})
			},
			wantSeq: 10, wantID: "cr-phantom", wantProblem: "index row has no record",
		},
		{
			name: "checkpoints go backwards",
			tamper: func(t *testing.T, s *memSource) {
				s.checkpoints = append(s.checkpoints, s.checkpoints[3])
			},
			wantSeq: 3, wantProblem: "checkpoints went backwards",
		},
		{
			name:    "checkpoint stored under another size",
			tamper:  func(t *testing.T, s *memSource) { s.checkpoints[4].Size = 6; s.checkpoints = s.checkpoints[:5] },
			wantSeq: 5, wantID: "cr-000005", wantProblem: "stored as size 6 but signed for size 5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := goodLedger(t, max(tt.every, 1)).clone()
			tt.tamper(t, src)
			_, err := Verify(src, testSigner(t, 1).Public(), testOrigin)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			if ve.Seq != tt.wantSeq || ve.RecordID != tt.wantID || !strings.Contains(ve.Problem, tt.wantProblem) {
				t.Errorf("Verify = %q\nwant record %d (%s) with a problem containing %q", ve, tt.wantSeq, tt.wantID, tt.wantProblem)
			}
		})
	}
}

// A record appended twice (a replayed delivery written twice) is named at
// its second copy, even though it is signed and checkpointed.
func TestVerifyDuplicate(t *testing.T) {
	t.Parallel()
	l := newLedger(testSigner(t, 1), 1)
	for i := range 4 {
		l.append(t, sampleRecord(i))
	}
	l.append(t, sampleRecord(1))
	_, err := Verify(l.src, testSigner(t, 1).Public(), testOrigin)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 4 || ve.RecordID != "cr-000001" || !strings.Contains(ve.Problem, "duplicate record id: also at 1") {
		t.Errorf("Verify = %v, want record 4 named as a duplicate of 1", err)
	}
}

// A closing record must close an earlier, open exception.
func TestVerifyDanglingClose(t *testing.T) {
	t.Parallel()
	l := newLedger(testSigner(t, 1), 1)
	l.append(t, sampleRecord(0))
	r := sampleRecord(1)
	r.Exception = &Exception{Kind: ExceptionEmergency, Reason: "approved", OpenedAt: r.ObservedAt, Closes: "cr-000000"}
	l.append(t, r)
	_, err := Verify(l.src, testSigner(t, 1).Public(), testOrigin)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 1 || !strings.Contains(ve.Problem, "closes record cr-000000, which has no open exception") {
		t.Errorf("Verify = %v, want record 1 named for closing nothing", err)
	}
}

// A source that fails to read is an error, not a verdict on the ledger.
func TestVerifySourceError(t *testing.T) {
	t.Parallel()
	src := failingSource{memSource: goodLedger(t, 1)}
	_, err := Verify(src, testSigner(t, 1).Public(), testOrigin)
	var ve *VerifyError
	if err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Verify = %v, want the read error", err)
	}
}

type failingSource struct{ *memSource }

func (f failingSource) Records() iter.Seq2[StoredRecord, error] {
	return func(yield func(StoredRecord, error) bool) {
		for r := range f.memSource.Records() {
			if r.Seq == 5 {
				yield(StoredRecord{}, errors.New("disk on fire"))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func goodLedgerSignedBy(t *testing.T, s *Signer) *memSource {
	t.Helper()
	l := newLedger(s, 1)
	for i := range 10 {
		l.append(t, sampleRecord(i))
	}
	return l.src
}

// flipPayloadByte changes one base64 character in the middle of the
// payload to another valid one, so the envelope still parses.
func flipPayloadByte(env []byte) {
	i := strings.Index(string(env), `"payload":"`) + len(`"payload":"`) + 200
	if env[i] == 'A' {
		env[i] = 'B'
	} else {
		env[i] = 'A'
	}
}

// resignCheckpoint signs the same checkpoint body with another key.
func resignCheckpoint(t *testing.T, s *Signer, data []byte) []byte {
	t.Helper()
	cp, err := peekCheckpoint(data, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.SignCheckpoint(cp.Origin, cp.Size, cp.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bigN is enough records, with a checkpoint after each, for their jobs to
// fill more than one chunk: Verify checks them in two batches.
const bigN = chunkSize/2 + 88

var big struct {
	sync.Mutex
	src *memSource
}

// bigLedger returns a copy of a good ledger of bigN records, signed once
// for all the tests that use it.
func bigLedger(t *testing.T) *memSource {
	t.Helper()
	big.Lock()
	defer big.Unlock()
	if big.src == nil {
		s := testSigner(t, 1)
		recs, envs := signAll(t, s, bigN)
		l := newLedger(s, 1)
		for i := range bigN {
			l.appendEnvelope(t, recs[i], envs[i])
		}
		big.src = l.src
	}
	return big.src.clone()
}

func TestVerifyAcrossChunks(t *testing.T) {
	t.Parallel()
	src := bigLedger(t)
	if jobs := 2 * len(src.records); jobs <= chunkSize {
		t.Fatalf("%d jobs fit in one chunk of %d", jobs, chunkSize)
	}
	rep, err := Verify(src, testSigner(t, 1).Public(), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	root := rootOf(src)
	if rep.Records != bigN || rep.Checkpoints != bigN || rep.LatestCheckpoint != bigN || !bytes.Equal(rep.Root, root) {
		t.Errorf("report = %+v, want %d records and checkpoints with root %x", rep, bigN, root)
	}
}

// A bad signature among good ones fails its batch; the chunk is then
// checked one by one, and the record named is the one VerifyEnvelope or
// VerifyCheckpoint rejects, with its error as the problem.
func TestVerifyBadSignatureInBatch(t *testing.T) {
	t.Parallel()
	s, other := testSigner(t, 1), testSigner(t, 2)
	nv, err := NoteVerifier(testOrigin, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	// Each tamper returns the sequence number of the bad record and the
	// problem expected there. The jobs of record mid are in the middle of
	// the first chunk.
	const mid = chunkSize / 4
	badEnvelope := func(t *testing.T, src *memSource, k int, env []byte) (int64, string) {
		src.records[k].Envelope = env
		_, err := VerifyEnvelope(env, s.Public())
		if err == nil {
			t.Fatal("VerifyEnvelope accepted the tampered envelope")
		}
		return int64(k), err.Error()
	}
	badCheckpoint := func(t *testing.T, src *memSource, k int, data []byte) (int64, string) {
		src.checkpoints[k].Data = data
		_, err := VerifyCheckpoint(data, nv)
		if err == nil {
			t.Fatal("VerifyCheckpoint accepted the tampered checkpoint")
		}
		return int64(src.checkpoints[k].Size) - 1, err.Error()
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, src *memSource) (seq int64, problem string)
	}{
		{
			name: "envelope with another record's signature",
			tamper: func(t *testing.T, src *memSource) (int64, string) {
				return badEnvelope(t, src, mid, withEnvelopeSig(t, src.records[mid].Envelope, src.records[mid+1].Envelope))
			},
		},
		{
			name: "envelope signed by a foreign key",
			tamper: func(t *testing.T, src *memSource) (int64, string) {
				return badEnvelope(t, src, mid, mustSign(t, other, sampleRecord(mid)))
			},
		},
		{
			name: "envelope signed by a foreign key under the key's id",
			tamper: func(t *testing.T, src *memSource) (int64, string) {
				env := bytes.Replace(mustSign(t, other, sampleRecord(mid)), []byte(KeyID(other.Public())), []byte(KeyID(s.Public())), 1)
				return badEnvelope(t, src, mid, env)
			},
		},
		{
			name: "checkpoint with another checkpoint's signature",
			tamper: func(t *testing.T, src *memSource) (int64, string) {
				return badCheckpoint(t, src, mid, withCheckpointSig(t, src.checkpoints[mid].Data, src.checkpoints[mid+1].Data))
			},
		},
		{
			name: "checkpoint before a bad envelope in the same batch",
			tamper: func(t *testing.T, src *memSource) (int64, string) {
				badEnvelope(t, src, mid+10, withEnvelopeSig(t, src.records[mid+10].Envelope, src.records[mid+11].Envelope))
				return badCheckpoint(t, src, mid-10, withCheckpointSig(t, src.checkpoints[mid-10].Data, src.checkpoints[mid-9].Data))
			},
		},
		{
			name: "envelope in the last batch",
			tamper: func(t *testing.T, src *memSource) (int64, string) {
				return badEnvelope(t, src, bigN-5, withEnvelopeSig(t, src.records[bigN-5].Envelope, src.records[bigN-4].Envelope))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := bigLedger(t)
			seq, problem := tt.tamper(t, src)
			_, err := Verify(src, s.Public(), testOrigin)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			want := &VerifyError{Seq: seq, RecordID: fmt.Sprintf("cr-%06d", seq), Problem: problem}
			if diff := cmp.Diff(want, ve); diff != "" {
				t.Errorf("Verify error (-want +got):\n%s", diff)
			}
		})
	}
}

// withEnvelopeSig returns env with the signature of from: well formed,
// by the key, and not over env's payload.
func withEnvelopeSig(t *testing.T, env, from []byte) []byte {
	t.Helper()
	e, err := decodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeEnvelope(from)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(env, e.signatures[0].sig, f.signatures[0].sig, 1)
}

// withCheckpointSig returns the checkpoint data with the signature lines of
// from.
func withCheckpointSig(t *testing.T, data, from []byte) []byte {
	t.Helper()
	i, j := bytes.LastIndex(data, []byte("\n\n")), bytes.LastIndex(from, []byte("\n\n"))
	if i < 0 || j < 0 {
		t.Fatal("not a note")
	}
	return append(bytes.Clone(data[:i+2]), from[j+2:]...)
}

// rootOf is the root of the tree of the source's stored envelopes.
func rootOf(src *memSource) []byte {
	l := NewLog()
	for _, r := range src.records {
		l.Append(r.Envelope)
	}
	root, _ := l.Root(l.Size())
	return root
}
