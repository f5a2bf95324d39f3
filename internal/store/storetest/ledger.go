package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/evidence"
)

// LedgerIndex is the ledger's index as the ledger writes it and start-up
// and verify read it.
type LedgerIndex interface {
	Put(ctx context.Context, entries []evidence.IndexEntry) error
	Size(ctx context.Context) (uint64, error)
	Leaves(ctx context.Context, n uint64, fn func(seq uint64, id string, leafHash []byte) error) error
	Row(ctx context.Context, seq uint64) (map[string]string, string, bool, error)
	IDsFor(ctx context.Context, repo, sha string) ([]string, error)
	TicketsOf(ctx context.Context, ids []string) ([]string, error)
	Clear(ctx context.Context) error
}

// LedgerReader is the auditor's queries over the index.
type LedgerReader interface {
	Population(ctx context.Context, q evidence.Query, fn func(evidence.PopulationRow) error) error
	Closed(ctx context.Context, size uint64) (map[string]string, error)
	Lookup(ctx context.Context, id string) (uint64, bool, error)
	ExceptionOf(ctx context.Context, id string) (seq int64, state string, found bool, err error)
	LeafHashes(ctx context.Context, n uint64) ([]byte, error)
	Size(ctx context.Context) (uint64, error)
	ObservedAt(ctx context.Context, seq uint64) (string, error)
	Months(ctx context.Context, size uint64) ([]evidence.MonthCount, error)
}

// RunLedger runs the ledger index and audit query suite; open returns the
// index and reader of an empty store.
func RunLedger(t *testing.T, open func(t *testing.T) (LedgerIndex, LedgerReader)) {
	t.Run("index", func(t *testing.T) { t.Parallel(); x, r := open(t); testLedgerIndex(t, x, r) })
	t.Run("population", func(t *testing.T) { t.Parallel(); x, r := open(t); testPopulation(t, x, r) })
}

// entry is record seq of a small ledger: changes in two repositories over
// January and February 2026, an emergency whose exception a later record
// closes, and a deployment that links two changes.
func entry(seq uint64, repo, sha, changeType, eventTime string, mod func(f map[string]string)) evidence.IndexEntry {
	leaf := sha256.Sum256(fmt.Appendf(nil, "record %d", seq))
	f := map[string]string{
		"id": fmt.Sprintf("cr-%03d", seq), "repo": repo, "pr": fmt.Sprint(100 + seq), "sha": sha,
		"change_type": changeType, "merged_at": eventTime, "observed_at": eventTime, "outcome": "compliant",
		"compliant": "true", "ticket": fmt.Sprintf("PAY-%d", seq), "exception": "", "exception_due": "", "closes": "",
		"event_time": eventTime, "summary": fmt.Sprintf(`{"seq":%d}`, seq),
	}
	if mod != nil {
		mod(f)
	}
	return evidence.IndexEntry{Seq: seq, LeafHash: hex.EncodeToString(leaf[:]), Fields: f}
}

func sampleEntries() []evidence.IndexEntry {
	sha := func(n int) string { return fmt.Sprintf("%040x", n) }
	es := []evidence.IndexEntry{
		entry(0, "acme/api", sha(0), "standard", "2026-01-05T10:00:00.000000000Z", nil),
		entry(1, "acme/web", sha(1), "standard", "2026-01-06T10:00:00.000000000Z", func(f map[string]string) {
			f["outcome"], f["compliant"] = "non_compliant", "false"
		}),
		entry(2, "acme/api", sha(2), "emergency", "2026-01-20T10:00:00.000000000Z", func(f map[string]string) {
			f["exception"], f["exception_due"] = "emergency", "2026-01-23T10:00:00.000000000Z"
		}),
		entry(3, "acme/api", sha(3), "standard", "2026-02-02T10:00:00.000000000Z", nil),
		entry(4, "acme/api", sha(2), "emergency", "2026-02-03T10:00:00.000000000Z", func(f map[string]string) {
			f["exception"], f["closes"] = "emergency", "cr-002"
		}),
		entry(5, "acme/api", sha(3), "deployment", "2026-02-04T10:00:00.000000000Z", func(f map[string]string) {
			f["pr"], f["ticket"] = "", ""
		}),
	}
	es[5].Links = []string{"cr-003", "cr-000"}
	return es
}

func testLedgerIndex(t *testing.T, x LedgerIndex, r LedgerReader) {
	ctx := t.Context()
	es := sampleEntries()
	// Two batches, the second overlapping the first: indexing a record
	// again is a no-op.
	if err := x.Put(ctx, es[:4]); err != nil {
		t.Fatal(err)
	}
	if err := x.Put(ctx, es[2:]); err != nil {
		t.Fatal(err)
	}
	for _, size := range []func(context.Context) (uint64, error){x.Size, r.Size} {
		if n, err := size(ctx); err != nil || n != 6 {
			t.Errorf("size = %d, %v; want 6", n, err)
		}
	}
	var leaves []byte
	err := x.Leaves(ctx, 6, func(seq uint64, id string, h []byte) error {
		if id != es[seq].Fields["id"] || hex.EncodeToString(h) != es[seq].LeafHash {
			return fmt.Errorf("leaf %d: %s %x", seq, id, h)
		}
		leaves = append(leaves, h...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.LeafHashes(ctx, 6); err != nil || !slices.Equal(got, leaves) {
		t.Errorf("leaf hashes: %x, %v; want %x", got, err, leaves)
	}
	if got, err := r.LeafHashes(ctx, 4); err != nil || !slices.Equal(got, leaves[:4*32]) {
		t.Errorf("leaf hashes of the first 4: %v", err)
	}
	row, leaf, ok, err := x.Row(ctx, 1)
	want := maps.Clone(es[1].Fields)
	want["exception_state"] = ""
	if err != nil || !ok || leaf != es[1].LeafHash || !maps.Equal(row, want) {
		t.Errorf("row 1: %v %q %v %v, want %v", row, leaf, ok, err, want)
	}
	if _, _, ok, err := x.Row(ctx, 99); ok || err != nil {
		t.Errorf("row 99: %v %v", ok, err)
	}
	for id, want := range map[string]string{"cr-002": "closed", "cr-004": "closing", "cr-003": ""} {
		if _, state, found, err := r.ExceptionOf(ctx, id); err != nil || !found || state != want {
			t.Errorf("exception of %s: %q %v %v, want %q", id, state, found, err, want)
		}
	}
	if seq, ok, err := r.Lookup(ctx, "cr-005"); err != nil || !ok || seq != 5 {
		t.Errorf("lookup cr-005: %d %v %v", seq, ok, err)
	}
	if _, ok, err := r.Lookup(ctx, "cr-999"); err != nil || ok {
		t.Errorf("lookup cr-999: %v %v", ok, err)
	}
	if got, err := x.IDsFor(ctx, "acme/api", fmt.Sprintf("%040x", 2)); err != nil || !slices.Equal(got, []string{"cr-002", "cr-004"}) {
		t.Errorf("ids for the emergency's commit: %v %v", got, err)
	}
	if got, err := x.TicketsOf(ctx, []string{"cr-005", "cr-003", "cr-999", "cr-000"}); err != nil || !slices.Equal(got, []string{"PAY-3", "PAY-0"}) {
		t.Errorf("tickets: %v %v", got, err)
	}
	if at, err := r.ObservedAt(ctx, 3); err != nil || at != es[3].Fields["observed_at"] {
		t.Errorf("observed at 3: %q %v", at, err)
	}
	if err := x.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := x.Size(ctx); err != nil || n != 0 {
		t.Errorf("size after clear: %d %v", n, err)
	}
}

func testPopulation(t *testing.T, x LedgerIndex, r LedgerReader) {
	ctx := t.Context()
	if err := x.Put(ctx, sampleEntries()); err != nil {
		t.Fatal(err)
	}
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feb, mar := jan.AddDate(0, 1, 0), jan.AddDate(0, 2, 0)
	population := func(q evidence.Query) []string {
		t.Helper()
		var out []string
		err := r.Population(ctx, q, func(row evidence.PopulationRow) error {
			out = append(out, fmt.Sprintf("%d%s", row.Seq, deployed(row)))
			if string(row.Summary) != fmt.Sprintf(`{"seq":%d}`, row.Seq) || len(row.LeafHash) != 32 {
				return fmt.Errorf("row %d: summary %s, leaf %x", row.Seq, row.Summary, row.LeafHash)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name string
		q    evidence.Query
		want []string
	}{
		{"january", evidence.Query{From: jan, To: feb, Size: 6}, []string{"0@2026-02-04", "1", "2"}},
		{"both months", evidence.Query{From: jan, To: mar, Size: 6}, []string{"0@2026-02-04", "1", "2", "3@2026-02-04", "4", "5"}},
		{"before the deployment was logged", evidence.Query{From: jan, To: mar, Size: 5}, []string{"0", "1", "2", "3", "4"}},
		{"one repository", evidence.Query{From: jan, To: mar, Size: 6, Repo: "acme/web"}, []string{"1"}},
		{"some types", evidence.Query{From: jan, To: mar, Size: 6, Types: []string{"emergency", "deployment"}}, []string{"2", "4", "5"}},
		{"exceptions", evidence.Query{From: jan, To: mar, Size: 6, ExceptionsOnly: true}, []string{"2", "4"}},
		{"a page", evidence.Query{From: jan, To: mar, Size: 6, Start: 2, Limit: 2}, []string{"2", "3@2026-02-04"}},
		{"an empty period", evidence.Query{From: mar, To: mar.AddDate(0, 1, 0), Size: 6}, nil},
	}
	for _, c := range cases {
		if got := population(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got, err := r.Closed(ctx, 6); err != nil || !maps.Equal(got, map[string]string{"cr-002": "cr-004"}) {
		t.Errorf("closed: %v %v", got, err)
	}
	if got, err := r.Closed(ctx, 4); err != nil || len(got) != 0 {
		t.Errorf("closed among the first 4: %v %v", got, err)
	}
	months, err := r.Months(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []evidence.MonthCount{
		{Month: "2026-01", ChangeType: "emergency", Records: 1, Compliant: 1},
		{Month: "2026-01", ChangeType: "standard", Records: 2, Compliant: 1},
		{Month: "2026-02", ChangeType: "deployment", Records: 1, Compliant: 1},
		{Month: "2026-02", ChangeType: "standard", Records: 1, Compliant: 1},
	}
	if !slices.Equal(months, want) {
		t.Errorf("months: %+v, want %+v", months, want)
	}
}

// deployed is "@DATE" for a row a deployment links, else "".
func deployed(row evidence.PopulationRow) string {
	if row.DeployedAt == "" {
		return ""
	}
	return "@" + row.DeployedAt[:10]
}
