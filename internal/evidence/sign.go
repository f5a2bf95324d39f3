package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

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
	if r.ChangeType == ControlConfig {
		// No commit: the subject is the change of state, named by its key.
		key := SubjectKey(r)
		sum := sha256.Sum256([]byte(key))
		d = descriptor{Name: r.Repo.String() + "@" + key, Digest: map[string]string{string(intoto.AlgorithmSHA256): hex.EncodeToString(sum[:])}}
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
	sv := &dsseKey{priv: priv, keyID: KeyID(priv.Public().(ed25519.PublicKey))}
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
	subjects, err := Canonical([]descriptor{subj})
	if err != nil {
		return nil, err
	}
	st := statementJSON(subjects, payload)
	// Signing is CPU only; the dsse interface wants a context anyway.
	env, err := s.dsse.SignPayload(context.Background(), PayloadType, st)
	if err != nil {
		return nil, fmt.Errorf("sign record %s: %w", r.ID, err)
	}
	return envelopeJSON(env), nil
}

// statementJSON is the canonical JSON of the in-toto Statement of a
// canonical record payload, the same bytes as Canonical(statement{...}),
// written directly: re-encoding the payload it holds would cost as much as
// encoding the record.
func statementJSON(subjects, payload []byte) []byte {
	// Keys in canonical order: _type, predicate, predicateType, subject.
	b := make([]byte, 0, len(payload)+len(subjects)+160)
	b = append(b, `{"_type":`...)
	b = appendString(b, []byte(intoto.StatementTypeUri))
	b = append(b, `,"predicate":`...)
	b = append(b, payload...)
	b = append(b, `,"predicateType":`...)
	b = appendString(b, []byte(PredicateType))
	b = append(b, `,"subject":`...)
	b = append(b, subjects...)
	return append(b, '}')
}

// envelopeJSON is the canonical JSON of a DSSE envelope, the same bytes as
// Canonical(env), written directly for the same reason. Its strings are
// base64, the payload type and key ids, all ASCII.
func envelopeJSON(env *dsse.Envelope) []byte {
	// Keys in canonical order: payload, payloadType, signatures; in a
	// signature, keyid, sig.
	b := make([]byte, 0, len(env.Payload)+len(env.Signatures)*160+64)
	b = append(b, `{"payload":`...)
	b = appendString(b, []byte(env.Payload))
	b = append(b, `,"payloadType":`...)
	b = appendString(b, []byte(env.PayloadType))
	b = append(b, `,"signatures":[`...)
	for i, sig := range env.Signatures {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"keyid":`...)
		b = appendString(b, []byte(sig.KeyID))
		b = append(b, `,"sig":`...)
		b = appendString(b, []byte(sig.Sig))
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// Verifier checks envelopes against one public key.
type Verifier struct {
	pub   ed25519.PublicKey
	keyID string
}

// NewVerifier returns a Verifier for pub.
func NewVerifier(pub ed25519.PublicKey) (*Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	return &Verifier{pub: pub, keyID: KeyID(pub)}, nil
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
	_, o, err := v.openEnvelope(nil, envelope)
	if err != nil {
		return nil, err
	}
	return v.verified(&o, o.verify(v.pub))
}

// openedEnvelope is an envelope read by openEnvelope: everything about it
// is known but whether a signature is valid.
type openedEnvelope struct {
	// msg is PAE(payloadType, payload), the bytes a signature covers, and
	// body is its tail, the payload.
	msg, body []byte
	// sigs are the signatures that may be by the key: those that name its
	// key id or no key id. There is at least one.
	sigs [][]byte
	// signatures is every signature as stored, to name them in an error.
	signatures []rawSignature
}

// verify reports whether any of the signatures is valid, by crypto/ed25519.
func (o *openedEnvelope) verify(pub ed25519.PublicKey) bool {
	return slices.ContainsFunc(o.sigs, func(sig []byte) bool { return ed25519.Verify(pub, o.msg, sig) })
}

// Why an envelope has no valid signature, in the words of the dsse package,
// which once checked envelopes here: errors read as they always have.
var (
	errBase64           = errors.New("unable to base64 decode payload (is payload in the right format?)")
	errNoValidSignature = errors.New("accepted signatures do not match threshold, Found: 0, Expected 1")
)

// openEnvelope is VerifyEnvelope up to the signature check: it reads the
// envelope, appends the message a signature covers to buf and picks out the
// signatures to check, so that Verify can check signatures in batches and
// VerifyEnvelope one at a time, with the same errors. It returns buf
// extended; o.msg and o.body are slices of it.
//
// Signatures are read as dsse.EnvelopeVerifier does for a single key: all
// of them must be base64, and any one by the key is enough.
func (v *Verifier) openEnvelope(buf, envelope []byte) ([]byte, openedEnvelope, error) {
	var o openedEnvelope
	env, err := decodeEnvelope(envelope)
	if err != nil {
		return buf, o, fmt.Errorf("envelope is not DSSE JSON: %w", err)
	}
	if string(env.payloadType) != PayloadType {
		return buf, o, fmt.Errorf("envelope payload type is %q, want %q", env.payloadType, PayloadType)
	}
	o.signatures = env.signatures
	if len(env.signatures) == 0 {
		return buf, o, v.signatureError(&o, dsse.ErrNoSignature)
	}
	buf, o.msg, o.body, err = appendPAE(buf, env.payload)
	if err != nil {
		return buf, o, v.signatureError(&o, err)
	}
	for _, s := range env.signatures {
		var sig []byte
		if sig, err = appendBase64(nil, s.sig); err != nil {
			return buf, o, v.signatureError(&o, err)
		}
		if len(s.keyID) == 0 || string(s.keyID) == v.keyID {
			o.sigs = append(o.sigs, sig)
		}
	}
	if len(o.sigs) == 0 {
		return buf, o, v.signatureError(&o, errNoValidSignature)
	}
	return buf, o, nil
}

// verified finishes what openEnvelope began, once it is known whether a
// signature in o.sigs is valid. The payload is decoded only then, so that
// nothing unsigned is parsed.
func (v *Verifier) verified(o *openedEnvelope, valid bool) (*Record, error) {
	if !valid {
		return nil, v.signatureError(o, errNoValidSignature)
	}
	return decodePayload(o.body)
}

func (v *Verifier) signatureError(o *openedEnvelope, cause error) error {
	var ids []string
	for _, s := range o.signatures {
		ids = append(ids, string(s.keyID))
	}
	return fmt.Errorf("%w: no valid signature by key %s (envelope signed by %q): %v", ErrSignature, v.keyID, ids, cause)
}

// paePrefix starts the DSSE pre-authentication encoding of every payload
// of type PayloadType: "DSSEv1" SP len(type) SP type SP.
var paePrefix = "DSSEv1 " + strconv.Itoa(len(PayloadType)) + " " + PayloadType + " "

// paeRoom is room for the rest of the header: the body's length and a space.
const paeRoom = 20 + 1

// appendPAE appends PAE(PayloadType, payload) to buf, payload being base64,
// and returns buf extended, the message and its body. The header holds the
// body's length, so the body is decoded first, after room for the longest
// header, and the header is then written just in front of it: the payload,
// most of the message, is written once.
func appendPAE(buf, payload []byte) (out, msg, body []byte, err error) {
	start := len(buf)
	buf = append(buf, make([]byte, len(paePrefix)+paeRoom)...)
	bodyStart := len(buf)
	if buf, err = appendBase64(buf, payload); err != nil {
		return buf[:start], nil, nil, err
	}
	body = buf[bodyStart:]
	var room [paeRoom]byte
	rest := append(strconv.AppendInt(room[:0], int64(len(body)), 10), ' ')
	msgStart := bodyStart - len(rest) - len(paePrefix)
	copy(buf[msgStart:], paePrefix)
	copy(buf[bodyStart-len(rest):], rest)
	return buf, buf[msgStart:], body, nil
}

// appendBase64 appends src, decoded, to buf. Like the dsse package it
// accepts standard base64, else URL-safe base64.
func appendBase64(buf, src []byte) ([]byte, error) {
	n := base64.StdEncoding.DecodedLen(len(src))
	buf = slices.Grow(buf, n)
	dst := buf[len(buf) : len(buf)+n]
	m, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		if m, err = base64.URLEncoding.Decode(dst, src); err != nil {
			return buf, errBase64
		}
	}
	return buf[:len(buf)+m], nil
}

// decodePayload decodes a signed payload: an in-toto statement of a valid
// change record about the statement's subject.
func decodePayload(payload []byte) (*Record, error) {
	st, err := decodeStatement(payload)
	if err != nil {
		return nil, fmt.Errorf("payload is not an in-toto statement of a change record: %w", err)
	}
	if st.Type != intoto.StatementTypeUri {
		return nil, fmt.Errorf("statement _type is %q, want %q", st.Type, intoto.StatementTypeUri)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("statement predicateType is %q, want %q", st.PredicateType, PredicateType)
	}
	r := &st.Predicate
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("record %s is invalid: %w", r.ID, err)
	}
	want, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	if len(st.Subject) != 1 || st.Subject[0].Name != want.Name || len(st.Subject[0].Digest) != 1 ||
		st.Subject[0].Digest[string(intoto.AlgorithmGitCommit)] != r.Subject.SHA() {
		return nil, fmt.Errorf("statement subject %v is not the record's commit %s", st.Subject, want.Name)
	}
	return r, nil
}

// rawEnvelope is a DSSE envelope as decodeEnvelope reads it. Its fields
// are the strings' values, slices of the input where no escape forced a
// copy.
type rawEnvelope struct {
	payloadType, payload []byte
	signatures           []rawSignature
}

type rawSignature struct{ keyID, sig []byte }

// decodeEnvelope reads a DSSE envelope strictly: exactly the three DSSE
// fields, each once, and nothing after. It has its own small parser
// because encoding/json spends more time scanning the base64 payload than
// ed25519 spends verifying it, and Verify reads every envelope.
func decodeEnvelope(data []byte) (rawEnvelope, error) {
	p := canonParser{data: data}
	var env rawEnvelope
	var seen struct{ payload, payloadType, signatures bool }
	err := p.fields(func(key string) error {
		var err error
		var dup *bool
		switch key {
		case "payload":
			env.payload, err = p.stringValue()
			dup = &seen.payload
		case "payloadType":
			env.payloadType, err = p.stringValue()
			dup = &seen.payloadType
		case "signatures":
			err = p.elements(func() error {
				var sig rawSignature
				var seenSig struct{ keyID, sig bool }
				err := p.fields(func(key string) error {
					var err error
					var dup *bool
					switch key {
					case "keyid":
						sig.keyID, err = p.stringValue()
						dup = &seenSig.keyID
					case "sig":
						sig.sig, err = p.stringValue()
						dup = &seenSig.sig
					default:
						return fmt.Errorf("unknown field %q in signature", key)
					}
					if *dup {
						return fmt.Errorf("duplicate field %q in signature", key)
					}
					*dup = true
					return err
				})
				env.signatures = append(env.signatures, sig)
				return err
			})
			dup = &seen.signatures
		default:
			return fmt.Errorf("unknown field %q", key)
		}
		if *dup {
			return fmt.Errorf("duplicate field %q", key)
		}
		*dup = true
		return err
	})
	if err != nil {
		return rawEnvelope{}, err
	}
	p.skipSpace()
	if p.pos != len(data) {
		return rawEnvelope{}, errors.New("data after the JSON value")
	}
	if !seen.payload || !seen.payloadType || !seen.signatures {
		return rawEnvelope{}, errors.New("missing payload, payloadType or signatures")
	}
	return env, nil
}

// dsseKey adapts an ed25519 key to the dsse package's Signer.
type dsseKey struct {
	priv  ed25519.PrivateKey
	keyID string
}

func (k *dsseKey) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(k.priv, data), nil
}

func (k *dsseKey) KeyID() (string, error) { return k.keyID, nil }

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

// SignPayload signs any payload as a DSSE envelope of payloadType with the
// record key, for documents that travel with evidence (an export's
// manifest). It returns the envelope's canonical JSON.
func (s *Signer) SignPayload(payloadType string, payload []byte) ([]byte, error) {
	env, err := s.dsse.SignPayload(context.Background(), payloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", payloadType, err)
	}
	return envelopeJSON(env), nil
}

// OpenPayload checks that envelope is a DSSE envelope of payloadType with
// a valid signature by the key, and returns its payload: the bytes signed.
func (v *Verifier) OpenPayload(envelope []byte, payloadType string) ([]byte, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("envelope is not DSSE JSON: %w", err)
	}
	if env.PayloadType != payloadType {
		return nil, fmt.Errorf("envelope payload type is %q, want %q", env.PayloadType, payloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("envelope payload: %w", err)
	}
	msg := dsse.PAE(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && (s.KeyID == "" || s.KeyID == v.keyID) && ed25519.Verify(v.pub, msg, sig) {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("%w: no valid signature by key %s", ErrSignature, v.keyID)
}

// UnverifiedPayload returns a DSSE envelope's payload without checking any
// signature: only to learn what the envelope claims, such as which key to
// check it with. Nothing it returns may be trusted.
func UnverifiedPayload(envelope []byte) ([]byte, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("envelope is not DSSE JSON: %w", err)
	}
	return base64.StdEncoding.DecodeString(env.Payload)
}
