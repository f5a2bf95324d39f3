package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"io"

	"github.com/changegate/changegate/internal/evidence"
)

// VerifyPopulation checks a population export offline against its signed
// manifest: the signature (by the key trusted, or, with none, the key the
// manifest names), the checkpoint's signature, and the file's SHA-256,
// size and, for CSV, row count. It returns the manifest that verified.
func VerifyPopulation(file, signedManifest []byte, trust TrustedKey) (*PopulationManifest, error) {
	const name = "manifest"
	var pm PopulationManifest
	if err := strictJSON(payloadOf(signedManifest), &pm); err != nil {
		return nil, bad(name, "is not a population manifest: %v", err)
	}
	pub, err := manifestKey(pm.PublicKey, trust)
	if err != nil {
		return nil, err
	}
	v, err := evidence.NewVerifier(pub)
	if err != nil {
		return nil, err
	}
	if _, err := v.OpenPayload(signedManifest, ManifestPayloadType); err != nil {
		return nil, bad(name, "%v", err)
	}
	if err := checkPopulationFile(&pm, file); err != nil {
		return nil, err
	}
	nv, err := evidence.NoteVerifier(pm.Checkpoint.Origin, pub)
	if err != nil {
		return nil, bad(name, "checkpoint origin %q: %v", pm.Checkpoint.Origin, err)
	}
	if cp, err := evidence.VerifyCheckpoint([]byte(pm.Checkpoint.Note), nv); err != nil || cp.Size != pm.Checkpoint.Size {
		return nil, bad(name, "its checkpoint does not verify: %v", err)
	}
	return &pm, nil
}

// payloadOf is a DSSE envelope's payload, unverified: to read which key
// the manifest names before its signature is checked with that key.
func payloadOf(envelope []byte) []byte {
	p, err := evidence.UnverifiedPayload(envelope)
	if err != nil {
		return nil
	}
	return p
}

// manifestKey is the key to check a manifest with: the one trusted, which
// must be the one it names, or the one it names.
func manifestKey(named PublicKeyJSON, trust TrustedKey) (ed25519.PublicKey, error) {
	own, err := parsePublicKey([]byte(named.PEM))
	if err != nil {
		return nil, bad("manifest", "public key: %v", err)
	}
	if _, problem := checkTrust(own, trust); problem != "" {
		return nil, bad("manifest", "names a key that %s", problem)
	}
	return own, nil
}

func checkPopulationFile(pm *PopulationManifest, file []byte) error {
	const name = "population file"
	if sha256Hex(file) != pm.SHA256 || len(file) != pm.Bytes {
		return bad(name, "has SHA-256 %s (%d bytes), but its signed manifest says %s (%d bytes)", sha256Hex(file), len(file), pm.SHA256, pm.Bytes)
	}
	if pm.Format != "csv" {
		return nil
	}
	cr := csv.NewReader(bytes.NewReader(file))
	cr.ReuseRecord = true
	n := -1 // the header
	for {
		_, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bad(name, "%v", err)
		}
		n++
	}
	if n != pm.Rows {
		return bad(name, "has %d rows, but its signed manifest says %d", n, pm.Rows)
	}
	return nil
}
