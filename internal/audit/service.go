package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/changegate/changegate/internal/evidence"
)

// SampleRequest asks for a sample of a population and its package.
type SampleRequest struct {
	Query Query `json:"query"`
	// Size is the sample size; zero takes it from Frequency's table.
	Size      int    `json:"size,omitempty"`
	Frequency string `json:"frequency,omitempty"`
	// Exactly one of Seed and Nonce. With Nonce, the seed is
	// SHA-256(checkpoint root ‖ nonce), and CheckpointSize names the
	// checkpoint (from the population manifest the auditor holds).
	Seed              string `json:"seed,omitempty"`
	Nonce             string `json:"auditor_nonce,omitempty"`
	CheckpointSize    uint64 `json:"checkpoint,omitempty"`
	IncludeExceptions bool   `json:"include_exceptions,omitempty"`
}

// Proof is an inclusion proof of one record in a tree size.
type Proof struct {
	Seq      uint64   `json:"seq"`
	TreeSize uint64   `json:"tree_size"`
	LeafHash string   `json:"leaf_hash"` // hex
	Hashes   []string `json:"hashes"`    // hex, RFC 6962 audit path
	Root     string   `json:"root"`      // hex
}

// RecordView is one record with its evidence: the row, the signed
// envelope as stored, the record, and its inclusion proof.
type RecordView struct {
	Row        Row
	Envelope   []byte
	Record     *evidence.Record
	Proof      Proof
	Checkpoint Checkpoint
}

// Dashboard is the auditor's first page.
type Dashboard struct {
	Checkpoint Checkpoint
	// Months counts changes and compliant changes by month of event time,
	// oldest first (approvals after the fact are not changes).
	Months []MonthStat
	// Open lists the open and late exceptions of the whole log.
	Open []Row
}

// MonthStat is one month of the dashboard.
type MonthStat struct {
	Month     string // 2026-01
	Changes   int
	Compliant int
}

// Rate is the share of compliant changes, 0..1.
func (m MonthStat) Rate() float64 {
	if m.Changes == 0 {
		return 0
	}
	return float64(m.Compliant) / float64(m.Changes)
}

// Record returns one record with its evidence, at the latest checkpoint.
func (s *Service) Record(ctx context.Context, id string) (*RecordView, error) {
	cp, err := s.Latest(ctx)
	if err != nil {
		return nil, err
	}
	row, err := s.rowOf(ctx, id, cp)
	if err != nil {
		return nil, err
	}
	tree, err := s.treeAt(ctx, cp)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, row, cp, tree)
}

// Exception report states, besides the row states: every exception.
var ExceptionStates = []string{StateOpen, StateClosed, StateLate}

// Exceptions lists the rows with an exception whose event time is in the
// period, at the latest checkpoint: bypasses, direct pushes, emergency
// changes (with their due time and whether the approval came in time, as
// their state says), and deployments without a change record. state
// narrows it to open (open or late), late or closed; the records that
// closed others are listed only without a state.
func (s *Service) Exceptions(ctx context.Context, q Query, state string) (*Population, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if state != "" && !slices.Contains(ExceptionStates, state) {
		return nil, &FlagError{Flag: "state", Problem: fmt.Sprintf("%q is not one of open, closed, late", state)}
	}
	cp, err := s.Latest(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.population(ctx, q, cp, true)
	if err != nil || state == "" {
		return p, err
	}
	p.Rows = slices.DeleteFunc(p.Rows, func(r Row) bool {
		return !(r.ExceptionState == state || state == StateOpen && r.ExceptionState == StateLate)
	})
	return p, nil
}

// InclusionProof proves that the record at seq is in the tree of size,
// which must be the size of a checkpoint.
func (s *Service) InclusionProof(ctx context.Context, seq, size uint64) (Proof, error) {
	if seq >= size {
		return Proof{}, &FlagError{Flag: "seq", Problem: fmt.Sprintf("%d is not below size %d", seq, size)}
	}
	cp, err := s.pinned(ctx, size)
	if err != nil {
		return Proof{}, err
	}
	tree, err := s.treeAt(ctx, cp)
	if err != nil {
		return Proof{}, err
	}
	return proveInclusion(tree, seq, cp)
}

// ConsistencyProof proves that the tree of size to extends that of from;
// both must be sizes of checkpoints.
func (s *Service) ConsistencyProof(ctx context.Context, from, to uint64) ([]string, error) {
	if from == 0 || from > to {
		return nil, &FlagError{Flag: "from", Problem: fmt.Sprintf("%d must be at least 1 and at most --to %d", from, to)}
	}
	if _, err := s.pinned(ctx, from); err != nil {
		return nil, err
	}
	cp, err := s.pinned(ctx, to)
	if err != nil {
		return nil, &FlagError{Flag: "to", Problem: err.Error()}
	}
	tree, err := s.treeAt(ctx, cp)
	if err != nil {
		return nil, err
	}
	hashes, err := tree.ConsistencyProof(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = hex.EncodeToString(h)
	}
	return out, nil
}

// Stats is the index's counts by month, for the dashboard.
type Stats interface {
	Months(ctx context.Context, size uint64) ([]evidence.MonthCount, error)
}

// Dashboard summarises the log at the latest checkpoint.
func (s *Service) Dashboard(ctx context.Context) (*Dashboard, error) {
	cp, err := s.Latest(ctx)
	if err != nil {
		return nil, err
	}
	d := &Dashboard{Checkpoint: cp}
	if st, ok := s.index.(Stats); ok {
		counts, err := st.Months(ctx, cp.Size)
		if err != nil {
			return nil, err
		}
		d.Months = monthStats(counts)
	}
	all := Query{From: time.Unix(0, 0).UTC(), To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	p, err := s.population(ctx, all, cp, true)
	if err != nil {
		return nil, err
	}
	for _, r := range p.Rows {
		if r.ExceptionState == StateOpen || r.ExceptionState == StateLate {
			d.Open = append(d.Open, r)
		}
	}
	return d, nil
}

func monthStats(counts []evidence.MonthCount) []MonthStat {
	var out []MonthStat
	for _, c := range counts {
		if len(out) == 0 || out[len(out)-1].Month != c.Month {
			out = append(out, MonthStat{Month: c.Month})
		}
		m := &out[len(out)-1]
		m.Changes += c.Records
		m.Compliant += c.Compliant
	}
	return out
}

// Formats a population exports to.
var Formats = []string{"csv", "json", "xlsx"}

// ExportPopulation runs q at cp and returns the file in format (csv, json
// or xlsx) with its manifest, a DSSE envelope signed with the ledger key.
func (s *Service) ExportPopulation(ctx context.Context, q Query, cp Checkpoint, format string) (file, manifest []byte, err error) {
	var b chunks
	manifest, err = s.WritePopulation(ctx, &b, q, cp, format)
	if err != nil {
		return nil, nil, err
	}
	return b.bytes(), manifest, nil
}

// chunks collects a large output in pieces and joins them once: a month
// of population grown in one buffer is copied over and over as it doubles.
type chunks struct {
	parts [][]byte
	n     int
}

const chunkSize = 1 << 20

func (c *chunks) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(c.parts) == 0 || len(c.parts[len(c.parts)-1]) == chunkSize {
			c.parts = append(c.parts, make([]byte, 0, chunkSize))
		}
		last := &c.parts[len(c.parts)-1]
		k := min(len(p), chunkSize-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
	c.n += n
	return n, nil
}

func (c *chunks) bytes() []byte {
	out := make([]byte, 0, c.n)
	for _, p := range c.parts {
		out = append(out, p...)
	}
	return out
}

// WritePopulation writes what ExportPopulation returns to w, streaming,
// and returns the manifest.
func (s *Service) WritePopulation(ctx context.Context, w io.Writer, q Query, cp Checkpoint, format string) ([]byte, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if !slices.Contains(Formats, format) {
		return nil, &FlagError{Flag: "format", Problem: fmt.Sprintf("%q is not one of csv, json, xlsx", format)}
	}
	h := &hashingWriter{w: w, h: sha256.New()}
	rows, c, err := s.writePopulation(ctx, h, q, cp, format)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", format, err)
	}
	pm, err := s.manifestOf(q, cp, rows, c, h.sum(), h.n, PopulationFileName(q, format), format)
	if err != nil {
		return nil, err
	}
	doc, err := marshalManifest(pm)
	if err != nil {
		return nil, err
	}
	return s.sign(doc)
}

// hashingWriter hashes and counts what it writes.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += n
	return n, err
}

func (hw *hashingWriter) sum() []byte { return hw.h.Sum(nil) }

// PopulationFileName is the file name an export of q suggests.
func PopulationFileName(q Query, format string) string {
	return fmt.Sprintf("population-%s-%s.%s", q.From.UTC().Format("20060102"), q.To.UTC().Format("20060102"), format)
}

// writePopulation writes the population as format, streaming CSV and JSON
// row by row, and returns the row count and the counts by type.
func (s *Service) writePopulation(ctx context.Context, w io.Writer, q Query, cp Checkpoint, format string) (int, counts, error) {
	if format == "xlsx" {
		p, err := s.Population(ctx, q, cp)
		if err != nil {
			return 0, nil, err
		}
		return len(p.Rows), p.Counts(), p.WriteXLSX(w)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := newRowEncoder(bw, format)
	c, n := newCounts(), 0
	err := s.eachRow(ctx, q, cp, false, func(r *Row) error {
		c.add(r)
		n++
		return enc.row(r)
	})
	if err != nil {
		return 0, nil, err
	}
	if err := enc.close(); err != nil {
		return 0, nil, err
	}
	return n, c, bw.Flush()
}
