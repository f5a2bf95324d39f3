package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

func TestCheckpointRoundTrip(t *testing.T) {
	t.Parallel()
	s := testSigner(t, 1)
	root := sha256.Sum256([]byte("root"))
	data, err := s.SignCheckpoint(testOrigin, 42, root[:])
	if err != nil {
		t.Fatal(err)
	}
	// C2SP form: origin, size, base64 root, blank line, "— origin sig".
	wantText := "changegate.test/ledger\n42\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n\n— changegate.test/ledger "
	if !strings.HasPrefix(string(data), wantText) {
		t.Errorf("checkpoint = %q, want prefix %q", data, wantText)
	}
	v, err := NoteVerifier(testOrigin, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyCheckpoint(data, v)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(log.Checkpoint{Origin: testOrigin, Size: 42, Hash: root[:]}, got); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
	// The formats package reads it too, as any C2SP tool would.
	if _, _, _, err := log.ParseCheckpoint(data, testOrigin, v); err != nil {
		t.Errorf("log.ParseCheckpoint: %v", err)
	}
}

func TestVerifyCheckpointRejects(t *testing.T) {
	t.Parallel()
	s, other := testSigner(t, 1), testSigner(t, 2)
	root := sha256.Sum256([]byte("root"))
	good, err := s.SignCheckpoint(testOrigin, 42, root[:])
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.SignCheckpoint(testOrigin, 42, root[:])
	if err != nil {
		t.Fatal(err)
	}
	otherLog, err := s.SignCheckpoint("changegate.test/other", 42, root[:])
	if err != nil {
		t.Fatal(err)
	}
	v, err := NoteVerifier(testOrigin, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantSig bool
	}{
		{"another key", foreign, true},
		{"size edited", bytes.Replace(good, []byte("\n42\n"), []byte("\n43\n"), 1), true},
		{"another log's origin", otherLog, true},
		{"not a note", []byte("hello"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := VerifyCheckpoint(tt.data, v)
			if err == nil {
				t.Fatal("VerifyCheckpoint accepted it")
			}
			if got := errors.Is(err, ErrSignature); got != tt.wantSig {
				t.Errorf("errors.Is(%v, ErrSignature) = %v, want %v", err, got, tt.wantSig)
			}
		})
	}
	if _, err := s.SignCheckpoint(testOrigin, 1, []byte("short")); err == nil {
		t.Error("SignCheckpoint accepted a short root")
	}
}

// The note key the server publishes verifies its checkpoints in any
// sumdb/note tool.
func TestNoteVerifierKey(t *testing.T) {
	t.Parallel()
	s := testSigner(t, 1)
	vkey, err := note.NewEd25519VerifierKey(testOrigin, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256(nil)
	data, err := s.SignCheckpoint(testOrigin, 0, root[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(data, note.VerifierList(v)); err != nil {
		t.Errorf("note.Open: %v", err)
	}
}
