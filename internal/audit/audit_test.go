package audit_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/evidence"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// TestPopulationGolden: the CSV of a month and its signed manifest, a
// title that starts with "=" included.
func TestPopulationGolden(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	cp, err := svc.Latest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	file, signed, err := svc.ExportPopulation(t.Context(), january, cp, "csv")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "population.csv", file)
	var env struct{ Payload string }
	if err := json.Unmarshal(signed, &env); err != nil {
		t.Fatal(err)
	}
	manifest, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "population.manifest.json", manifest)
	if !strings.Contains(string(file), ",'=cmd|") {
		t.Error("the formula title is not escaped")
	}
	if strings.Contains(string(file), "February") {
		t.Error("a February record is in January's population")
	}
}

func TestPopulationFormats(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	cp, err := svc.Latest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	js, _, err := svc.ExportPopulation(t.Context(), january, cp, "json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(js, &rows); err != nil {
		t.Fatalf("json export: %v", err)
	}
	if len(rows) != 12 || rows[1]["title"] != "=cmd|' /C calc'!A0" || rows[0]["seq"] != 0.0 {
		t.Errorf("json rows: %d, first %v", len(rows), rows[0])
	}
	xlsx, _, err := svc.ExportPopulation(t.Context(), january, cp, "xlsx")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(xlsx, []byte("PK")) {
		t.Error("xlsx is not a zip")
	}
	bypasses, _, err := svc.ExportPopulation(t.Context(), audit.Query{From: january.From, To: january.To, Types: []string{"bypass"}}, cp, "csv")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(bypasses, []byte("\r\n")) - 1; n != 2 {
		t.Errorf("bypass population has %d rows, want 2", n)
	}
}

// TestSampleSelectionGolden: a fixed seed draws fixed ids, and so do a
// fixed nonce and checkpoint.
func TestSampleSelectionGolden(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	for _, tc := range []struct {
		name string
		req  audit.SampleRequest
	}{
		{"seed", audit.SampleRequest{Query: january, Size: 4, Seed: "auditor-2026"}},
		{"nonce", audit.SampleRequest{Query: january, Size: 4, Nonce: "8f14e45f", CheckpointSize: 13}},
		{"frequency_with_exceptions", audit.SampleRequest{Query: january, Frequency: "weekly", Seed: "x", IncludeExceptions: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zip, err := svc.Sample(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			m := manifestOf(t, zip)
			for _, p := range m.Sample {
				got.WriteString(p.ID + " " + p.Reason + "\n")
			}
			golden(t, "sample_"+tc.name+".txt", got.Bytes())
			again, err := svc.Sample(t.Context(), tc.req)
			if err != nil || !bytes.Equal(zip, again) {
				t.Errorf("the same request gave different bytes (err %v)", err)
			}
			if _, err := audit.VerifyPackage(bytes.NewReader(zip), int64(len(zip)), audit.TrustedKey{Public: svc.Public()}); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

func TestSampleBadInput(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	for name, tc := range map[string]struct {
		req  audit.SampleRequest
		flag string
	}{
		"size 0":             {audit.SampleRequest{Query: january, Seed: "s"}, "size"},
		"negative size":      {audit.SampleRequest{Query: january, Size: -1, Seed: "s"}, "size"},
		"larger than pop":    {audit.SampleRequest{Query: january, Size: 13, Seed: "s"}, "size"},
		"no seed":            {audit.SampleRequest{Query: january, Size: 1}, "seed"},
		"nonce without cp":   {audit.SampleRequest{Query: january, Size: 1, Nonce: "n"}, "checkpoint"},
		"unknown frequency":  {audit.SampleRequest{Query: january, Frequency: "hourly", Seed: "s"}, "frequency"},
		"from after to":      {audit.SampleRequest{Query: audit.Query{From: january.To, To: january.From}, Size: 1, Seed: "s"}, "from"},
		"unknown type":       {audit.SampleRequest{Query: audit.Query{From: january.From, To: january.To, Types: []string{"yolo"}}, Size: 1, Seed: "s"}, "type"},
		"unknown checkpoint": {audit.SampleRequest{Query: january, Size: 1, Nonce: "n", CheckpointSize: 999}, "checkpoint"},
	} {
		_, err := svc.Sample(t.Context(), tc.req)
		var fe *audit.FlagError
		if !errors.As(err, &fe) || fe.Flag != tc.flag {
			t.Errorf("%s: got %v, want an error naming --%s", name, err, tc.flag)
		}
	}
	_, err := svc.Export(t.Context(), []string{"nope"})
	var nf *audit.NotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("export of an unknown id: %v", err)
	}
}

func TestExceptions(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	p, err := svc.Exceptions(t.Context(), january, "open")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rows) != 2 || p.Rows[0].PR != 4 || p.Rows[1].PR != 9 || p.Rows[0].ExceptionState != audit.StateOpen {
		t.Errorf("open exceptions: %+v", p.Rows)
	}
	if p, err = svc.Exceptions(t.Context(), january, "closed"); err != nil || len(p.Rows) != 0 {
		t.Errorf("closed exceptions: %v, %v", p, err)
	}
}

func TestExportAndProofs(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	cp, err := svc.Latest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Population(t.Context(), january, cp)
	if err != nil {
		t.Fatal(err)
	}
	zip, err := svc.Export(t.Context(), []string{p.Rows[3].ID, p.Rows[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyPackage(bytes.NewReader(zip), int64(len(zip)), audit.TrustedKey{})
	if err != nil || rep.Kind != "export" || rep.Records != 2 || !rep.KeyFromPackage {
		t.Errorf("export verify: %+v, %v", rep, err)
	}
	v, err := svc.Record(t.Context(), p.Rows[3].ID)
	if err != nil || v.Row.PR != 4 || v.Proof.TreeSize != 13 {
		t.Fatalf("record: %+v, %v", v, err)
	}
	page, err := audit.RecordHTML(v)
	if err != nil || !strings.Contains(string(page), "hotfix without review") || strings.Contains(string(page), "<script") {
		t.Errorf("record page: %v", err)
	}
	if _, err := svc.ConsistencyProof(t.Context(), 13, 13); err != nil {
		t.Errorf("consistency: %v", err)
	}
}

func manifestOf(t *testing.T, zip []byte) audit.PackageManifest {
	t.Helper()
	files := unzip(t, zip)
	var m audit.PackageManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPages: pages read one at a time add up to the population, and
// Position says where each begins.
func TestPages(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	cp, err := svc.Latest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := svc.Population(t.Context(), january, cp)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	var start uint64
	for more := true; more; {
		var p *audit.Population
		p, more, err = svc.Page(t.Context(), january, cp, start, 5)
		if err != nil {
			t.Fatal(err)
		}
		pos, err := svc.Position(t.Context(), january, cp, start)
		if err != nil || pos != len(got) {
			t.Errorf("position of %d: %d (%v), want %d", start, pos, err, len(got))
		}
		for _, r := range p.Rows {
			got = append(got, r.Seq)
		}
		if len(p.Rows) > 0 {
			start = p.Rows[len(p.Rows)-1].Seq + 1
		}
	}
	var want []uint64
	for _, r := range whole.Rows {
		want = append(want, r.Seq)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	if n, err := svc.Count(t.Context(), january, cp); err != nil || n != len(want) {
		t.Errorf("count %d (%v), want %d", n, err, len(want))
	}
}

// TestEmergencyExceptions: an emergency approved in time is closed by its
// closing record; one never approved is late once its due time is past.
func TestEmergencyExceptions(t *testing.T) {
	t.Parallel()
	emergency := func(n int) *evidence.Record {
		r := merge(n, "emergency fix")
		r.ChangeType = evidence.Emergency
		r.Decision.Emergency = true
		at := r.Facts.PR.MergedAt
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionEmergency, Reason: "emergency change", OpenedAt: at, DueAt: at.Add(48 * time.Hour)}
		return r
	}
	inTime, late := emergency(5), emergency(6)
	closing := emergency(5)
	origID := evidence.RecordID(inTime.Repo.String(), inTime.Subject.SHA(), evidence.Emergency, "")
	closing.ObservedAt = inTime.Facts.PR.MergedAt.Add(24 * time.Hour)
	closing.Exception = &evidence.Exception{Kind: evidence.ExceptionEmergency, Closes: origID, Reason: "approved after the fact", OpenedAt: inTime.Exception.OpenedAt, DueAt: inTime.Exception.DueAt}
	svc := newLedger(t, inTime, late, closing, merge(24*20, "later"))
	for state, want := range map[string][]string{
		"":       {"closed", "late", "closing"},
		"closed": {"closed"},
		"late":   {"late"},
		"open":   {"late"},
	} {
		p, err := svc.Exceptions(t.Context(), january, state)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range p.Rows {
			got = append(got, r.ExceptionState)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("state %q (-want +got):\n%s", state, diff)
		}
	}
	cp, _ := svc.Latest(t.Context())
	p, err := svc.Population(t.Context(), january, cp)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Counts(); c["emergency"] != 2 || c["approval_after_the_fact"] != 1 {
		t.Errorf("counts: %v", c)
	}
}

// TestXLSX: the workbook has the CSV's columns, typed dates and numbers,
// and escapes a formula title.
func TestXLSX(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	cp, err := svc.Latest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := svc.ExportPopulation(t.Context(), january, cp, "xlsx")
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("Population")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 13 || !slices.Equal(rows[0], audit.Header()) {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	if rows[2][7] != "'=cmd|' /C calc'!A0" {
		t.Errorf("title cell %q is not escaped", rows[2][7])
	}
	// event_time is a date: a serial day number under a date format.
	raw, err := f.GetCellValue("Population", "D2", excelize.Options{RawCellValue: true})
	if serial, perr := strconv.ParseFloat(raw, 64); err != nil || perr != nil || serial < 46023 || serial > 46024 {
		t.Errorf("event_time cell holds %q (%v), want the serial of 2026-01-01", raw, err)
	}
	style, err := f.GetCellStyle("Population", "D2")
	if err != nil || style == 0 {
		t.Errorf("event_time cell has no date style (%d, %v)", style, err)
	}
}
