package evidence

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
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

// FuzzVerifyEnvelope: arbitrary bytes never panic the verifier, and it
// accepts nothing the key did not sign.
func FuzzVerifyEnvelope(f *testing.F) {
	s := testSigner(f, 1)
	env, err := s.Sign(sampleRecord(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte(`{"payload":"","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"","sig":""}]}`))
	v, err := NewVerifier(s.Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := v.VerifyEnvelope(data)
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

// FuzzCheckpoint: checkpoint parsing never panics, and a verified
// checkpoint is one the key signed.
func FuzzCheckpoint(f *testing.F) {
	s := testSigner(f, 1)
	good, err := s.SignCheckpoint(testOrigin, 7, make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("changegate.test/ledger\n7\nAAAA\n\n— x y\n"))
	v, err := NoteVerifier(testOrigin, s.Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = peekCheckpoint(data, testOrigin)
		cp, err := VerifyCheckpoint(data, v)
		if err != nil {
			return
		}
		if cp.Size != 7 || !bytes.Equal(cp.Hash, make([]byte, 32)) {
			t.Fatalf("verified a checkpoint never signed: %+v", cp)
		}
	})
}
