package audit_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/changegate/changegate/internal/audit"
)

func unzip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func rezip(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// failsNaming verifies data and wants a failure naming file.
func failsNaming(t *testing.T, svc *audit.Service, data []byte, file string) {
	t.Helper()
	_, err := audit.VerifyPackage(bytes.NewReader(data), int64(len(data)), audit.TrustedKey{Public: svc.Public()})
	var pe *audit.PackageError
	if !errors.As(err, &pe) {
		t.Fatalf("verify: got %v, want a failure naming %s", err, file)
	}
	if pe.File != file {
		t.Errorf("verify named %q (%v), want %q", pe.File, err, file)
	}
}

// TestTamperedPackages: every file of a package edited, removed or added,
// a record swapped in from another sample, a population row dropped.
func TestTamperedPackages(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	pkg, err := svc.Sample(t.Context(), audit.SampleRequest{Query: january, Size: 3, Seed: "tamper", IncludeExceptions: true})
	if err != nil {
		t.Fatal(err)
	}
	files := unzip(t, pkg)
	for name := range files {
		t.Run("edit "+name, func(t *testing.T) {
			changed := clone(files)
			changed[name] = flipByte(changed[name])
			want := name
			if name == "manifest.json" {
				want = "manifest.json" // no longer what its signature signs
			}
			failsNaming(t, svc, rezip(t, changed), want)
		})
		t.Run("remove "+name, func(t *testing.T) {
			changed := clone(files)
			delete(changed, name)
			want := name
			if name == "pubkey.pem" || name == "manifest.json.dsse" || name == "manifest.json" {
				want = name
			}
			failsNaming(t, svc, rezip(t, changed), want)
		})
	}
	t.Run("add a file", func(t *testing.T) {
		changed := clone(files)
		changed["records/extra.txt"] = []byte("hello")
		failsNaming(t, svc, rezip(t, changed), "records/extra.txt")
	})
	t.Run("drop a population row", func(t *testing.T) {
		changed := clone(files)
		lines := strings.SplitAfter(string(changed["population.csv"]), "\r\n")
		changed["population.csv"] = []byte(strings.Join(append(lines[:3:3], lines[4:]...), ""))
		failsNaming(t, svc, rezip(t, changed), "population.csv")
	})
	t.Run("a record swapped in from another sample", func(t *testing.T) {
		other, err := svc.Sample(t.Context(), audit.SampleRequest{Query: january, Size: 3, Seed: "another"})
		if err != nil {
			t.Fatal(err)
		}
		theirs := unzip(t, other)
		changed := clone(files)
		mine, foreign := recordDirs(files), recordDirs(theirs)
		var swap string
		for _, d := range foreign {
			if !slices.Contains(mine, d) {
				swap = d
				break
			}
		}
		if swap == "" {
			t.Skip("the two samples share every record")
		}
		for name, data := range theirs {
			if strings.HasPrefix(name, swap) {
				changed[name] = data
			}
		}
		failsNaming(t, svc, rezip(t, changed), swap+"envelope.dsse.json")
	})
}

func recordDirs(files map[string][]byte) []string {
	var dirs []string
	for name := range files {
		if d, ok := strings.CutSuffix(name, "envelope.dsse.json"); ok {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs
}

func clone(m map[string][]byte) map[string][]byte {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = slices.Clone(v)
	}
	return c
}

func flipByte(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) == 0 {
		return []byte{'x'}
	}
	b[len(b)/2] ^= 0x01
	return b
}

func TestBrokenArchives(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	pkg, err := svc.Sample(t.Context(), audit.SampleRequest{Query: january, Size: 2, Seed: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"truncated": pkg[:len(pkg)/2],
		"not a zip": []byte("hello, auditor"),
		"escaping path": func() []byte {
			f := unzip(t, pkg)
			f["../evil.txt"] = []byte("x")
			return rezip(t, f)
		}(),
	} {
		_, err := audit.VerifyPackage(bytes.NewReader(data), int64(len(data)), audit.TrustedKey{})
		var pe *audit.PackageError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a package error", name, err)
		}
	}
	other := newLedger(t, merge(1, "x"))
	_, err = audit.VerifyPackage(bytes.NewReader(pkg), int64(len(pkg)), audit.TrustedKey{Fingerprint: strings.Repeat("ab", 32)})
	var pe *audit.PackageError
	if !errors.As(err, &pe) || pe.File != "pubkey.pem" {
		t.Errorf("a foreign fingerprint: %v", err)
	}
	_ = other
}

// TestRepackedWithDirectories: a package unpacked and packed again by a
// zip tool, which adds directory entries, still verifies, and an edit made
// on the way is named.
func TestRepackedWithDirectories(t *testing.T) {
	t.Parallel()
	svc := fixture(t)
	pkg, err := svc.Sample(t.Context(), audit.SampleRequest{Query: january, Size: 2, Seed: "dirs"})
	if err != nil {
		t.Fatal(err)
	}
	files := unzip(t, pkg)
	withDirs := clone(files)
	for name := range files {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			withDirs[dir+"/"] = nil
		}
	}
	data := rezip(t, withDirs)
	if _, err := audit.VerifyPackage(bytes.NewReader(data), int64(len(data)), audit.TrustedKey{Public: svc.Public()}); err != nil {
		t.Errorf("repacked with directories: %v", err)
	}
	withDirs["population.csv"] = flipByte(withDirs["population.csv"])
	failsNaming(t, svc, rezip(t, withDirs), "population.csv")
}
