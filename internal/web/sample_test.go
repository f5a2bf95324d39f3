package web

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/changegate/changegate/internal/audit"
)

func (f *fixture) postSample(t *testing.T, body string) response {
	t.Helper()
	return f.do(t, request{method: http.MethodPost, path: "/api/v1/samples", token: f.tokens["bob"], body: body,
		header: http.Header{"Content-Type": {"application/json"}}})
}

func TestSampleIDIsTheRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	first := f.postSample(t, `{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"fy2026","types":["standard","bypass"]}`)
	if first.code != http.StatusCreated {
		t.Fatalf("status %d: %s", first.code, first.body)
	}
	created := decodeJSON[sampleCreated](t, first)
	if created.Checkpoint != 8 || created.PackageURL != "/api/v1/samples/"+created.ID+"/package" || first.header.Get("Location") != created.PackageURL {
		t.Errorf("created %+v, location %q", created, first.header.Get("Location"))
	}
	// The same request, spelled differently, is the same sample.
	for _, body := range []string{
		`{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"fy2026","types":["standard","bypass"]}`,
		`{"seed":"fy2026","types":["bypass","standard","bypass"],"size":3,"to":"2026-04-01T00:00:00Z","from":"2026-01-01T00:00:00Z","checkpoint":8}`,
		`{"from":"2026-01-01T01:00:00+01:00","to":"2026-04-01","size":3,"seed":"fy2026","types":["bypass,standard"]}`,
	} {
		r := f.postSample(t, body)
		if got := decodeJSON[sampleCreated](t, r); got.ID != created.ID {
			t.Errorf("%s: id %s, want %s", body, got.ID, created.ID)
		}
	}
	if other := decodeJSON[sampleCreated](t, f.postSample(t, `{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"fy2027"}`)); other.ID == created.ID {
		t.Error("another seed gives the same id")
	}

	pkg := f.do(t, request{path: created.PackageURL, token: f.tokens["alice@audit-firm.example"]})
	if pkg.code != http.StatusOK || pkg.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("package: status %d, %s: %.200s", pkg.code, pkg.header.Get("Content-Type"), pkg.body)
	}
	if got := pkg.header.Get("Content-Disposition"); got != `attachment; filename="sample-2026-01-01-2026-04-01-at-8.zip"` {
		t.Errorf("disposition %q", got)
	}
	again := f.get(t, created.PackageURL)
	if !bytes.Equal(pkg.body, again.body) {
		t.Error("the same id gave different packages")
	}
	report, err := audit.VerifyPackage(bytes.NewReader(pkg.body), int64(len(pkg.body)), audit.TrustedKey{Public: f.pub})
	if err != nil {
		t.Fatalf("package does not verify: %v", err)
	}
	if report.Records != 3 || report.Population != 5 || report.Checkpoint.Size != 8 {
		t.Errorf("report %+v", report)
	}
}

func TestSampleNonce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := f.postSample(t, `{"from":"2026-01-01","to":"2026-04-01","frequency":"weekly","auditor_nonce":"n-42","checkpoint":8,"include_exceptions":true}`)
	if r.code != http.StatusCreated {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	pkg := f.get(t, decodeJSON[sampleCreated](t, r).PackageURL)
	if _, err := audit.VerifyPackage(bytes.NewReader(pkg.body), int64(len(pkg.body)), audit.TrustedKey{Public: f.pub}); err != nil {
		t.Fatalf("package (%d) does not verify: %v", pkg.code, err)
	}
}

func TestSampleBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name, body, param string
	}{
		{"not json", `from=2026-01-01`, "body"},
		{"unknown field", `{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"s","sise":3}`, "body"},
		{"two values", `{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"s"}{}`, "body"},
		{"no from", `{"to":"2026-04-01","size":3,"seed":"s"}`, "from"},
		{"bad to", `{"from":"2026-01-01","to":"April","size":3,"seed":"s"}`, "to"},
		{"bad type", `{"from":"2026-01-01","to":"2026-04-01","types":["hotfix"],"size":3,"seed":"s"}`, "type"},
		{"no size", `{"from":"2026-01-01","to":"2026-04-01","seed":"s"}`, "size"},
		{"negative size", `{"from":"2026-01-01","to":"2026-04-01","size":-1,"seed":"s"}`, "size"},
		{"size and frequency", `{"from":"2026-01-01","to":"2026-04-01","size":3,"frequency":"daily","seed":"s"}`, "size"},
		{"size beyond population", `{"from":"2026-01-01","to":"2026-04-01","size":30,"seed":"s"}`, "size"},
		{"bad frequency", `{"from":"2026-01-01","to":"2026-04-01","frequency":"hourly","seed":"s"}`, "frequency"},
		{"no seed", `{"from":"2026-01-01","to":"2026-04-01","size":3}`, "seed"},
		{"seed and nonce", `{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"s","auditor_nonce":"n","checkpoint":8}`, "seed"},
		{"nonce without checkpoint", `{"from":"2026-01-01","to":"2026-04-01","size":3,"auditor_nonce":"n"}`, "checkpoint"},
		{"checkpoint beyond", `{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"s","checkpoint":99}`, "checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.postSample(t, tc.body)
			if r.code != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", r.code, r.body)
			}
			if e := decodeJSON[apiError](t, r); !strings.HasPrefix(e.Error, tc.param+" ") {
				t.Errorf("error %q does not name %s first", e.Error, tc.param)
			}
		})
	}

	good := decodeJSON[sampleCreated](t, f.postSample(t, `{"from":"2026-01-01","to":"2026-04-01","size":3,"seed":"s"}`)).ID
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	spaced := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte(","), []byte(", "), 1))
	unpinned := base64.RawURLEncoding.EncodeToString([]byte(`{"from":"2026-01-01T00:00:00Z","seed":"s","size":3,"to":"2026-04-01T00:00:00Z"}`))
	for name, id := range map[string]string{"garbage": "not-an-id", "not canonical": spaced, "no checkpoint": unpinned, "too long": strings.Repeat("A", 5000)} {
		if r := f.get(t, "/api/v1/samples/"+id+"/package"); r.code != http.StatusNotFound {
			t.Errorf("%s: status %d (%.100s), want 404", name, r.code, r.body)
		}
	}
}
