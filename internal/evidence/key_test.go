package evidence

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "signing.key")
	key, created, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new key")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", perm)
	}
	data, _ := os.ReadFile(path)
	if block, _ := pem.Decode(data); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("key file is not PKCS#8 PEM: %q", data)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".signing-key-*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	again, created, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if created || !again.Equal(key) {
		t.Errorf("second load: created=%v, same key=%v; want the same key, not created", created, again.Equal(key))
	}
}

func TestLoadKeyRefuses(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	good := func(t *testing.T, path string) {
		if _, _, err := LoadOrCreateKey(path); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr string
	}{
		{"group writable", func(t *testing.T, path string) { good(t, path); chmod(t, path, 0o660) }, "must not be writable by group nor readable by others"},
		{"world readable", func(t *testing.T, path string) { good(t, path); chmod(t, path, 0o644) }, "must not be writable by group nor readable by others"},
		{"not PEM", func(t *testing.T, path string) { write(t, path, []byte("hello")) }, "no PKCS#8"},
		{"not ed25519", func(t *testing.T, path string) {
			write(t, path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
		}, "not ed25519"},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "signing.key")
			tt.setup(t, path)
			before, _ := os.ReadFile(path)
			_, _, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadOrCreateKey = %v, want error containing %q", err, tt.wantErr)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("a refused key file was changed")
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	pub := testSigner(t, 1).Public()
	fp := Fingerprint(pub)
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Errorf("Fingerprint = %q, want 64 lowercase hex", fp)
	}
	if KeyID(pub) != "sha256:"+fp {
		t.Errorf("KeyID = %q", KeyID(pub))
	}
	if Fingerprint(testSigner(t, 2).Public()) == fp {
		t.Error("two keys share a fingerprint")
	}
	if p, err := PublicKeyPEM(pub); err != nil || !strings.HasPrefix(string(p), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("PublicKeyPEM = %q, %v", p, err)
	}
}

// TestLoadKeyMountedSecret: a key as Kubernetes mounts a Secret for a
// non-root pod, 0440 with the pod's fsGroup, loads.
func TestLoadKeyMountedSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "signing-key.pem")
	want, err := CreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o440); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKey(path)
	if err != nil || !got.Equal(want) {
		t.Fatalf("LoadKey of a 0440 key: %v", err)
	}
	if _, err := CreateKey(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateKey over an existing key: %v, want fs.ErrExist", err)
	}
}
