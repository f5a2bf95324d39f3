package audit

import (
	"archive/zip"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"time"
)

// packageZip writes a package as it is built, deterministically: files in
// the order written, one fixed time, and the SHA-256 of each kept for the
// manifest. The population is streamed into it, so a package never holds
// a month of rows uncompressed.
type packageZip struct {
	zw   *zip.Writer
	at   time.Time
	sums map[string]string
	size map[string]int
}

func newPackageZip(w io.Writer, at time.Time) (*packageZip, error) {
	z := &packageZip{at: at.UTC().Truncate(2 * time.Second), sums: map[string]string{}, size: map[string]int{}}
	z.zw = zip.NewWriter(w)
	// One compressor serves every file: a new one per file costs a
	// megabyte of state, and a package has hundreds of files. Speed over
	// size: the population compresses well at any level.
	fw, err := flate.NewWriter(nil, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	z.zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		fw.Reset(w)
		return fw, nil
	})
	return z, nil
}

// stream writes one file with what write produces.
func (z *packageZip) stream(name string, write func(io.Writer) error) error {
	method := zip.Deflate
	if name == fileLeaves {
		method = zip.Store // hashes do not compress
	}
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: z.at})
	if err != nil {
		return err
	}
	h := &hashingWriter{w: w, h: sha256.New()}
	if err := write(h); err != nil {
		return err
	}
	z.sums[name], z.size[name] = hex.EncodeToString(h.sum()), h.n
	return nil
}

// add writes one file.
func (z *packageZip) add(name string, data []byte) error {
	return z.stream(name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// addAll writes files in name order.
func (z *packageZip) addAll(files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := z.add(n, files[n]); err != nil {
			return err
		}
	}
	return nil
}

func (z *packageZip) close() error { return z.zw.Close() }
