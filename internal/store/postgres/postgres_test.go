package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/store/storetest"
	"github.com/changegate/changegate/internal/testenv"
)

// open opens the store on a fresh database of the test server.
func open(t *testing.T) *postgres.DB {
	t.Helper()
	s, err := postgres.Open(t.Context(), testenv.PostgresDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store conformance suite on PostgreSQL.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}

// TestMigrationsRace: replicas starting together migrate one at a time,
// under the advisory lock, and all come up.
func TestMigrationsRace(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), url, postgres.Options{})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}

// TestOpenRefusesBadURLs: a URL that does not parse, or names a server
// that does not answer, is refused, with the password masked.
func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://cg:s3cr3t-pw@127.0.0.1:1/changegate?sslmode=disable&connect_timeout=2",
		"postgres://cg:s3cr3t-pw@127.0.0.1:notaport/changegate",
		"postgres://cg:s3cr3t-pw@127.0.0.1/changegate?pool_max_conns=lots",
	} {
		ctx, cancel := context.WithCancel(t.Context())
		_, err := postgres.Open(ctx, url, postgres.Options{})
		cancel()
		if err == nil {
			t.Errorf("%s: opened", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "database") {
			t.Errorf("the error does not say what failed: %v", err)
		}
	}
}

// TestLedgerConformance runs the ledger index and audit query suite on
// PostgreSQL.
func TestLedgerConformance(t *testing.T) {
	t.Parallel()
	storetest.RunLedger(t, func(t *testing.T) (storetest.LedgerIndex, storetest.LedgerReader) {
		s := open(t)
		return s.Ledger(), s.LedgerReader()
	})
}

// TestCompletenessConformance runs the suite of the rest of the store.
func TestCompletenessConformance(t *testing.T) {
	t.Parallel()
	storetest.RunCompleteness(t, func(t *testing.T) storetest.Completeness { return open(t) })
}
