package sqlite_test

import (
	"testing"

	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/store/storetest"
)

// TestConformance runs the store conformance suite on the embedded store.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
