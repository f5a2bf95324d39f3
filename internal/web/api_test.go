package web

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/evidence"
)

// apiRow is the part of a JSON row the tests read.
type apiRow struct {
	Seq            uint64 `json:"seq"`
	RecordID       string `json:"record_id"`
	LeafHash       string `json:"leaf_hash"`
	ChangeType     string `json:"change_type"`
	Repo           string `json:"repo"`
	Compliant      bool   `json:"compliant"`
	ExceptionState string `json:"exception_state"`
}

type apiPage struct {
	Checkpoint audit.CheckpointJSON `json:"checkpoint"`
	Rows       []apiRow             `json:"rows"`
	NextCursor string               `json:"next_cursor"`
}

func seqs(rows []apiRow) []uint64 {
	out := []uint64{}
	for _, r := range rows {
		out = append(out, r.Seq)
	}
	return out
}

func TestChangesJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name  string
		query string
		want  []uint64
	}{
		{"all", "from=2026-01-01&to=2026-04-01", []uint64{0, 1, 2, 3, 4, 5, 6, 7}},
		{"january", "from=2026-01-01&to=2026-02-01", []uint64{0, 1}},
		{"rfc3339 bounds", "from=2026-01-10T12:00:00Z&to=2026-01-20T12:00:00Z", []uint64{0}},
		{"repo", "from=2026-01-01&to=2026-04-01&repo=acme/web", []uint64{1, 4}},
		{"types comma-separated", "from=2026-01-01&to=2026-04-01&type=bypass,emergency", []uint64{2, 3, 4, 6}},
		{"types repeated", "from=2026-01-01&to=2026-04-01&type=bypass&type=emergency", []uint64{2, 3, 4, 6}},
		{"nothing", "from=2025-01-01&to=2025-02-01", []uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.get(t, "/api/v1/changes?"+tc.query)
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			p := decodeJSON[apiPage](t, r)
			if diff := cmp.Diff(tc.want, seqs(p.Rows)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
			if p.Checkpoint.Size != 8 || len(p.Checkpoint.Root) != 64 || p.NextCursor != "" {
				t.Errorf("checkpoint %+v, next %q", p.Checkpoint, p.NextCursor)
			}
		})
	}
	// Row keys are the CSV's column names.
	r := f.get(t, "/api/v1/changes?from=2026-01-01&to=2026-01-15")
	var raw struct{ Rows []map[string]any }
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Rows) != 1 {
		t.Fatalf("rows %s: %v", r.body, err)
	}
	for _, col := range []string{"seq", "record_id", "leaf_hash", "event_time", "change_type", "repo", "pr", "ticket_key", "reviewers", "manager_approver", "compliant"} {
		if _, ok := raw.Rows[0][col]; !ok {
			t.Errorf("row lacks %s: %v", col, raw.Rows[0])
		}
	}
}

func TestChangesPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var got []uint64
	path := "/api/v1/changes?from=2026-01-01&to=2026-04-01&limit=3"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := f.get(t, path)
		if r.code != http.StatusOK {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		p := decodeJSON[apiPage](t, r)
		if len(p.Rows) > 3 {
			t.Fatalf("page of %d rows, limit 3", len(p.Rows))
		}
		got = append(got, seqs(p.Rows)...)
		if p.NextCursor == "" {
			break
		}
		path = "/api/v1/changes?from=2026-01-01&to=2026-04-01&limit=3&cursor=" + url.QueryEscape(p.NextCursor)
	}
	if diff := cmp.Diff([]uint64{0, 1, 2, 3, 4, 5, 6, 7}, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

// TestBadParameters: every bad parameter is a 400 that names it.
func TestBadParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	period := "from=2026-01-01&to=2026-04-01"
	tests := []struct {
		name, path, param string
	}{
		{"no from", "/api/v1/changes?to=2026-04-01", "from"},
		{"no to", "/api/v1/changes?from=2026-01-01", "to"},
		{"bad from", "/api/v1/changes?from=January&to=2026-04-01", "from"},
		{"bad to", "/api/v1/changes?from=2026-01-01&to=2026-13-01", "to"},
		{"from after to", "/api/v1/changes?from=2026-04-01&to=2026-01-01", "from"},
		{"bad repo", "/api/v1/changes?" + period + "&repo=acme", "repo"},
		{"bad type", "/api/v1/changes?" + period + "&type=standard,hotfix", "type"},
		{"bad format", "/api/v1/changes?" + period + "&format=pdf", "format"},
		{"zero limit", "/api/v1/changes?" + period + "&limit=0", "limit"},
		{"big limit", "/api/v1/changes?" + period + "&limit=1001", "limit"},
		{"text limit", "/api/v1/changes?" + period + "&limit=ten", "limit"},
		{"bad cursor", "/api/v1/changes?" + period + "&cursor=bogus", "cursor"},
		{"cursor of no checkpoint", "/api/v1/changes?" + period + "&cursor=" + (cursor{size: 99, after: 3}).String(), "cursor"},
		{"bad record id", "/api/v1/changes/not-an-id", "id"},
		{"exceptions state", "/api/v1/exceptions?" + period + "&state=pending", "state"},
		{"exceptions no from", "/api/v1/exceptions?to=2026-04-01", "from"},
		{"exceptions xlsx", "/api/v1/exceptions?" + period + "&format=xlsx", "format"},
		{"inclusion no seq", "/api/v1/proof/inclusion", "seq"},
		{"inclusion bad seq", "/api/v1/proof/inclusion?seq=-1", "seq"},
		{"inclusion seq beyond", "/api/v1/proof/inclusion?seq=8&size=8", "seq"},
		{"inclusion zero size", "/api/v1/proof/inclusion?seq=0&size=0", "size"},
		{"consistency no from", "/api/v1/proof/consistency?to=8", "from"},
		{"consistency from after to", "/api/v1/proof/consistency?from=8&to=3", "from"},
		{"consistency bad to", "/api/v1/proof/consistency?from=1&to=x", "to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.get(t, tc.path)
			if r.code != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", r.code, r.body)
			}
			e := decodeJSON[apiError](t, r)
			if !strings.HasPrefix(e.Error, tc.param+" ") {
				t.Errorf("error %q does not name %s first", e.Error, tc.param)
			}
		})
	}
}

func TestChangesFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name, query, accept string
		contentType, file   string
		magic               string
	}{
		{"csv by format", "&format=csv", "", "text/csv; charset=utf-8", "population-20260101-20260401.csv", "seq,record_id,leaf_hash,"},
		{"csv by accept", "", "text/csv", "text/csv; charset=utf-8", "population-20260101-20260401.csv", "seq,record_id,leaf_hash,"},
		{"xlsx by accept", "", "application/json;q=0.5, " + mimeXLSX, mimeXLSX, "population-20260101-20260401.xlsx", "PK\x03\x04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.do(t, request{path: "/api/v1/changes?from=2026-01-01&to=2026-04-01" + tc.query, token: f.tokens["bob"],
				header: http.Header{"Accept": {tc.accept}}})
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			if got := r.header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("content type %q, want %q", got, tc.contentType)
			}
			if got, want := r.header.Get("Content-Disposition"), `attachment; filename="`+tc.file+`"`; got != want {
				t.Errorf("disposition %q, want %q", got, want)
			}
			if !bytes.HasPrefix(r.body, []byte(tc.magic)) {
				t.Errorf("body starts %q", r.body[:min(len(r.body), 40)])
			}
			checkManifest(t, f, r)
		})
	}
}

// checkManifest opens the population manifest of a file response and
// checks that it signs that file.
func checkManifest(t *testing.T, f *fixture, r response) {
	t.Helper()
	env, err := base64.StdEncoding.DecodeString(r.header.Get(ManifestHeader))
	if err != nil {
		t.Fatalf("manifest header: %v", err)
	}
	v, err := evidence.NewVerifier(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := v.OpenPayload(env, audit.ManifestPayloadType)
	if err != nil {
		t.Fatalf("manifest does not verify: %v", err)
	}
	var m audit.PopulationManifest
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	if m.Rows != 8 || m.Bytes != len(r.body) || m.Checkpoint.Size != 8 {
		t.Errorf("manifest %+v for a file of %d bytes", m, len(r.body))
	}
}

type recordResponse struct {
	Row            apiRow               `json:"row"`
	Record         evidence.Record      `json:"record"`
	Envelope       string               `json:"envelope"`
	InclusionProof audit.Proof          `json:"inclusion_proof"`
	Checkpoint     audit.CheckpointJSON `json:"checkpoint"`
}

func TestRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := f.get(t, "/api/v1/changes/"+f.ids[4])
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	got := decodeJSON[recordResponse](t, r)
	if got.Row.RecordID != f.ids[4] || got.Row.Seq != 4 || got.Row.ChangeType != "bypass" || got.Record.ID != f.ids[4] {
		t.Errorf("row %+v, record id %s", got.Row, got.Record.ID)
	}
	// The envelope is the stored bytes: it hashes to the row's leaf, which
	// the proof ties to the checkpoint's root.
	leaf := evidence.LeafHash([]byte(got.Envelope))
	if hex.EncodeToString(leaf) != got.Row.LeafHash {
		t.Fatalf("envelope hashes to %x, row says %s", leaf, got.Row.LeafHash)
	}
	if _, err := evidence.VerifyEnvelope([]byte(got.Envelope), f.pub); err != nil {
		t.Errorf("envelope: %v", err)
	}
	verifyInclusion(t, got.InclusionProof, leaf, got.Checkpoint.Root)

	for _, tc := range []struct {
		id   string
		code int
	}{{strings.Repeat("0", 32), http.StatusNotFound}, {"ABC", http.StatusBadRequest}} {
		if r := f.get(t, "/api/v1/changes/"+tc.id); r.code != tc.code {
			t.Errorf("record %s: status %d (%s), want %d", tc.id, r.code, r.body, tc.code)
		}
	}
}

func verifyInclusion(t *testing.T, p audit.Proof, leaf []byte, rootHex string) {
	t.Helper()
	root, _ := hex.DecodeString(rootHex)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Seq, p.TreeSize, leaf, unhex(t, p.Hashes), root); err != nil {
		t.Errorf("inclusion proof: %v", err)
	}
}

func unhex(t *testing.T, hs []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(hs))
	for i, h := range hs {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func TestExceptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		state string
		want  []uint64
	}{
		{"", []uint64{2, 3, 4, 6}},
		{"open", []uint64{4, 6}},
		{"late", []uint64{6}},
		{"closed", []uint64{2}},
	}
	for _, tc := range tests {
		t.Run("state "+tc.state, func(t *testing.T) {
			t.Parallel()
			r := f.get(t, "/api/v1/exceptions?from=2026-01-01&to=2026-04-01&state="+tc.state)
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			if diff := cmp.Diff(tc.want, seqs(decodeJSON[apiPage](t, r).Rows)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
	r := f.get(t, "/api/v1/exceptions?from=2026-01-01&to=2026-04-01&format=csv")
	if r.code != http.StatusOK || !bytes.HasPrefix(r.body, []byte("seq,record_id")) || bytes.Count(r.body, []byte("\r\n")) != 5 {
		t.Errorf("exceptions csv: %d %s", r.code, r.body)
	}
}

func TestCheckpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := f.get(t, "/api/v1/checkpoint")
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	cp := decodeJSON[audit.CheckpointJSON](t, r)
	nv, err := evidence.NoteVerifier(cp.Origin, f.pub)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := evidence.VerifyCheckpoint([]byte(cp.Note), nv)
	if err != nil {
		t.Fatalf("note: %v", err)
	}
	if cp.Size != 8 || signed.Size != 8 || hex.EncodeToString(signed.Hash) != cp.Root || cp.AsOf != "2026-03-20T12:00:31Z" {
		t.Errorf("checkpoint %+v, note says size %d root %x", cp, signed.Size, signed.Hash)
	}

	empty := newFixture(t, []fixtureChange{})
	if r := empty.get(t, "/api/v1/checkpoint"); r.code != http.StatusConflict || !strings.Contains(string(r.body), "no records yet") {
		t.Errorf("empty ledger: %d %s", r.code, r.body)
	}
}

func TestProofs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	page := decodeJSON[apiPage](t, f.get(t, "/api/v1/changes?from=2026-01-01&to=2026-04-01"))
	log := evidence.NewLog()
	for _, row := range page.Rows {
		leaf, _ := hex.DecodeString(row.LeafHash)
		if _, err := log.AppendLeafHash(leaf); err != nil {
			t.Fatal(err)
		}
	}
	root := func(size uint64) []byte {
		r, err := log.Root(size)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	for _, path := range []string{"/api/v1/proof/inclusion?seq=5", "/api/v1/proof/inclusion?seq=1&size=3"} {
		r := f.get(t, path)
		if r.code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, r.code, r.body)
		}
		p := decodeJSON[audit.Proof](t, r)
		leaf, _ := log.LeafHashAt(p.Seq)
		verifyInclusion(t, p, leaf, hex.EncodeToString(root(p.TreeSize)))
	}

	r := f.get(t, "/api/v1/proof/consistency?from=3")
	if r.code != http.StatusOK {
		t.Fatalf("consistency: status %d: %s", r.code, r.body)
	}
	c := decodeJSON[consistencyJSON](t, r)
	if c.From != 3 || c.To != 8 {
		t.Errorf("consistency %+v", c)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 3, 8, unhex(t, c.Hashes), root(3), root(8)); err != nil {
		t.Errorf("consistency proof: %v", err)
	}
}

func TestExport(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := f.get(t, "/api/v1/export?id="+f.ids[4]+","+f.ids[0]+"&id="+f.ids[6])
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("export: %d %.200s", r.code, r.body)
	}
	report, err := audit.VerifyPackage(bytes.NewReader(r.body), int64(len(r.body)), audit.TrustedKey{Public: f.pub})
	if err != nil || report.Records != 3 {
		t.Fatalf("export package: %+v, %v", report, err)
	}
	if again := f.get(t, "/api/v1/export?id="+f.ids[4]+"&id="+f.ids[0]+"&id="+f.ids[6]); !bytes.Equal(again.body, r.body) {
		t.Error("the same ids gave another package")
	}
	if r := f.get(t, "/api/v1/export"); r.code != http.StatusBadRequest || !strings.HasPrefix(decodeJSON[apiError](t, r).Error, "id ") {
		t.Errorf("no id: %d %s", r.code, r.body)
	}
	if r := f.get(t, "/api/v1/export?id="+strings.Repeat("e", 32)); r.code != http.StatusNotFound {
		t.Errorf("unknown id: %d %s", r.code, r.body)
	}
}
