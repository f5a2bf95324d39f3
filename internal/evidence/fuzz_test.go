package evidence

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/change"
	"github.com/google/go-cmp/cmp"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// FuzzCanonicalize: whatever is accepted comes out as valid JSON that
// means the same thing, and canonicalising it again changes nothing.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[true,false,null,"x"]}`, `"\u00e9\ud83d\ude00\t"`, `-0`, `[1e2]`, `{"a":1,"a":2}`,
		`{"😀":1,"` + "\ue000" + `":2}`, `[[[[]]]]`, `"\xff"`, `18446744073709551615`,
	} {
		f.Add([]byte(s))
	}
	if env, err := testSigner(f, 1).Sign(sampleRecord(1)); err == nil {
		f.Add(env)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := canonicalize(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("canonicalize accepted invalid JSON %q", data)
		}
		if !json.Valid(out) {
			t.Fatalf("canonicalize(%q) = %q, not valid JSON", data, out)
		}
		again, err := canonicalize(out)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("not a fixed point: %q → %q → %q (%v)", data, out, again, err)
		}
		var in, back any
		if json.Unmarshal(data, &in) == nil {
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(in, back); diff != "" {
				t.Fatalf("meaning changed for %q (-in +out):\n%s", data, diff)
			}
		}
	})
}

// FuzzVerifyEnvelope: arbitrary bytes never panic the verifier, it accepts
// nothing the key did not sign, and it answers as the dsse package's
// verifier and encoding/json did, error for error.
func FuzzVerifyEnvelope(f *testing.F) {
	s, other := testSigner(f, 1), testSigner(f, 2)
	env, err := s.Sign(sampleRecord(1))
	if err != nil {
		f.Fatal(err)
	}
	foreign, err := other.Sign(sampleRecord(1))
	if err != nil {
		f.Fatal(err)
	}
	e, err := decodeEnvelope(env)
	if err != nil {
		f.Fatal(err)
	}
	sig := func(keyID string, sig []byte) string {
		return `{"keyid":"` + keyID + `","sig":"` + string(sig) + `"}`
	}
	withSigs := func(sigs ...string) []byte {
		return []byte(`{"payload":"` + string(e.payload) + `","payloadType":"` + PayloadType + `","signatures":[` + strings.Join(sigs, ",") + `]}`)
	}
	ours, theirs := KeyID(s.Public()), KeyID(other.Public())
	fsig := decodeEnvelopeOrFail(f, foreign).signatures[0].sig
	for _, seed := range [][]byte{
		env,
		foreign,
		[]byte(`{"payload":"","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"","sig":""}]}`),
		withSigs(),
		withSigs(sig(theirs, fsig), sig(ours, e.signatures[0].sig)),
		withSigs(sig(ours, fsig), sig("", e.signatures[0].sig)),
		withSigs(sig(ours, e.signatures[0].sig), sig(ours, []byte("not base64!"))),
		withSigs(sig(theirs, fsig)),
		withSigs(sig(ours, []byte(strings.NewReplacer("+", "-", "/", "_").Replace(string(e.signatures[0].sig))))),
		bytes.Replace(env, e.payload, []byte(base64.URLEncoding.EncodeToString(mustPayload(f, env))), 1),
		bytes.Replace(env, e.payload[:40], []byte("!!!!"), 1),
	} {
		f.Add(seed)
	}
	v, err := NewVerifier(s.Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := v.VerifyEnvelope(data)
		want, wantErr := referenceVerifyEnvelope(data, s.Public())
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || errors.Is(err, ErrSignature) != errors.Is(wantErr, ErrSignature) {
			t.Fatalf("VerifyEnvelope(%q) error\n%v\nwant\n%v", data, err, wantErr)
		}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Fatalf("VerifyEnvelope(%q) (-want +got):\n%s", data, diff)
		}
		if err != nil {
			return
		}
		if r.Validate() != nil {
			t.Fatalf("accepted an invalid record from %q", data)
		}
		if !bytes.Equal(mustPayload(t, data), mustPayload(t, env)) {
			t.Fatalf("accepted a payload the key never signed: %q", data)
		}
	})
}

func decodeEnvelopeOrFail(tb testing.TB, env []byte) rawEnvelope {
	tb.Helper()
	e, err := decodeEnvelope(env)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// referenceVerifyEnvelope is VerifyEnvelope as it was before Verify checked
// signatures in batches: on the dsse package's verifier and encoding/json.
func referenceVerifyEnvelope(envelope []byte, pub ed25519.PublicKey) (*Record, error) {
	k := referenceKey{pub: pub, keyID: KeyID(pub)}
	raw, err := decodeEnvelope(envelope)
	if err != nil {
		return nil, fmt.Errorf("envelope is not DSSE JSON: %w", err)
	}
	env := &dsse.Envelope{PayloadType: string(raw.payloadType), Payload: string(raw.payload)}
	for _, s := range raw.signatures {
		env.Signatures = append(env.Signatures, dsse.Signature{KeyID: string(s.keyID), Sig: string(s.sig)})
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("envelope payload type is %q, want %q", env.PayloadType, PayloadType)
	}
	ev, err := dsse.NewEnvelopeVerifier(k)
	if err != nil {
		return nil, err
	}
	_, payload, err := ev.VerifyAndDecode(context.Background(), env)
	if err != nil {
		var ids []string
		for _, s := range env.Signatures {
			ids = append(ids, s.KeyID)
		}
		return nil, fmt.Errorf("%w: no valid signature by key %s (envelope signed by %q): %v", ErrSignature, k.keyID, ids, err)
	}
	var st struct {
		statement
		Predicate Record `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("payload is not an in-toto statement of a change record: %w", err)
	}
	if st.Type != intoto.StatementTypeUri {
		return nil, fmt.Errorf("statement _type is %q, want %q", st.Type, intoto.StatementTypeUri)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("statement predicateType is %q, want %q", st.PredicateType, PredicateType)
	}
	r := st.Predicate
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("record %s is invalid: %w", r.ID, err)
	}
	want, err := subjectOf(&r)
	if err != nil {
		return nil, err
	}
	if len(st.Subject) != 1 || st.Subject[0].Name != want.Name || len(st.Subject[0].Digest) != 1 ||
		st.Subject[0].Digest[string(intoto.AlgorithmGitCommit)] != r.Subject.SHA() {
		return nil, fmt.Errorf("statement subject %v is not the record's commit %s", st.Subject, want.Name)
	}
	return &r, nil
}

// referenceKey is the dsse.Verifier VerifyEnvelope once used.
type referenceKey struct {
	pub   ed25519.PublicKey
	keyID string
}

func (k referenceKey) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(k.pub, data, sig) {
		return ErrSignature
	}
	return nil
}

func (k referenceKey) KeyID() (string, error)   { return k.keyID, nil }
func (k referenceKey) Public() crypto.PublicKey { return k.pub }

// FuzzCheckpoint: checkpoint parsing never panics, a verified checkpoint
// is one the key signed, and VerifyCheckpoint answers as note.Open did,
// error for error.
func FuzzCheckpoint(f *testing.F) {
	s, other := testSigner(f, 1), testSigner(f, 2)
	good, err := s.SignCheckpoint(testOrigin, 7, make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	foreign, err := other.SignCheckpoint(testOrigin, 7, make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("changegate.test/ledger\n7\nAAAA\n\n— x y\n"))
	f.Add(bytes.Replace(good, []byte("\n7\n"), []byte("\n8\n"), 1))
	// A bad signature, then a malformed line: note.Open stops at the first.
	f.Add(append(bytes.Replace(good, []byte("\n7\n"), []byte("\n8\n"), 1), "junk\n"...))
	f.Add(append(bytes.Clone(good), "junk\n"...))
	f.Add(append(bytes.Clone(foreign), good[bytes.LastIndex(good, []byte("\n\n"))+2:]...))
	f.Add(foreign)
	v, err := NoteVerifier(testOrigin, s.Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = peekCheckpoint(data, testOrigin)
		cp, err := VerifyCheckpoint(data, v)
		want, wantErr := referenceVerifyCheckpoint(data, v)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || errors.Is(err, ErrSignature) != errors.Is(wantErr, ErrSignature) {
			t.Fatalf("VerifyCheckpoint(%q) error\n%v\nwant\n%v", data, err, wantErr)
		}
		if diff := cmp.Diff(want, cp); diff != "" {
			t.Fatalf("VerifyCheckpoint(%q) (-want +got):\n%s", data, diff)
		}
		if err != nil {
			return
		}
		if cp.Size != 7 || !bytes.Equal(cp.Hash, make([]byte, 32)) {
			t.Fatalf("verified a checkpoint never signed: %+v", cp)
		}
	})
}

// referenceVerifyCheckpoint is VerifyCheckpoint as it was before Verify
// checked signatures in batches: note.Open checking the signature itself.
func referenceVerifyCheckpoint(data []byte, v note.Verifier) (log.Checkpoint, error) {
	n, err := note.Open(data, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return log.Checkpoint{}, fmt.Errorf("%w: checkpoint is not signed by %s+%08x: %v", ErrSignature, v.Name(), v.KeyHash(), err)
		}
		return log.Checkpoint{}, fmt.Errorf("checkpoint is not a signed note: %w", err)
	}
	return parseCheckpointText([]byte(n.Text), v.Name())
}

// FuzzDecodeStatement: the plain decoder decodes exactly what
// json.Unmarshal does, or leaves the payload to it.
func FuzzDecodeStatement(f *testing.F) {
	for _, r := range decodeSamples() {
		env, err := testSigner(f, 1).Sign(r)
		if err != nil {
			f.Fatal(err)
		}
		payload := mustPayload(f, env)
		f.Add(payload)
		f.Add(bytes.ReplaceAll(payload, []byte(","), []byte(" ,\n\t")))
		f.Add(bytes.Replace(payload, []byte(`"id":`), []byte(`"ID":`), 1))
		f.Add(bytes.Replace(payload, []byte(`"number":1003`), []byte(`"number":1003.0`), 1))
		f.Add(bytes.Replace(payload, []byte(`"number":1003`), []byte(`"number":null`), 1))
		f.Add(bytes.Replace(payload, []byte(`"number":1003`), []byte(`"number":"1003"`), 1))
		f.Add(bytes.Replace(payload, []byte(`"draft":false`), []byte(`"draft":false,"draft":true`), 1))
		f.Add(bytes.Replace(payload, []byte(`"labels":["payments"]`), []byte(`"labels":[]`), 1))
		f.Add(bytes.Replace(payload, []byte(`"main"`), []byte(`"m\u0061in\ud83d\ude00\ud800"`), 1))
		f.Add(bytes.Replace(payload, []byte(`"created_at":"`), []byte(`"created_at":"x`), 1))
		f.Add(bytes.Replace(payload, []byte(`"gitCommit":`), []byte(`"a":"b","gitCommit":`), 1))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var plain recordStatement
		p := canonParser{data: data}
		ok := decodeValue(&p, decodeRecordStatement, reflect.ValueOf(&plain).Elem())
		if p.skipSpace(); p.pos != len(data) {
			ok = false
		}
		var want recordStatement
		err := json.Unmarshal(data, &want)
		if ok && err != nil {
			t.Fatalf("plain decoder accepted %q, which json.Unmarshal rejects: %v", data, err)
		}
		if ok && !reflect.DeepEqual(plain, want) {
			t.Fatalf("plain decoder and json.Unmarshal differ on %q (-json +plain):\n%s", data, cmp.Diff(want, plain))
		}
		got, gotErr := decodeStatement(data)
		if fmt.Sprint(gotErr) != fmt.Sprint(err) || (err == nil && !reflect.DeepEqual(*got, want)) {
			t.Fatalf("decodeStatement(%q) = %v, json.Unmarshal says %v", data, gotErr, err)
		}
	})
}

// decodeSamples are records that between them have every kind of value a
// record holds, strings that need escaping, and empty and null lists.
func decodeSamples() []*Record {
	standard := sampleRecord(3)
	standard.Facts.PR.Title = "Ünïcödé \"quoted\" \\ tab\t ctrl\x01 \u2028 😀"
	standard.Decision.EmergencyWindow = 72 * time.Hour
	standard.Facts.Gaps = []change.Gap{{Source: "jira", Reason: "timeout", Truncated: true}}
	standard.Facts.Statuses = []change.Status{{Context: "ci", State: "success", SHA: standard.Subject.HeadSHA, CreatedAt: t0}}
	standard.Facts.Tickets[0].Ticket.Approvals[0].Approvers = nil

	emergency := sampleRecord(4)
	emergency.ChangeType = Emergency
	emergency.Exception = &Exception{Kind: ExceptionEmergency, Reason: "emergency label", OpenedAt: emergency.ObservedAt, DueAt: emergency.ObservedAt.Add(72 * time.Hour)}

	closing := sampleRecord(5)
	closing.Exception = &Exception{Kind: ExceptionEmergency, Reason: "approved", OpenedAt: closing.ObservedAt, Closes: "cr-000004"}
	closing.Links = []string{"cr-000004"}

	push := sampleRecord(6)
	push.ChangeType = DirectPush
	push.Subject = Subject{BaseRef: "main", HeadSHA: push.Subject.HeadSHA}
	push.Exception = &Exception{Kind: ExceptionDirectPush, Reason: "push", OpenedAt: push.ObservedAt}
	push.Facts = change.Facts{}
	push.Decision = change.Decision{Outcome: change.NonCompliant}
	push.DeliveryIDs = nil

	return []*Record{standard, emergency, closing, push}
}

// The plain decoder reads what a Signer writes: if a change to the record's
// types left it to json.Unmarshal, Verify would be slower for nothing.
func TestDecodeStatementPlain(t *testing.T) {
	t.Parallel()
	for _, r := range decodeSamples() {
		env, err := testSigner(t, 1).Sign(r)
		if err != nil {
			t.Fatal(err)
		}
		payload := mustPayload(t, env)
		var plain, want recordStatement
		p := canonParser{data: payload}
		if !decodeValue(&p, decodeRecordStatement, reflect.ValueOf(&plain).Elem()) || p.pos != len(payload) {
			t.Fatalf("record %s: the plain decoder gave up at offset %d of %s", r.ID, p.pos, payload)
		}
		if err := json.Unmarshal(payload, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(plain, want) {
			t.Errorf("record %s (-json +plain):\n%s", r.ID, cmp.Diff(want, plain))
		}
	}
}

// FuzzRecordRoundTrip: a record holding any text and numbers a pull
// request can bring (titles, bodies, logins, branch names, ids) signs,
// verifies back to the same record, and encodes to the same canonical
// bytes again.
//
//	go test ./internal/evidence -run '^$' -fuzz FuzzRecordRoundTrip -fuzztime 60s
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("PAY-1: fix", "body\n\twith \"quotes\" \\ and \u2028", "alice", "feature/PAY-1", int64(9000000000), 1003)
	f.Add("\xff\xfe", "\x00\x01", "bot[bot]", "", int64(-1), 0)
	f.Add("😀\xed\xa0\x80", "=cmd|' /C calc'!A0", "Ünï", "a/b/c", int64(1<<53+1), -7)
	s := testSigner(f, 1)
	f.Fuzz(func(t *testing.T, title, body, login, branch string, reviewID int64, number int) {
		r := sampleRecord(1)
		r.Facts.PR.Title, r.Facts.PR.Body, r.Facts.PR.Author, r.Facts.PR.HeadRef = title, body, login, branch
		r.Facts.Reviews[0].ID, r.Facts.Reviews[0].User = reviewID, login
		r.Facts.PR.Number = number
		env, err := s.Sign(r)
		if err != nil {
			return // not encodable (such as invalid UTF-8): refused, never stored
		}
		got, err := VerifyEnvelope(env, s.Public())
		if err != nil {
			t.Fatalf("a record this signer signed does not verify: %v", err)
		}
		want, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := EncodeRecord(got)
		if err != nil {
			t.Fatalf("the verified record does not encode: %v", err)
		}
		if !bytes.Equal(want, again) {
			t.Fatalf("round trip changed the record:\n%s\n%s", want, again)
		}
	})
}
