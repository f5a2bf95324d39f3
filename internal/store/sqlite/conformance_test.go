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

// TestLedgerConformance runs the ledger index and audit query suite on the
// embedded store.
func TestLedgerConformance(t *testing.T) {
	t.Parallel()
	storetest.RunLedger(t, func(t *testing.T) (storetest.LedgerIndex, storetest.LedgerReader) {
		s, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Ledger(), s.LedgerReader()
	})
}

// TestCompletenessConformance runs the suite of the rest of the store.
func TestCompletenessConformance(t *testing.T) {
	t.Parallel()
	storetest.RunCompleteness(t, func(t *testing.T) storetest.Completeness {
		s, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
