package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/changegate/changegate/internal/evidence"
)

// FrequencySizes is the default sample size for how often a control runs.
// Firms' tables differ (a control that runs many times a day is sampled at
// 25 to 60); --size overrides it.
var FrequencySizes = map[string]int{
	"multiple":  25, // many times a day
	"daily":     25,
	"weekly":    5,
	"monthly":   2,
	"quarterly": 2,
	"annual":    1,
}

// Frequencies lists the frequencies, most frequent first.
var Frequencies = []string{"multiple", "daily", "weekly", "monthly", "quarterly", "annual"}

// Selection is how a sample was drawn, as its package states it.
type Selection struct {
	Method string `json:"method"`
	// SeedSource is "seed" (given by the auditor) or "auditor-nonce"
	// (SHA-256 of the checkpoint's root and the nonce).
	SeedSource string `json:"seed_source"`
	Seed       string `json:"seed,omitempty"`
	Nonce      string `json:"auditor_nonce,omitempty"`
	// Key is the HMAC key, in hex: the seed's UTF-8 bytes, or the
	// SHA-256 of the nonce's.
	Key               string `json:"key"`
	Frequency         string `json:"frequency,omitempty"`
	RequestedSize     int    `json:"requested_size"`
	Size              int    `json:"size"`
	IncludeExceptions bool   `json:"include_exceptions"`
}

// SelectionMethod names the algorithm, which VERIFY.txt spells out.
const SelectionMethod = "rank population records by HMAC-SHA256(key, record id), ascending; take the first size"

// Validate checks a sample request, naming the flag at fault.
func (r SampleRequest) Validate() error {
	if err := r.Query.Validate(); err != nil {
		return err
	}
	switch {
	case r.Size < 0:
		return &FlagError{Flag: "size", Problem: fmt.Sprintf("%d is negative", r.Size)}
	case r.Size == 0 && r.Frequency == "":
		return &FlagError{Flag: "size", Problem: "or --frequency is required (a size of 0 samples nothing)"}
	case r.Size != 0 && r.Frequency != "":
		return &FlagError{Flag: "size", Problem: "and --frequency are exclusive"}
	case r.Frequency != "" && FrequencySizes[r.Frequency] == 0:
		return &FlagError{Flag: "frequency", Problem: fmt.Sprintf("%q is not one of %s", r.Frequency, strings.Join(Frequencies, ", "))}
	case (r.Seed == "") == (r.Nonce == ""):
		return &FlagError{Flag: "seed", Problem: "or --auditor-nonce is required, and only one of them"}
	case r.Nonce != "" && r.CheckpointSize == 0:
		return &FlagError{Flag: "checkpoint", Problem: "is required with --auditor-nonce: the size of the checkpoint in the population manifest you hold"}
	}
	return nil
}

// selection settles the key and size of a sample of p.
func selection(r SampleRequest, root []byte, n int) (Selection, error) {
	sel := Selection{Method: SelectionMethod, Frequency: r.Frequency, RequestedSize: r.Size, IncludeExceptions: r.IncludeExceptions}
	if r.Nonce != "" {
		sel.SeedSource, sel.Nonce = "auditor-nonce", r.Nonce
		sel.Key = hex.EncodeToString(NonceKey(root, r.Nonce))
	} else {
		sel.SeedSource, sel.Seed = "seed", r.Seed
		sel.Key = hex.EncodeToString([]byte(r.Seed))
	}
	switch {
	case r.Size > n:
		return sel, &FlagError{Flag: "size", Problem: fmt.Sprintf("%d is larger than the population of %d records", r.Size, n)}
	case r.Size > 0:
		sel.Size = r.Size
	default:
		// A table size larger than the population samples all of it.
		sel.RequestedSize = FrequencySizes[r.Frequency]
		sel.Size = min(sel.RequestedSize, n)
	}
	return sel, nil
}

// NonceKey is the sample key of an auditor nonce: SHA-256(root ‖ nonce).
// The root is fixed by the log before the auditor picks the nonce, so
// neither side can steer the sample.
func NonceKey(root []byte, nonce string) []byte {
	h := sha256.New()
	h.Write(root)
	h.Write([]byte(nonce))
	return h.Sum(nil)
}

// Score is a record's rank key in a sample: HMAC-SHA256(key, id).
func Score(key []byte, id string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return m.Sum(nil)
}

// Pick is one record of a sample.
type Pick struct {
	Seq uint64 `json:"seq"`
	ID  string `json:"id"`
	// Reason is "random" (drawn), "exception" (added by
	// include_exceptions) or "chosen" (an export of named records).
	Reason string `json:"reason"`
	Rank   int    `json:"rank,omitempty"`  // 1-based, random picks only
	Score  string `json:"score,omitempty"` // hex HMAC, random picks only
}

// Entry is what a draw needs of a population row.
type Entry struct {
	Seq       uint64
	ID        string
	Exception bool
}

// Draw ranks the population's records by score and takes the first size,
// then, with include_exceptions, adds every record with an exception that
// was not drawn, in population order. It is pure: the same population and
// key give the same picks.
func Draw(pop []Entry, key []byte, size int, includeExceptions bool) []Pick {
	type scored struct {
		e     *Entry
		score []byte
	}
	all := make([]scored, len(pop))
	for i := range pop {
		all[i] = scored{&pop[i], Score(key, pop[i].ID)}
	}
	slices.SortFunc(all, func(a, b scored) int { return bytes.Compare(a.score, b.score) })
	picks := make([]Pick, 0, size)
	drawn := map[string]bool{}
	for i, s := range all[:size] {
		picks = append(picks, Pick{Seq: s.e.Seq, ID: s.e.ID, Reason: "random", Rank: i + 1, Score: hex.EncodeToString(s.score)})
		drawn[s.e.ID] = true
	}
	if includeExceptions {
		for _, e := range pop {
			if e.Exception && !drawn[e.ID] {
				picks = append(picks, Pick{Seq: e.Seq, ID: e.ID, Reason: "exception"})
			}
		}
	}
	return picks
}

// CheckSample answers whether Sample would draw req at cp, without drawing
// it: the request is valid and its size fits the population. The API
// checks a request this way before it hands out the sample's id.
func (s *Service) CheckSample(ctx context.Context, req SampleRequest, cp Checkpoint) error {
	if err := req.Validate(); err != nil {
		return err
	}
	n, err := s.count(ctx, req.Query, cp)
	if err != nil {
		return err
	}
	_, err = selection(req, cp.Root, n)
	return err
}

// Count is how many rows q selects at cp.
func (s *Service) Count(ctx context.Context, q Query, cp Checkpoint) (int, error) {
	if err := q.Validate(); err != nil {
		return 0, err
	}
	return s.count(ctx, q, cp)
}

func (s *Service) count(ctx context.Context, q Query, cp Checkpoint) (int, error) {
	n := 0
	lq := evidence.Query{From: q.From, To: q.To, Repo: q.Repo, Types: q.Types, Size: cp.Size}
	err := s.index.Population(ctx, lq, func(evidence.PopulationRow) error { n++; return nil })
	return n, err
}

// Position is how many rows of q at cp come before sequence number seq:
// where a page that starts at seq begins.
func (s *Service) Position(ctx context.Context, q Query, cp Checkpoint, seq uint64) (int, error) {
	cp.Size = min(cp.Size, seq)
	return s.count(ctx, q, cp)
}
