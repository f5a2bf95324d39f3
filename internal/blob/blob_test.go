package blob_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/changegate/changegate/internal/blob"
)

func TestValidKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want bool
	}{
		{"records/000000000042-01J9ZQ.dsse.json", true},
		{"a", true},
		{"A_b-c.d/e", true},
		{"a..b", true}, // dots inside a segment are fine
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a/", 255) + "ab", true}, // 512 bytes
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"..", false},
		{"a/../b", false},
		{"./a", false},
		{".tmp-1", false},
		{"a b", false},
		{"a\\b", false},
		{"a\x00", false},
		{"ü", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a/", 256) + "a", false}, // 513 bytes
	}
	for _, tc := range tests {
		err := blob.ValidKey(tc.key)
		if got := err == nil; got != tc.want {
			t.Errorf("ValidKey(%q) = %v, want valid %v", tc.key, err, tc.want)
		}
		if err != nil && !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, not ErrInvalidKey", tc.key, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	t.Parallel()
	for prefix, want := range map[string]bool{
		"": true, "records/": true, "records/0000": true, "r": true,
		"/": false, "records//": false, "../": false, ".": false, "a/.": false,
	} {
		if got := blob.ValidPrefix(prefix) == nil; got != want {
			t.Errorf("ValidPrefix(%q) valid = %v, want %v", prefix, got, want)
		}
	}
}

// A valid key stays inside whatever directory or prefix it is joined to.
func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"records/1.json", "../x", "a/./b", ".tmp", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if blob.ValidKey(key) != nil {
			return
		}
		if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") || len(key) > blob.MaxKeyLen {
			t.Fatalf("accepted %q", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "." || seg == ".." || strings.HasPrefix(seg, ".") || strings.ContainsAny(seg, "\\\x00 ") {
				t.Fatalf("accepted %q", key)
			}
		}
	})
}
