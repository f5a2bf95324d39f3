package audit_test

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"

	"github.com/changegate/changegate/internal/audit"
)

// FuzzVerifyPackage: a package mutated anyhow never panics the verifier,
// and the verifier accepts only a package whose files are exactly those
// of the one changegate wrote (a zip may be re-laid out, not changed).
//
//	go test ./internal/audit -run '^$' -fuzz FuzzVerifyPackage -fuzztime 60s
func FuzzVerifyPackage(f *testing.F) {
	svc := fixture(f)
	pkg, err := svc.Sample(f.Context(), audit.SampleRequest{Query: january, Size: 3, Seed: "fuzz", IncludeExceptions: true})
	if err != nil {
		f.Fatal(err)
	}
	want, err := zipFiles(pkg)
	if err != nil {
		f.Fatal(err)
	}
	trust := audit.TrustedKey{Public: svc.Public()}
	f.Add(pkg)
	f.Add(pkg[:len(pkg)/2])
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := audit.VerifyPackage(bytes.NewReader(data), int64(len(data)), trust); err != nil {
			return
		}
		got, err := zipFiles(data)
		if err != nil {
			t.Fatalf("verified a package that does not unzip: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("verified a package of %d files, want %d", len(got), len(want))
		}
		for name, b := range want {
			if !bytes.Equal(got[name], b) {
				t.Fatalf("verified a package whose %s differs", name)
			}
		}
	})
}

// zipFiles reads every file of a zip, or fails.
func zipFiles(data []byte) (map[string][]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out[f.Name] = b
	}
	return out, nil
}
