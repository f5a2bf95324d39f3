package ledger_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// bundleLedger is a ledger whose first five records share one bundle, as a
// burst of merges leaves them: the bundle is written as a crash after the
// blob step would leave it, and Open adopts it.
func bundleLedger(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	var envs [][]byte
	for i := range 5 {
		r := record(i, evidence.Standard)
		r.ID = evidence.RecordID(r.Repo.String(), r.Subject.SHA(), r.ChangeType, "")
		env, err := e.signer.Sign(r)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	if err := e.blobs.Put(t.Context(), ledger.BundleKey(0, 4), ledger.Bundle(envs)); err != nil {
		t.Fatal(err)
	}
	l := e.open(t)
	if l.Size() != 5 {
		t.Fatalf("adopted %d records, want 5", l.Size())
	}
	if _, err := l.Append(t.Context(), record(5, evidence.Standard)); err != nil {
		t.Fatal(err)
	}
	verifyLedger(t, e)
	return e, filepath.Join(e.dir, "evidence", filepath.FromSlash(ledger.BundleKey(0, 4)))
}

// TestBundleTamper: damage inside a bundle of several records is named at
// the record it hit.
func TestBundleTamper(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(data []byte) []byte
		seq    int64
		text   string
	}{
		{"byte flipped in the third record", func(b []byte) []byte {
			lines := ledger.SplitBundle(b)
			off := len(lines[0]) + len(lines[1]) + 2 + len(lines[2])/2
			b[off] ^= 0x01
			return b
		}, 2, ""},
		{"last record cut off", func(b []byte) []byte {
			lines := ledger.SplitBundle(b)
			return b[:len(b)-len(lines[4])-1]
		}, 4, "missing"},
		{"newline inserted in the second record", func(b []byte) []byte {
			lines := ledger.SplitBundle(b)
			off := len(lines[0]) + 1 + len(lines[1])/2
			return append(b[:off:off], append([]byte{'\n'}, b[off:]...)...)
		}, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, file := bundleLedger(t)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data = tc.damage(bytes.Clone(data))
			if err := os.Chmod(file, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = evidence.Verify(ledger.Source(t.Context(), e.blobs, sqlite.LedgerRows(e.store.SQL())), e.signer.Public(), origin)
			var bad *evidence.VerifyError
			if !errors.As(err, &bad) || bad.Seq != tc.seq || !strings.Contains(bad.Problem, tc.text) {
				t.Errorf("verify: %v; want record %d named (%q)", err, tc.seq, tc.text)
			}
		})
	}
}
