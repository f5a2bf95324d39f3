// Package blob defines the write-once store that holds the exact signed bytes
// of each change record. Implementations: fs (a local directory) and s3 (S3
// with Object Lock). blobtest is the conformance suite both pass.
//
// A key, once written, never changes: Put of an existing key succeeds only
// when the bytes are identical (so a retried write is harmless) and otherwise
// fails with ErrExists. Stores verify nothing about the content; the ledger
// rehashes what Get returns.
package blob

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound: no blob has that key.
	ErrNotFound = errors.New("blob: not found")
	// ErrExists: the key already holds different bytes. The stored bytes are
	// unchanged.
	ErrExists = errors.New("blob: key exists with different content")
	// ErrInvalidKey: the key or list prefix breaks the rules of ValidKey.
	ErrInvalidKey = errors.New("blob: invalid key")
)

// Store is a write-once key/value store of exact bytes.
type Store interface {
	// Put stores data under key unless key exists. Putting the same bytes
	// again returns nil; different bytes return ErrExists.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the bytes stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// List calls fn for every key that starts with prefix, in ascending byte
	// order. An error from fn stops the listing and is returned as is.
	List(ctx context.Context, prefix string, fn func(key string) error) error
}

// Limits on keys. A segment becomes a file name in fs (255 bytes on common
// file systems); the whole key stays well under S3's 1024 bytes, leaving room
// for a bucket prefix.
const (
	MaxKeyLen     = 512
	MaxSegmentLen = 255
)

// ValidKey reports whether key may name a blob, wrapping ErrInvalidKey if not.
//
// A key is one or more segments joined by "/". A segment is 1 to 255 bytes of
// [A-Za-z0-9._-] and does not start with "." (which rules out "." and "..",
// and keeps the fs store's temporary files out of the key space). So a key
// never starts or ends with "/", never holds "//", and cannot escape a root
// directory or prefix.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := validSegment(seg); err != nil {
			return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, err)
		}
	}
	return nil
}

// ValidPrefix reports whether prefix may be passed to List: it is empty, or a
// valid key optionally followed by "/" (a partial last segment is fine, as in
// "records/0000").
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

func validSegment(seg string) error {
	switch {
	case seg == "":
		return errors.New("empty segment (leading, trailing or double slash)")
	case len(seg) > MaxSegmentLen:
		return fmt.Errorf("segment longer than %d bytes", MaxSegmentLen)
	case seg[0] == '.':
		return errors.New(`segment starts with "."`)
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("byte %q not allowed (use [A-Za-z0-9._-] and /)", c)
		}
	}
	return nil
}

// Entry is one blob of a PutAll.
type Entry struct {
	Key  string
	Data []byte
}

// Batcher is a Store that can store several blobs for about the price of
// one, which is what lets the ledger commit a group of records with one
// round of syncs.
type Batcher interface {
	// PutAll stores each entry as Put would, in order. When it returns nil
	// every entry is durable. When it fails, the entries stored are a prefix
	// of entries: an entry is never stored while one before it is not, also
	// across a crash.
	PutAll(ctx context.Context, entries []Entry) error
}

// PutAll stores entries in order: with the store's own PutAll when it is a
// Batcher, or else one Put after another, which keeps the same prefix rule.
func PutAll(ctx context.Context, s Store, entries []Entry) error {
	if b, ok := s.(Batcher); ok {
		return b.PutAll(ctx, entries)
	}
	for _, e := range entries {
		if err := s.Put(ctx, e.Key, e.Data); err != nil {
			return err
		}
	}
	return nil
}
