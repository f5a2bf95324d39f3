package webhook

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/changegate/changegate/internal/testenv"
)

func TestGitHubSignatureVector(t *testing.T) {
	t.Parallel()
	dir := testenv.RequireSharedTestdata(t)
	raw, err := os.ReadFile(filepath.Join(dir, "signature-vector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Secret   string `json:"secret"`
		Payload  string `json:"payload"`
		Expected string `json:"expected_header_value"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	secret, body := []byte(v.Secret), []byte(v.Payload)
	if got := Sign(secret, body); got != v.Expected {
		t.Errorf("Sign = %s, want %s", got, v.Expected)
	}
	if err := VerifySignature(secret, body, v.Expected); err != nil {
		t.Errorf("published vector does not verify: %v", err)
	}
	for i := range body {
		b := append([]byte(nil), body...)
		b[i] ^= 0x01
		if err := VerifySignature(secret, b, v.Expected); !errors.Is(err, ErrBadSignature) {
			t.Errorf("body byte %d flipped: err = %v, want ErrBadSignature", i, err)
		}
	}
	sig := []byte(v.Expected)
	for i := len("sha256="); i < len(sig); i++ {
		s := append([]byte(nil), sig...)
		if s[i] == '0' {
			s[i] = '1'
		} else {
			s[i] = '0'
		}
		if err := VerifySignature(secret, body, string(s)); !errors.Is(err, ErrBadSignature) {
			t.Errorf("signature char %d changed: err = %v, want ErrBadSignature", i, err)
		}
	}
}

func TestVerifySignatureRejects(t *testing.T) {
	t.Parallel()
	secret, body := []byte("s"), []byte(`{}`)
	good := Sign(secret, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		want   error
	}{
		{"missing", secret, "", ErrNoSignature},
		{"sha1 prefix", secret, "sha1=" + good[len("sha256="):], ErrBadSignature},
		{"no prefix", secret, good[len("sha256="):], ErrBadSignature},
		{"not hex", secret, "sha256=zz", ErrBadSignature},
		{"truncated", secret, good[:len(good)-2], ErrBadSignature},
		{"other secret", []byte("t"), good, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := VerifySignature(tc.secret, body, tc.header); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := VerifySignature(nil, body, Sign(nil, body)); err == nil {
		t.Error("an empty secret must never verify")
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("body"), "sha256=00")
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		secret := []byte("fuzz")
		if err := VerifySignature(secret, body, header); err == nil && header != Sign(secret, body) {
			t.Fatalf("accepted a header that is not the signature: %q", header)
		}
	})
}
