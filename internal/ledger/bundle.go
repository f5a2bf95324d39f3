package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/evidence"
)

// Records are stored in bundles, one blob per commit: the envelopes of the
// records first..last, in order, each followed by a newline. Canonical JSON
// has no raw newline, so each line is exactly the signed bytes of one
// envelope, the leaf of the log. A commit of one record is a bundle of one.
// Storing a burst of records as one blob is what lets the ledger keep up
// with many archive jobs at once: each blob costs the store a file or an
// object, and verify a read. Transparency logs store their entries the same
// way (Tessera's entry bundles).

// bundleSuffix ends every bundle key.
const bundleSuffix = ".dsse.jsonl"

// BundleKey is where the records first..last (inclusive) are stored.
func BundleKey(first, last uint64) string {
	return fmt.Sprintf("%s%012d-%012d%s", RecordPrefix, first, last, bundleSuffix)
}

// ParseBundleKey returns the sequence numbers of the first and last record
// in a bundle key.
func ParseBundleKey(key string) (first, last uint64, err error) {
	rest, ok := strings.CutPrefix(key, RecordPrefix)
	if ok {
		rest, ok = strings.CutSuffix(rest, bundleSuffix)
	}
	a, b, cut := strings.Cut(rest, "-")
	if !ok || !cut || len(a) != 12 || len(b) != 12 {
		return 0, 0, fmt.Errorf("record key %q: want %s<12-digit first>-<12-digit last>%s", key, RecordPrefix, bundleSuffix)
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || last < first {
		return 0, 0, fmt.Errorf("record key %q: bad sequence numbers", key)
	}
	return first, last, nil
}

// Bundle joins envelopes into the bytes of a bundle.
func Bundle(envelopes [][]byte) []byte {
	n := 0
	for _, e := range envelopes {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	for _, e := range envelopes {
		b = append(append(b, e...), '\n')
	}
	return b
}

// SplitBundle returns the lines of a bundle, as subslices of data. It reads
// what is there, damaged or not: a last line without its newline is
// returned too, for the verifier to judge.
func SplitBundle(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		lines = append(lines, line)
		data = rest
	}
	return lines
}

// bundleRef is a bundle's key and the records it holds.
type bundleRef struct {
	key         string
	first, last uint64
}

func (b bundleRef) count() int { return int(b.last - b.first + 1) }

// listBundles lists the record bundles in key order, which is log order.
func listBundles(ctx context.Context, blobs blob.Store) ([]bundleRef, error) {
	var refs []bundleRef
	err := blobs.List(ctx, RecordPrefix, func(k string) error {
		first, last, err := ParseBundleKey(k)
		if err != nil {
			return err
		}
		refs = append(refs, bundleRef{key: k, first: first, last: last})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	return refs, nil
}

// readBundle reads a bundle that must hold exactly the records its key
// names, as the ledger wrote it.
func readBundle(ctx context.Context, blobs blob.Store, b bundleRef) ([][]byte, error) {
	data, err := blobs.Get(ctx, b.key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.key, err)
	}
	lines := SplitBundle(data)
	if len(lines) != b.count() || !bytes.HasSuffix(data, []byte{'\n'}) {
		return nil, fmt.Errorf("ledger: %s holds %d lines, its key names %d records; run changegate audit verify", b.key, len(lines), b.count())
	}
	return lines, nil
}

// contiguous checks that the bundles hold the records 0, 1, 2… with no gap
// or overlap.
func contiguous(refs []bundleRef) error {
	var next uint64
	for _, b := range refs {
		if b.first != next {
			return fmt.Errorf("ledger: record %d is missing (found %s next)", next, b.key)
		}
		next = b.last + 1
	}
	return nil
}

// eachRecord calls fn with each record from..end-1 in order, read from the
// bundles that hold them, once its signature is checked: no record the
// ledger adopts or indexes goes unchecked.
func eachRecord(ctx context.Context, blobs blob.Store, v *evidence.Verifier, refs []bundleRef, from, end uint64,
	fn func(seq uint64, env []byte, rec *evidence.Record) error) error {
	for _, b := range refs {
		if b.last < from || b.first >= end {
			continue
		}
		envs, err := readBundle(ctx, blobs, b)
		if err != nil {
			return err
		}
		for i, env := range envs {
			seq := b.first + uint64(i)
			if seq < from || seq >= end {
				continue
			}
			rec, err := v.VerifyEnvelope(env)
			if err != nil {
				return fmt.Errorf("ledger: record %d (%s): %w", seq, b.key, err)
			}
			if err := fn(seq, env, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexRecords indexes the records from..end-1, checked as eachRecord
// checks them, in transactions of up to maxBatch rows. It returns the
// sequence number after the last record indexed.
func indexRecords(ctx context.Context, blobs blob.Store, v *evidence.Verifier, refs []bundleRef, index Index, from, end uint64) (uint64, error) {
	next := from
	var rows []evidence.IndexEntry
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if err := index.Put(ctx, rows); err != nil {
			return err
		}
		next = rows[len(rows)-1].Seq + 1
		rows = rows[:0]
		return nil
	}
	err := eachRecord(ctx, blobs, v, refs, from, end, func(seq uint64, env []byte, rec *evidence.Record) error {
		rows = append(rows, evidence.IndexEntry{Seq: seq, LeafHash: hex.EncodeToString(evidence.LeafHash(env)), Fields: evidence.IndexFields(rec), Links: rec.Links})
		if len(rows) == maxBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return next, err
}
