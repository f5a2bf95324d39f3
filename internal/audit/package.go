package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/changegate/changegate/internal/evidence"
)

// The files of an evidence package.
const (
	fileManifest        = "manifest.json"
	fileManifestDSSE    = "manifest.json.dsse"
	fileVerify          = "VERIFY.txt"
	fileCheckpoint      = "checkpoint.note"
	filePubkey          = "pubkey.pem"
	fileLeaves          = "leaves.bin"
	filePopulation      = "population.csv"
	filePopManifest     = "population.manifest.json"
	filePopManifestDSSE = "population.manifest.json.dsse"
)

// Files of each record, under recordDir.
const (
	fileEnvelope = "envelope.dsse.json"
	fileRecord   = "record.json"
	fileHTML     = "record.html"
	fileProof    = "inclusion-proof.json"
)

func recordDir(p Pick) string { return fmt.Sprintf("records/%012d-%s/", p.Seq, p.ID) }

// PackageManifest is an evidence package's manifest.json: what it holds,
// how the sample was drawn, and the SHA-256 of every other file.
type PackageManifest struct {
	Type        string            `json:"_type"`
	Kind        string            `json:"kind"` // sample or export
	Query       *QueryManifest    `json:"query,omitempty"`
	Selection   *Selection        `json:"selection,omitempty"`
	GeneratedAt string            `json:"generated_at"`
	Counts      PackageCounts     `json:"counts"`
	Checkpoint  CheckpointJSON    `json:"checkpoint"`
	PublicKey   PublicKeyJSON     `json:"public_key"`
	Sample      []Pick            `json:"sample"`
	Files       map[string]string `json:"files"` // name → SHA-256 hex
}

// PackageCounts are a package's figures.
type PackageCounts struct {
	Population      int            `json:"population"`
	Sampled         int            `json:"sampled"`
	ExceptionsAdded int            `json:"exceptions_added"`
	ByType          map[string]int `json:"by_type"`
}

// Sample draws the sample req asks for and returns its evidence package, a
// zip. The same request at the same checkpoint gives the same bytes.
func (s *Service) Sample(ctx context.Context, req SampleRequest) ([]byte, error) {
	var b bytes.Buffer
	if err := s.WriteSample(ctx, &b, req); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteSample is Sample writing the package to w as it is built. On an
// error, what was written is no package: write to a file that is kept
// only on success.
func (s *Service) WriteSample(ctx context.Context, w io.Writer, req SampleRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	cp, err := s.pinned(ctx, req.CheckpointSize)
	if err != nil {
		return err
	}
	z, err := newPackageZip(w, cp.AsOf)
	if err != nil {
		return err
	}
	// The tree, for the proofs, is built on the other core while the
	// population streams.
	tree := s.treeLater(ctx, cp)
	pop, err := s.streamPopulation(ctx, req.Query, cp, z)
	if err != nil {
		return err
	}
	sel, err := selection(req, cp.Root, len(pop.entries))
	if err != nil {
		return err
	}
	key, _ := hex.DecodeString(sel.Key)
	picks := Draw(pop.entries, key, sel.Size, req.IncludeExceptions)
	for _, p := range picks {
		row, err := s.rowOf(ctx, p.ID, cp)
		if err != nil {
			return err
		}
		pop.rows[row.Seq] = &row
	}
	qm := queryManifest(req.Query)
	m := &PackageManifest{Kind: "sample", Query: &qm, Selection: &sel, Sample: picks}
	return s.buildPackage(ctx, m, pop, z, tree)
}

// treeLater builds cp's tree in the background; the function returned
// waits for it.
func (s *Service) treeLater(ctx context.Context, cp Checkpoint) func() (*evidence.Log, error) {
	type built struct {
		tree *evidence.Log
		err  error
	}
	done := make(chan built, 1)
	go func() {
		t, err := s.treeAt(ctx, cp)
		done <- built{t, err}
	}()
	return func() (*evidence.Log, error) {
		b := <-done
		return b.tree, b.err
	}
}

// packagePopulation is the population a package holds: what a draw needs
// of each row, and the full rows of the records picked. Its CSV is the
// package's population file.
type packagePopulation struct {
	query   Query
	cp      Checkpoint
	counts  counts
	entries []Entry
	rows    map[uint64]*Row
}

// streamPopulation writes q's population at cp as the package's CSV,
// keeping only what a draw needs of each row: a month of a busy log is
// too many rows to hold whole.
func (s *Service) streamPopulation(ctx context.Context, q Query, cp Checkpoint, z *packageZip) (*packagePopulation, error) {
	pop := &packagePopulation{query: q, cp: cp, counts: newCounts(), rows: map[uint64]*Row{}}
	err := z.stream(filePopulation, func(w io.Writer) error {
		enc := newRowEncoder(w, "csv")
		err := s.eachRow(ctx, q, cp, false, func(r *Row) error {
			pop.counts.add(r)
			pop.entries = append(pop.entries, Entry{Seq: r.Seq, ID: r.ID, Exception: r.Exception != nil})
			return enc.row(r)
		})
		if err != nil {
			return err
		}
		return enc.close()
	})
	if err != nil {
		return nil, err
	}
	return pop, nil
}

// heldPopulation is a population held whole, as an export holds it; its
// CSV is written to z.
func heldPopulation(p *Population, z *packageZip) (*packagePopulation, error) {
	if err := z.stream(filePopulation, p.WriteCSV); err != nil {
		return nil, err
	}
	pop := &packagePopulation{query: p.Query, cp: p.Checkpoint, counts: p.Counts(), rows: map[uint64]*Row{}}
	for i := range p.Rows {
		r := &p.Rows[i]
		pop.entries = append(pop.entries, Entry{Seq: r.Seq, ID: r.ID, Exception: r.Exception != nil})
		pop.rows[r.Seq] = r
	}
	return pop, nil
}

// pinned is the checkpoint of exactly size records, or the latest.
func (s *Service) pinned(ctx context.Context, size uint64) (Checkpoint, error) {
	if size == 0 {
		return s.Latest(ctx)
	}
	cp, err := s.At(ctx, size)
	if err != nil {
		return Checkpoint{}, &FlagError{Flag: "checkpoint", Problem: err.Error()}
	}
	return cp, nil
}

// Export builds an evidence package of the records named, at the latest
// checkpoint. Its population file holds their rows.
func (s *Service) Export(ctx context.Context, ids []string) ([]byte, error) {
	var b bytes.Buffer
	if err := s.WriteExport(ctx, &b, ids); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteExport is Export writing the package to w.
func (s *Service) WriteExport(ctx context.Context, w io.Writer, ids []string) error {
	if len(ids) == 0 {
		return &FlagError{Flag: "id", Problem: "is required: name at least one record"}
	}
	cp, err := s.Latest(ctx)
	if err != nil {
		return err
	}
	p := &Population{Checkpoint: cp}
	var picks []Pick
	for _, id := range ids {
		row, err := s.rowOf(ctx, id, cp)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(picks, func(p Pick) bool { return p.ID == id }) {
			continue
		}
		p.Rows = append(p.Rows, row)
		picks = append(picks, Pick{Seq: row.Seq, ID: row.ID, Reason: "chosen"})
	}
	slices.SortFunc(p.Rows, func(a, b Row) int { return compareSeq(a.Seq, b.Seq) })
	z, err := newPackageZip(w, cp.AsOf)
	if err != nil {
		return err
	}
	pop, err := heldPopulation(p, z)
	if err != nil {
		return err
	}
	return s.buildPackage(ctx, &PackageManifest{Kind: "export", Sample: picks}, pop, z, s.treeLater(ctx, cp))
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rowOf is the population row of one record at cp.
func (s *Service) rowOf(ctx context.Context, id string, cp Checkpoint) (Row, error) {
	seq, ok, err := s.index.Lookup(ctx, id)
	if err != nil {
		return Row{}, err
	}
	if !ok || seq >= cp.Size {
		return Row{}, &NotFoundError{ID: id}
	}
	rec, err := s.record(ctx, seq)
	if err != nil {
		return Row{}, err
	}
	at := evidence.EventTime(rec)
	p, err := s.Population(ctx, Query{From: at, To: at.Add(time.Nanosecond), Repo: rec.Repo.String()}, cp)
	if err != nil {
		return Row{}, err
	}
	for _, r := range p.Rows {
		if r.Seq == seq {
			return r, nil
		}
	}
	return Row{}, fmt.Errorf("ledger index: record %d (%s) is not indexed at its event time", seq, id)
}

// NotFoundError names a record id the ledger does not hold.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("no record with id %q", e.ID) }

// buildPackage writes the package of m's picks from population p.
func (s *Service) buildPackage(ctx context.Context, m *PackageManifest, p *packagePopulation, z *packageZip, treeOf func() (*evidence.Log, error)) error {
	cp := p.cp
	tree, err := treeOf()
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	if err := s.addLog(files, z, cp, tree); err != nil {
		return err
	}
	if err := s.addPopulation(files, p, z); err != nil {
		return err
	}
	for _, pick := range m.Sample {
		if err := s.addRecord(ctx, files, pick, p.rows[pick.Seq], cp, tree); err != nil {
			return err
		}
	}
	files[fileVerify] = []byte(verifyText)

	pk, err := publicKeyJSON(s.Public())
	if err != nil {
		return err
	}
	m.Type, m.GeneratedAt, m.Checkpoint, m.PublicKey = PackageManifestType, evidence.FormatTime(cp.AsOf), cp.JSON(), pk
	m.Counts = PackageCounts{Population: len(p.entries), Sampled: len(m.Sample), ByType: p.counts}
	for _, pick := range m.Sample {
		if pick.Reason == "exception" {
			m.Counts.ExceptionsAdded++
		}
	}
	if err := z.addAll(files); err != nil {
		return err
	}
	m.Files = z.sums
	manifest, err := marshalManifest(m)
	if err != nil {
		return err
	}
	signed, err := s.sign(manifest)
	if err != nil {
		return err
	}
	if err := z.add(fileManifest, manifest); err != nil {
		return err
	}
	if err := z.add(fileManifestDSSE, signed); err != nil {
		return err
	}
	return z.close()
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// addLog adds the checkpoint, the key and the leaf hashes of the whole log
// up to it, which it writes at once, from the tree.
func (s *Service) addLog(files map[string][]byte, z *packageZip, cp Checkpoint, tree *evidence.Log) error {
	pem, err := evidence.PublicKeyPEM(s.Public())
	if err != nil {
		return err
	}
	files[filePubkey], files[fileCheckpoint] = pem, cp.Note
	return z.stream(fileLeaves, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		for i := range cp.Size {
			h, err := tree.LeafHashAt(i)
			if err != nil {
				return err
			}
			bw.Write(h)
		}
		return bw.Flush()
	})
}

// addPopulation adds the population file and its signed manifest.
func (s *Service) addPopulation(files map[string][]byte, p *packagePopulation, z *packageZip) error {
	sum, err := hex.DecodeString(z.sums[filePopulation])
	if err != nil {
		return err
	}
	pm, err := s.manifestOf(p.query, p.cp, len(p.entries), p.counts, sum, z.size[filePopulation], filePopulation, "csv")
	if err != nil {
		return err
	}
	if p.query.From.IsZero() {
		pm.Query = QueryManifest{Statement: "the records an export named"}
	}
	manifest, err := marshalManifest(pm)
	if err != nil {
		return err
	}
	signed, err := s.sign(manifest)
	if err != nil {
		return err
	}
	files[filePopManifest], files[filePopManifestDSSE] = manifest, signed
	return nil
}

// addRecord adds one picked record: its envelope as stored, the record
// readable, a printable page, and its inclusion proof.
func (s *Service) addRecord(ctx context.Context, files map[string][]byte, pick Pick, row *Row, cp Checkpoint, tree *evidence.Log) error {
	if row == nil {
		return fmt.Errorf("record %d (%s) is not a row of the population", pick.Seq, pick.ID)
	}
	view, err := s.view(ctx, *row, cp, tree)
	if err != nil {
		return err
	}
	readable, err := ReadableRecord(view.Envelope)
	if err != nil {
		return err
	}
	page, err := RecordHTML(view)
	if err != nil {
		return err
	}
	proof, err := json.MarshalIndent(view.Proof, "", "  ")
	if err != nil {
		return err
	}
	dir := recordDir(pick)
	files[dir+fileEnvelope] = view.Envelope
	files[dir+fileRecord] = readable
	files[dir+fileHTML] = page
	files[dir+fileProof] = append(proof, '\n')
	return nil
}

// view reads a row's record and proves it in cp's tree.
func (s *Service) view(ctx context.Context, row Row, cp Checkpoint, tree *evidence.Log) (*RecordView, error) {
	env, err := s.log.Envelope(ctx, row.Seq)
	if err != nil {
		return nil, err
	}
	rec, err := s.verifier.VerifyEnvelope(env)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", row.Seq, err)
	}
	if !bytes.Equal(evidence.LeafHash(env), row.LeafHash) || rec.ID != row.ID {
		return nil, fmt.Errorf("record %d: the index disagrees with the stored record: run changegate audit verify", row.Seq)
	}
	proof, err := proveInclusion(tree, row.Seq, cp)
	if err != nil {
		return nil, err
	}
	return &RecordView{Row: row, Envelope: env, Record: rec, Proof: proof, Checkpoint: cp}, nil
}

func proveInclusion(tree *evidence.Log, seq uint64, cp Checkpoint) (Proof, error) {
	hashes, err := tree.InclusionProof(seq, cp.Size)
	if err != nil {
		return Proof{}, fmt.Errorf("inclusion proof of %d in %d: %w", seq, cp.Size, err)
	}
	leaf, err := tree.LeafHashAt(seq)
	if err != nil {
		return Proof{}, err
	}
	p := Proof{Seq: seq, TreeSize: cp.Size, LeafHash: hex.EncodeToString(leaf), Root: hex.EncodeToString(cp.Root), Hashes: []string{}}
	for _, h := range hashes {
		p.Hashes = append(p.Hashes, hex.EncodeToString(h))
	}
	return p, nil
}

// ReadableRecord is the record an envelope signs, as indented JSON: the
// in-toto predicate, exactly as signed but for whitespace.
func ReadableRecord(envelope []byte) ([]byte, error) {
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("envelope payload: %w", err)
	}
	var st struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, st.Predicate, "", "  "); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
