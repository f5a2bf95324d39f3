package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/changegate/changegate/internal/evidence"
)

// Manifest types and the DSSE payload type they are signed under.
const (
	PopulationManifestType = "https://changegate.dev/population-manifest/v1"
	PackageManifestType    = "https://changegate.dev/evidence-package/v1"
	ManifestPayloadType    = "application/vnd.changegate.manifest+json"
)

// PopulationManifest travels with every population export: the exact
// query, what it was read at, and the file's hash, signed with the ledger
// key.
type PopulationManifest struct {
	Type        string         `json:"_type"`
	Query       QueryManifest  `json:"query"`
	GeneratedAt string         `json:"generated_at"`
	File        string         `json:"file"`
	Format      string         `json:"format"`
	SHA256      string         `json:"sha256"`
	Bytes       int            `json:"bytes"`
	Rows        int            `json:"rows"`
	Counts      map[string]int `json:"counts"`
	Checkpoint  CheckpointJSON `json:"checkpoint"`
	PublicKey   PublicKeyJSON  `json:"public_key"`
}

// QueryManifest is a query as an export states it.
type QueryManifest struct {
	From      string   `json:"from"`
	To        string   `json:"to"`
	Repo      string   `json:"repo,omitempty"`
	Types     []string `json:"types,omitempty"`
	Statement string   `json:"statement"`
}

// CheckpointJSON is a checkpoint as an export states it.
type CheckpointJSON struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"` // hex
	AsOf   string `json:"as_of"`
	Note   string `json:"note"` // the signed note
}

// PublicKeyJSON is the ledger key as an export states it.
type PublicKeyJSON struct {
	Fingerprint string `json:"fingerprint"` // SHA256:<hex>
	PEM         string `json:"pem"`
}

func queryManifest(q Query) QueryManifest {
	m := QueryManifest{From: evidence.FormatTime(q.From), To: evidence.FormatTime(q.To), Repo: q.Repo, Types: q.Types}
	m.Statement = fmt.Sprintf("every record among those the checkpoint covers whose event time t is %s <= t < %s", m.From, m.To)
	if q.Repo != "" {
		m.Statement += ", of repository " + q.Repo
	}
	if len(q.Types) > 0 {
		m.Statement += fmt.Sprintf(", of change types %v", q.Types)
	}
	return m
}

// JSON is the checkpoint as manifests and the API show it.
func (cp Checkpoint) JSON() CheckpointJSON {
	return CheckpointJSON{Origin: cp.Origin, Size: cp.Size, Root: hex.EncodeToString(cp.Root), AsOf: evidence.FormatTime(cp.AsOf), Note: string(cp.Note)}
}

func publicKeyJSON(pub ed25519.PublicKey) (PublicKeyJSON, error) {
	pem, err := evidence.PublicKeyPEM(pub)
	if err != nil {
		return PublicKeyJSON{}, err
	}
	return PublicKeyJSON{Fingerprint: "SHA256:" + evidence.Fingerprint(pub), PEM: string(pem)}, nil
}

// populationManifest describes file, the population p in format.
func (s *Service) populationManifest(p *Population, file []byte, name, format string) (PopulationManifest, error) {
	sum := sha256.Sum256(file)
	return s.manifestOf(p.Query, p.Checkpoint, len(p.Rows), p.Counts(), sum[:], len(file), name, format)
}

func (s *Service) manifestOf(q Query, cp Checkpoint, rows int, c counts, sum []byte, size int, name, format string) (PopulationManifest, error) {
	pk, err := publicKeyJSON(s.Public())
	if err != nil {
		return PopulationManifest{}, err
	}
	return PopulationManifest{
		Type: PopulationManifestType, Query: queryManifest(q), GeneratedAt: evidence.FormatTime(cp.AsOf),
		File: name, Format: format, SHA256: hex.EncodeToString(sum), Bytes: size, Rows: rows,
		Counts: c, Checkpoint: cp.JSON(), PublicKey: pk,
	}, nil
}

// marshalManifest is a manifest's readable JSON: indented, one trailing
// newline. Its bytes are what the envelope signs.
func marshalManifest(m any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sign signs a manifest's JSON with the ledger key.
func (s *Service) sign(manifest []byte) ([]byte, error) {
	return s.signer.SignPayload(ManifestPayloadType, manifest)
}

// parseTime reads a time an export wrote.
func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }
