package evidence

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKey reads the ed25519 signing key at path (PKCS#8 PEM), or
// generates one there on first use. created says which happened, so the
// caller can log the new key's fingerprint once.
//
// An existing key file readable by others, or writable by its group, is
// refused rather than used: a key others could read cannot vouch for who
// signed a record. Its group may read it: that is how Kubernetes mounts a
// Secret for a non-root pod (0440, the pod's fsGroup).
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = loadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = createKey(path)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it between our read and our write: use
		// theirs, so that there is only ever one key.
		key, err = loadKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is the mode of
	// the bytes read.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("signing key %s is not a regular file", path)
	}
	// Group read is allowed, as Kubernetes mounts a Secret for a
	// non-root user: 0440, its group the pod's fsGroup.
	if perm := st.Mode().Perm(); perm&0o037 != 0 {
		return nil, fmt.Errorf("signing key %s has mode %04o: it must not be writable by group nor readable by others (chmod 600)", path, perm)
	}
	data, err := readAll(f, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: no PKCS#8 \"PRIVATE KEY\" PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s is a %T, not ed25519", path, k)
	}
	return ed, nil
}

func readAll(f *os.File, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// createKey writes a new key to a temporary file in the same directory,
// syncs it, and links it into place. A link, unlike a rename, fails when
// the target exists, so two processes starting at once cannot each
// install a key and sign with the one that lost.
func createKey(path string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("signing key dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".signing-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("install signing key: %w", err)
	}
	// Make the new name durable too; losing it would mean a second key.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return priv, nil
}

// Fingerprint is the SHA-256 of the raw 32-byte public key, in hex: what
// `changegate audit pubkey` prints and an auditor compares.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// KeyID names the key in DSSE signatures.
func KeyID(pub ed25519.PublicKey) string { return "sha256:" + Fingerprint(pub) }

// PublicKeyPEM encodes the public key as PKIX PEM, for auditors' tools.
func PublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadKey reads an existing signing key, with the checks LoadOrCreateKey
// makes; it never creates one.
func LoadKey(path string) (ed25519.PrivateKey, error) { return loadKey(path) }

// CreateKey generates a signing key into path, readable by its owner
// only. It never replaces a key: if path exists, it fails with
// fs.ErrExist.
func CreateKey(path string) (ed25519.PrivateKey, error) { return createKey(path) }

// DeriveKey derives a secret for another purpose from the signing key:
// HMAC-SHA256(seed, label). It never reveals the key, and labels keep the
// secrets of different purposes apart.
func (s *Signer) DeriveKey(label string) []byte {
	m := hmac.New(sha256.New, s.priv.Seed())
	m.Write([]byte(label))
	return m.Sum(nil)
}
