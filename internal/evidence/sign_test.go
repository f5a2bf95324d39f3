package evidence

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	s := testSigner(t, 1)
	r := sampleRecord(3)
	env, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyEnvelope(env, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("verified record (-want +got):\n%s", diff)
	}

	// The envelope is DSSE over an in-toto Statement whose subject is the
	// merge commit, and it is itself canonical JSON.
	if re, err := canonicalize(env); err != nil || !bytes.Equal(re, env) {
		t.Errorf("envelope is not canonical: %v", err)
	}
	var e dsse.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	var st struct {
		Type          string       `json:"_type"`
		Subject       []descriptor `json:"subject"`
		PredicateType string       `json:"predicateType"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	want := []descriptor{{Name: "acme/pay@" + r.Subject.MergeSHA, Digest: map[string]string{"gitCommit": r.Subject.MergeSHA}}}
	if diff := cmp.Diff(want, st.Subject); diff != "" {
		t.Errorf("subject (-want +got):\n%s", diff)
	}
	if st.Type != "https://in-toto.io/Statement/v1" || st.PredicateType != PredicateType || e.PayloadType != PayloadType {
		t.Errorf("statement type %q, predicate type %q, payload type %q", st.Type, st.PredicateType, e.PayloadType)
	}
	if len(e.Signatures) != 1 || e.Signatures[0].KeyID != KeyID(s.Public()) {
		t.Errorf("signatures = %+v, want one by %s", e.Signatures, KeyID(s.Public()))
	}
}

func TestSubjectIsHeadWithoutMerge(t *testing.T) {
	t.Parallel()
	s := testSigner(t, 1)
	r := sampleRecord(3)
	r.ChangeType = DirectPush
	r.Subject = Subject{BaseRef: "main", HeadSHA: r.Subject.HeadSHA}
	r.Exception = &Exception{Kind: ExceptionDirectPush, Reason: "push not covered by a merged pull request", OpenedAt: r.ObservedAt}
	env, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEnvelope(env, s.Public()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(mustPayload(t, env), []byte(`"subject":[{"digest":{"gitCommit":"`+r.Subject.HeadSHA+`"},"name":"acme/pay@`+r.Subject.HeadSHA+`"}]`)) {
		t.Errorf("subject is not the head SHA: %s", mustPayload(t, env))
	}
}

func mustPayload(t testing.TB, env []byte) []byte {
	t.Helper()
	var e dsse.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	p, err := e.DecodeB64Payload()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// resign signs an arbitrary payload with s, as a forger holding the key
// (or a buggy writer) would.
func resign(t *testing.T, s *Signer, payloadType string, payload []byte) []byte {
	t.Helper()
	e, err := s.dsse.SignPayload(context.Background(), payloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyEnvelopeRejects(t *testing.T) {
	t.Parallel()
	s := testSigner(t, 1)
	other := testSigner(t, 2)
	env, err := s.Sign(sampleRecord(3))
	if err != nil {
		t.Fatal(err)
	}
	payload := mustPayload(t, env)

	tests := []struct {
		name    string
		env     []byte
		wantSig bool // errors.Is ErrSignature
		wantErr string
	}{
		{name: "foreign key", env: mustSign(t, other, sampleRecord(3)), wantSig: true, wantErr: "no valid signature by key " + KeyID(s.Public())},
		{name: "payload edited", env: bytes.Replace(env, []byte(`"payload":"ey`), []byte(`"payload":"ez`), 1), wantSig: true},
		{name: "signature stripped", env: []byte(`{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[]}`), wantSig: true},
		{name: "not json", env: []byte("garbage"), wantErr: "not DSSE JSON"},
		{name: "unknown field", env: bytes.Replace(env, []byte(`{"payload"`), []byte(`{"extra":1,"payload"`), 1), wantErr: "unknown field"},
		{name: "payload type", env: resign(t, s, "application/json", payload), wantErr: "payload type"},
		{name: "subject of another commit", env: resign(t, s, PayloadType, bytes.Replace(payload, []byte(`"name":"acme/pay@`), []byte(`"name":"acme/web@`), 1)), wantErr: "not the record's commit"},
		{name: "predicate type", env: resign(t, s, PayloadType, bytes.Replace(payload, []byte(`"predicateType":"`+PredicateType), []byte(`"predicateType":"https://slsa.dev/provenance/v1`), 1)), wantErr: "predicateType"},
		{name: "invalid record", env: resign(t, s, PayloadType, bytes.Replace(payload, []byte(`"change_type":"standard"`), []byte(`"change_type":"hotfix"`), 1)), wantErr: "change_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := VerifyEnvelope(tt.env, s.Public())
			if err == nil {
				t.Fatal("VerifyEnvelope accepted it")
			}
			if got := errors.Is(err, ErrSignature); got != tt.wantSig {
				t.Errorf("errors.Is(%v, ErrSignature) = %v, want %v", err, got, tt.wantSig)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func mustSign(t *testing.T, s *Signer, r *Record) []byte {
	t.Helper()
	env, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestSignWritesCanonicalJSON: the statement and envelope Sign writes
// directly are byte for byte what Canonical makes of them, for records
// with and without exceptions, links and awkward strings.
func TestSignWritesCanonicalJSON(t *testing.T) {
	s := testSigner(t, 1)
	for i := range 20 {
		r := sampleRecord(i)
		switch i % 4 {
		case 1:
			r.ChangeType = Bypass
			r.Exception = &Exception{Kind: ExceptionBypass, Reason: "merged \"while\" red\n\t<é>\u2028", OpenedAt: r.ObservedAt}
		case 2:
			r.Links = []string{"cr-1", "cr-2"}
			r.Facts.PR.Title = "quote \" backslash \\ control \x01 emoji 🚀"
		}
		env, err := s.Sign(r)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Canonical(json.RawMessage(env))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(env, want) {
			t.Fatalf("record %d: envelope is not canonical:\n%s\nwant\n%s", i, env, want)
		}
		e, err := decodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		st, err := base64.StdEncoding.DecodeString(string(e.payload))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := Canonical(json.RawMessage(st)); !bytes.Equal(st, want) {
			t.Fatalf("record %d: statement is not canonical:\n%s\nwant\n%s", i, st, want)
		}
	}
}
