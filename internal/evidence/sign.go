package evidence

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"golang.org/x/mod/sumdb/note"
)

// ErrSignature is wrapped by every error that means "not signed by this
// key", as opposed to "not well formed".
var ErrSignature = errors.New("signature not valid")

// statement is an in-toto Statement v1 in its JSON form. It is written by
// hand rather than through the attestation package's protobuf types because
// protojson is deliberately unstable in its whitespace and would turn the
// record's integers into doubles; the package still supplies the type URI
// and validates the subject.
type statement struct {
	Type          string          `json:"_type"`
	Subject       []descriptor    `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type descriptor struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// subjectOf is the in-toto subject of a record: the commit that reached
// production, named "<owner>/<repo>@<sha>".
func subjectOf(r *Record) (descriptor, error) {
	sha := r.Subject.SHA()
	d := descriptor{
		Name:   r.Repo.String() + "@" + sha,
		Digest: map[string]string{string(intoto.AlgorithmGitCommit): sha},
	}
	rd := &intoto.ResourceDescriptor{Name: d.Name, Digest: d.Digest}
	if err := rd.Validate(); err != nil {
		return descriptor{}, fmt.Errorf("in-toto subject: %w", err)
	}
	return d, nil
}

// Signer signs records and checkpoints with one ed25519 key.
type Signer struct {
	priv  ed25519.PrivateKey
	keyID string
	dsse  *dsse.EnvelopeSigner
}

// NewSigner returns a Signer for priv.
func NewSigner(priv ed25519.PrivateKey) (*Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub := priv.Public().(ed25519.PublicKey)
	sv := &dsseKey{pub: pub, priv: priv, keyID: KeyID(pub)}
	es, err := dsse.NewEnvelopeSigner(sv)
	if err != nil {
		return nil, fmt.Errorf("dsse signer: %w", err)
	}
	return &Signer{priv: priv, keyID: sv.keyID, dsse: es}, nil
}

// Public returns the public key.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Sign encodes r canonically, wraps it in an in-toto Statement and returns
// the DSSE envelope: the exact bytes to store, and the Merkle leaf.
func (s *Signer) Sign(r *Record) ([]byte, error) {
	payload, err := EncodeRecord(r)
	if err != nil {
		return nil, err
	}
	subj, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	st, err := Canonical(statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []descriptor{subj},
		PredicateType: PredicateType,
		Predicate:     payload,
	})
	if err != nil {
		return nil, err
	}
	// Signing is CPU only; the dsse interface wants a context anyway.
	env, err := s.dsse.SignPayload(context.Background(), PayloadType, st)
	if err != nil {
		return nil, fmt.Errorf("sign record %s: %w", r.ID, err)
	}
	return Canonical(env)
}

// Verifier checks envelopes against one public key.
type Verifier struct {
	pub   ed25519.PublicKey
	keyID string
	dsse  *dsse.EnvelopeVerifier
}

// NewVerifier returns a Verifier for pub.
func NewVerifier(pub ed25519.PublicKey) (*Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	k := &dsseKey{pub: pub, keyID: KeyID(pub)}
	ev, err := dsse.NewEnvelopeVerifier(k)
	if err != nil {
		return nil, fmt.Errorf("dsse verifier: %w", err)
	}
	return &Verifier{pub: pub, keyID: k.keyID, dsse: ev}, nil
}

// VerifyEnvelope checks envelope against pub and returns the record in it.
func VerifyEnvelope(envelope []byte, pub ed25519.PublicKey) (*Record, error) {
	v, err := NewVerifier(pub)
	if err != nil {
		return nil, err
	}
	return v.VerifyEnvelope(envelope)
}

// VerifyEnvelope checks that envelope carries a valid signature by the key
// over PAE(payloadType, payload), where payload is the base64-decoded
// payload as stored, and returns the record decoded from those same bytes.
// It also checks that the statement's subject is the record's commit, so
// a signed record cannot be presented as evidence for another commit.
func (v *Verifier) VerifyEnvelope(envelope []byte) (*Record, error) {
	env, err := decodeEnvelope(envelope)
	if err != nil {
		return nil, fmt.Errorf("envelope is not DSSE JSON: %w", err)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("envelope payload type is %q, want %q", env.PayloadType, PayloadType)
	}
	_, payload, err := v.dsse.VerifyAndDecode(context.Background(), env)
	if err != nil {
		var ids []string
		for _, s := range env.Signatures {
			ids = append(ids, s.KeyID)
		}
		return nil, fmt.Errorf("%w: no valid signature by key %s (envelope signed by %q): %v", ErrSignature, v.keyID, ids, err)
	}
	// One pass over the payload decodes statement and record together.
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

// decodeEnvelope reads a DSSE envelope strictly: exactly the three DSSE
// fields, each once, and nothing after. It has its own small parser
// because encoding/json spends more time scanning the base64 payload than
// ed25519 spends verifying it, and Verify reads every envelope.
func decodeEnvelope(data []byte) (*dsse.Envelope, error) {
	p := canonParser{data: data}
	var env dsse.Envelope
	seen := map[string]bool{}
	err := p.fields(func(key string) error {
		var err error
		switch key {
		case "payload":
			env.Payload, err = p.stringValue()
		case "payloadType":
			env.PayloadType, err = p.stringValue()
		case "signatures":
			err = p.elements(func() error {
				var sig dsse.Signature
				seenSig := map[string]bool{}
				err := p.fields(func(key string) error {
					var err error
					switch key {
					case "keyid":
						sig.KeyID, err = p.stringValue()
					case "sig":
						sig.Sig, err = p.stringValue()
					default:
						return fmt.Errorf("unknown field %q in signature", key)
					}
					if seenSig[key] {
						return fmt.Errorf("duplicate field %q in signature", key)
					}
					seenSig[key] = true
					return err
				})
				env.Signatures = append(env.Signatures, sig)
				return err
			})
		default:
			return fmt.Errorf("unknown field %q", key)
		}
		if seen[key] {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		return err
	})
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(data) {
		return nil, errors.New("data after the JSON value")
	}
	if !seen["payload"] || !seen["payloadType"] || !seen["signatures"] {
		return nil, errors.New("missing payload, payloadType or signatures")
	}
	return &env, nil
}

// dsseKey adapts an ed25519 key to the dsse package's Signer and Verifier.
type dsseKey struct {
	pub   ed25519.PublicKey
	priv  ed25519.PrivateKey // nil when only verifying
	keyID string
}

func (k *dsseKey) Sign(_ context.Context, data []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, errors.New("no private key")
	}
	return ed25519.Sign(k.priv, data), nil
}

func (k *dsseKey) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(k.pub, data, sig) {
		return ErrSignature
	}
	return nil
}

func (k *dsseKey) KeyID() (string, error)   { return k.keyID, nil }
func (k *dsseKey) Public() crypto.PublicKey { return k.pub }

// noteSigner signs checkpoints as a sumdb note with the record key. The key
// name is the log's origin, as C2SP checkpoints require.
type noteSigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
}

func (s *noteSigner) Name() string                    { return s.name }
func (s *noteSigner) KeyHash() uint32                 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// NoteVerifier returns the note verifier for checkpoints of the log named
// origin signed with pub. Its key, origin+hash+key, is what an auditor
// configures in witness or checkpoint tools.
func NoteVerifier(origin string, pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint verifier key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint verifier key %q: %w", origin, err)
	}
	return v, nil
}
