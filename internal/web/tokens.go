package web

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
)

// TokenPrefix starts every auditor token, so that a leaked one is easy to
// recognise (and to scan for).
const TokenPrefix = "cgat_"

var tokenName = regexp.MustCompile(`^[A-Za-z0-9._@-]+$`)

// NewToken makes a token for name and returns it with the line to add to
// the token file. Only the line is stored; the token is shown once.
func NewToken(name string) (token, line string, err error) {
	if !tokenName.MatchString(name) {
		return "", "", fmt.Errorf("token name %q: use letters, digits and . _ @ -", name)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	h := hashToken(token)
	return token, name + " sha256:" + hex.EncodeToString(h[:]), nil
}

func hashToken(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// tokenEntry is one line of the token file.
type tokenEntry struct {
	name string
	hash [sha256.Size]byte
}

// ErrTokensUnavailable says the token file could not be read or parsed
// since it last changed: every token is refused until it is fixed.
var ErrTokensUnavailable = errors.New("auditor token file unreadable")

// Tokens are the auditor tokens of a token file. The file is checked on
// every use and read again when it changes, so that deleting a line
// revokes a token (and its sessions) without a restart. It is safe for
// concurrent use.
type Tokens struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	info    os.FileInfo // of the file the entries were read from; nil after a failed read
	entries []tokenEntry
	lastErr string // the last failed read's error, to log each failure once
}

// unchanged tells that the token file did not change without reading it.
// The mode counts, so that a chmod that makes the file unreadable is
// noticed too.
func unchanged(old, now os.FileInfo) bool {
	return old != nil && os.SameFile(old, now) && old.ModTime().Equal(now.ModTime()) &&
		old.Size() == now.Size() && old.Mode() == now.Mode()
}

// LoadTokens reads the token file at path. An unreadable or malformed
// file is an error naming the line: the server must not start with it.
func LoadTokens(path string, log *slog.Logger) (*Tokens, error) {
	info, entries, err := readTokens(path)
	if err != nil {
		return nil, err
	}
	return &Tokens{path: path, log: log, info: info, entries: entries}, nil
}

// current returns the entries of the file as it is now. A file that
// cannot be read or parsed revokes every token, and is read again on every
// use until it can be.
func (t *Tokens) current() ([]tokenEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now, err := os.Stat(t.path); err == nil && unchanged(t.info, now) {
		return t.entries, nil
	}
	info, entries, err := readTokens(t.path)
	if err != nil {
		if err.Error() != t.lastErr {
			t.log.Error("auditor token file unreadable: refusing every token", "path", t.path, "err", err)
		}
		t.info, t.entries, t.lastErr = nil, nil, err.Error()
		return nil, ErrTokensUnavailable
	}
	t.info, t.entries, t.lastErr = info, entries, ""
	t.log.Info("auditor tokens reloaded", "path", t.path, "tokens", len(entries))
	return entries, nil
}

// errUnauthorized is a missing, unknown or revoked token.
var errUnauthorized = errors.New("invalid or revoked auditor token")

// authenticate returns the entry whose hash is the token's.
func (t *Tokens) authenticate(token string) (tokenEntry, error) {
	entries, err := t.current()
	if err != nil {
		return tokenEntry{}, ErrTokensUnavailable
	}
	h := hashToken(token)
	return match(entries, func(e tokenEntry) bool { return subtle.ConstantTimeCompare(e.hash[:], h[:]) == 1 })
}

// match visits every entry, whatever matched, so that the time taken does
// not tell which entry (or how many) came close.
func match(entries []tokenEntry, ok func(tokenEntry) bool) (tokenEntry, error) {
	var found tokenEntry
	hit := false
	for _, e := range entries {
		if ok(e) && !hit {
			found, hit = e, true
		}
	}
	if !hit {
		return tokenEntry{}, errUnauthorized
	}
	return found, nil
}

// lookup returns the entry named name, for a session's check.
func (t *Tokens) lookup(name string) (tokenEntry, error) {
	entries, err := t.current()
	if err != nil {
		return tokenEntry{}, ErrTokensUnavailable
	}
	return match(entries, func(e tokenEntry) bool { return e.name == name })
}

// maxTokenFile bounds the token file: it lists people, not data.
const maxTokenFile = 1 << 20

func readTokens(path string) (os.FileInfo, []tokenEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("auditor tokens: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("auditor tokens: %w", err)
	}
	if info.Size() > maxTokenFile {
		return nil, nil, fmt.Errorf("auditor tokens %s: larger than %d bytes", path, maxTokenFile)
	}
	data := make([]byte, info.Size())
	if _, err := f.ReadAt(data, 0); err != nil && info.Size() > 0 {
		return nil, nil, fmt.Errorf("auditor tokens: %w", err)
	}
	entries, err := parseTokens(data)
	if err != nil {
		return nil, nil, fmt.Errorf("auditor tokens %s: %w", path, err)
	}
	return info, entries, nil
}

// parseTokens reads lines of "NAME sha256:HEX"; # starts a comment.
func parseTokens(data []byte) ([]tokenEntry, error) {
	var entries []tokenEntry
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		e, err := parseTokenLine(fields)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[e.name]; dup {
			return nil, fmt.Errorf("line %d: name %q already used on line %d", n, e.name, first)
		}
		seen[e.name] = n
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

func parseTokenLine(fields []string) (tokenEntry, error) {
	if len(fields) != 2 {
		return tokenEntry{}, errors.New(`want "NAME sha256:HEX"`)
	}
	name, hash := fields[0], fields[1]
	if !tokenName.MatchString(name) {
		return tokenEntry{}, fmt.Errorf("name %q: use letters, digits and . _ @ -", name)
	}
	hexHash, ok := strings.CutPrefix(hash, "sha256:")
	if !ok {
		return tokenEntry{}, fmt.Errorf("name %s: hash must start with sha256: (the file holds hashes, never tokens)", name)
	}
	b, err := hex.DecodeString(hexHash)
	if err != nil || len(b) != sha256.Size {
		return tokenEntry{}, fmt.Errorf("name %s: hash is not 64 hex digits", name)
	}
	e := tokenEntry{name: name}
	copy(e.hash[:], b)
	return e, nil
}
