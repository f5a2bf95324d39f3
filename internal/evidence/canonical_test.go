package evidence

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestCanonical(t *testing.T) {
	t.Parallel()
	type inner struct {
		Z int    `json:"z"`
		A string `json:"a"`
	}
	tests := []struct {
		name    string
		in      any
		want    string
		wantErr string
	}{
		{name: "sorted keys, no whitespace", in: map[string]any{"b": 1, "a": []int{3, 2}, "c": nil}, want: `{"a":[3,2],"b":1,"c":null}`},
		{name: "struct fields sorted", in: inner{Z: 1, A: "x"}, want: `{"a":"x","z":1}`},
		{name: "nested objects sorted", in: map[string]any{"o": map[string]any{"y": true, "x": false}}, want: `{"o":{"x":false,"y":true}}`},
		{name: "large integers exact", in: []int64{9007199254740993, -9223372036854775808}, want: `[9007199254740993,-9223372036854775808]`},
		{name: "uint64 max", in: uint64(18446744073709551615), want: `18446744073709551615`},
		{name: "integral float is an integer", in: 2.0, want: `2`},
		{name: "float rejected", in: 1.5, wantErr: "not a 64-bit integer"},
		{name: "no HTML escaping", in: "<a&b>", want: `"<a&b>"`},
		{name: "control characters", in: "tab\tnl\nnul\x00bell\x07del\x7f", want: `"tab\tnl\nnul\u0000bell\u0007del` + "\x7f" + `"`},
		{name: "quote and backslash", in: `"\`, want: `"\"\\"`},
		{name: "unicode literal", in: "é€😀\u2028", want: "\"é€😀\u2028\""},
		{name: "utc time", in: time.Date(2025, 3, 1, 10, 0, 0, 500, time.UTC), want: `"2025-03-01T10:00:00.0000005Z"`},
		// RFC 8785 sorts by UTF-16 code units: U+1F600 (D83D DE00) sorts
		// before U+E000, unlike in UTF-8 byte order.
		{name: "utf-16 key order", in: map[string]int{"\ue000": 1, "😀": 2, "a": 3}, want: `{"a":3,"😀":2,"` + "\ue000" + `":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonical(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Canonical(%v) = %s, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Canonical(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestCanonicalizeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantErr string
	}{
		{"duplicate key", `{"a":1,"a":2}`, "duplicate key"},
		{"exponent", `[1e3]`, "not a 64-bit integer"},
		{"fraction", `{"x":0.5}`, "not a 64-bit integer"},
		{"beyond 64 bits", `18446744073709551616`, "not a 64-bit integer"},
		{"trailing value", `{} {}`, "after the value"},
		{"truncated", `{"a":`, "unexpected end"},
		{"leading zero", `[01]`, "leading zero"},
		{"raw control character", "\"a\x01\"", "control character"},
		{"bad escape", `"\x41"`, "bad escape"},
		{"single quotes", `{'a':1}`, "want a string key"},
		{"missing comma", `[1 2]`, "want , or ]"},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := canonicalize([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("canonicalize(%s) = %s, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
		})
	}
}

func TestCanonicalizeNormalises(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{" { \"b\" : -0 , \"a\" : \"\\u0041\\/\" } ", `{"a":"A/","b":0}`},
		{`"\ud83d\ude00\u00e9\u001f\u2028"`, "\"😀é\\u001f\u2028\""},
		{`"\ud800\u0041\udc00"`, "\"\ufffdA\ufffd\""},
		{"\"\xff\"", "\"\ufffd\""},
		{`[{"z":{},"y":[]},{"":null}]`, `[{"y":[],"z":{}},{"":null}]`},
	}
	for _, tt := range tests {
		got, err := canonicalize([]byte(tt.in))
		if err != nil {
			t.Errorf("canonicalize(%q): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("canonicalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The same record encodes to the same bytes every time, and the encoding
// is a fixed point of canonicalisation.
func TestEncodeRecordDeterministic(t *testing.T) {
	t.Parallel()
	r := sampleRecord(7)
	first, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := EncodeRecord(sampleRecord(7))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("encoding changed:\n%s\n%s", first, again)
		}
	}
	re, err := canonicalize(first)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, re) {
		t.Errorf("re-canonicalising changed the bytes:\n%s\n%s", first, re)
	}
	var back Record
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("decoded record differs (-want +got):\n%s", diff)
	}
}

// Times in other zones encode as the same instant in UTC, and the
// caller's record is left as it was.
func TestEncodeRecordUTC(t *testing.T) {
	t.Parallel()
	utc := sampleRecord(1)
	want, err := EncodeRecord(utc)
	if err != nil {
		t.Fatal(err)
	}
	zoned := sampleRecord(1)
	paris := time.FixedZone("CET", 3600)
	zoned.ObservedAt = zoned.ObservedAt.In(paris)
	zoned.Facts.Reviews[1].SubmittedAt = zoned.Facts.Reviews[1].SubmittedAt.In(paris)
	zoned.Facts.Tickets[0].Ticket.Created = zoned.Facts.Tickets[0].Ticket.Created.In(time.FixedZone("", -5*3600))
	got, err := EncodeRecord(zoned)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("zoned record encodes differently:\n%s\n%s", want, got)
	}
	if zoned.ObservedAt.Location() != paris {
		t.Error("EncodeRecord changed the caller's record")
	}
	if bytes.Contains(got, []byte("+01:00")) || bytes.Contains(got, []byte("-05:00")) {
		t.Errorf("encoding holds a non-UTC offset: %s", got)
	}
}

func TestEncodeRecordInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(*Record)
		wantErr string
	}{
		{"schema", func(r *Record) { r.Schema = "v0" }, "schema"},
		{"no id", func(r *Record) { r.ID = "" }, "id is empty"},
		{"type", func(r *Record) { r.ChangeType = "hotfix" }, "change_type"},
		{"sha", func(r *Record) { r.Subject.MergeSHA = "abc" }, "merge_sha"},
		{"observed", func(r *Record) { r.ObservedAt = time.Time{} }, "observed_at"},
		{"bypass without exception", func(r *Record) { r.ChangeType = Bypass }, "must carry an exception"},
		{"exception kind", func(r *Record) { r.Exception = &Exception{Kind: "whim"} }, "exception.kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := sampleRecord(1)
			tt.edit(r)
			if _, err := EncodeRecord(r); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("EncodeRecord = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestGoldenRecord pins the canonical encoding of one record: a change
// here changes every signature and breaks old verifiers. Run with -update
// only for a deliberate schema change.
func TestGoldenRecord(t *testing.T) {
	t.Parallel()
	r := sampleRecord(1)
	r.ChangeType = Emergency
	r.Decision.Emergency = true
	r.Decision.EmergencyWindow = 72 * time.Hour
	r.Exception = &Exception{Kind: ExceptionEmergency, Reason: "emergency label; manager approval owed",
		OpenedAt: r.ObservedAt, DueAt: r.ObservedAt.Add(72 * time.Hour)}
	r.Links = []string{"cr-000000"}
	got, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "record.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("canonical record changed (-want +got):\n%s", diff)
	}
}

// plain8 passes exactly the words of eight bytes that need no care in a
// string: it is what lets str skip them.
func TestPlain8(t *testing.T) {
	t.Parallel()
	plain := func(b [8]byte) bool {
		for _, c := range b {
			if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	check := func(b [8]byte) {
		if got, want := plain8(binary.LittleEndian.Uint64(b[:])), plain(b); got != want {
			t.Fatalf("plain8(%q) = %v, want %v", b, got, want)
		}
	}
	// Every byte value in every position of a plain word…
	for c := range 256 {
		for i := range 8 {
			b := [8]byte([]byte("abcdefgh"))
			b[i] = byte(c)
			check(b)
		}
	}
	// …and words with several special bytes, whose borrows interfere.
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		var b [8]byte
		for i := range b {
			if b[i] = byte(0x20 + r.IntN(0x60)); r.IntN(4) == 0 {
				b[i] = byte(r.IntN(256))
			}
		}
		check(b)
	}
}
