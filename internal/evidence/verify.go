package evidence

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// StoredRecord is one record as storage holds it.
type StoredRecord struct {
	Seq int64
	// Envelope is the stored DSSE envelope. Verify copies what it keeps, so
	// the source may reuse the buffer once the iterator resumes.
	Envelope []byte
	// Missing says the log has this sequence number but its blob is gone.
	Missing bool
}

// StoredCheckpoint is one signed checkpoint as storage holds it.
type StoredCheckpoint struct {
	Size uint64
	// Data is the signed note. Verify copies what it keeps, so the source
	// may reuse the buffer once the iterator resumes.
	Data []byte
}

// FieldLeafHash names an index row's copy of its record's leaf hash, in
// hex. It is optional in an IndexRow; when present, Verify compares it too.
const FieldLeafHash = "leaf_hash"

// IndexRow is one row of the index: the record's queryable fields as
// strings, under the Field* names. Other keys are ignored.
type IndexRow struct {
	Seq    int64
	Fields map[string]string
}

// Source is what Verify reads. Each iterator yields in ascending order:
// records by sequence number, checkpoints by size (in the order they were
// published), index rows by sequence number. An error from an iterator
// aborts verification with that error.
type Source interface {
	Records() iter.Seq2[StoredRecord, error]
	Checkpoints() iter.Seq2[StoredCheckpoint, error]
	IndexRows() iter.Seq2[IndexRow, error]
}

// Report summarises a ledger that verified.
type Report struct {
	// Since is the size of the trusted checkpoint an incremental verify
	// started from; 0 for a full verify.
	Since uint64
	// Records is how many records were checked: those after Since.
	Records     int64
	Checkpoints int64
	// Size and Root are the tree rebuilt from the stored envelopes.
	Size uint64
	Root []byte
	// LatestCheckpoint is the size of the last checkpoint; records after it
	// are not yet covered by a signed checkpoint.
	LatestCheckpoint uint64
	// Checkpoint is the latest checkpoint's signed note (nil when no
	// checkpoint after Since was read): what a later VerifySince can start
	// from.
	Checkpoint    []byte
	FirstObserved time.Time
	LastObserved  time.Time
}

// VerifyError names the first bad record and what is wrong with it. For a
// problem with a checkpoint, Seq is the last record the checkpoint covers,
// or the first record after the last good checkpoint when the roots differ.
type VerifyError struct {
	Seq      int64
	RecordID string
	Problem  string
}

func (e *VerifyError) Error() string {
	if e.RecordID == "" {
		return fmt.Sprintf("record %d: %s", e.Seq, e.Problem)
	}
	return fmt.Sprintf("record %d (%s): %s", e.Seq, e.RecordID, e.Problem)
}

// Ranks order problems found at the same sequence number: the more basic
// fault is the one worth naming (a flipped byte also breaks the root, but
// "signature not valid" says where to look).
const (
	rankMissing = iota
	rankRecord
	rankCheckpointSig
	rankCheckpoint
	rankDuplicate
	rankIndex
)

type problem struct {
	seq  int64
	rank int
	text string
	// last is set for a problem somewhere in the records seq..last, such
	// as a root that differs from a checkpoint covering several records. A
	// problem named at one record of that range is more precise, and wins.
	last int64
	// Whatever is at hand to name the record; see name.
	id  string
	env []byte
	row map[string]string
}

// Verify checks a ledger offline: it rehashes every stored envelope and
// rebuilds the Merkle root, verifies every DSSE signature and every
// checkpoint signature against pub (checkpoints for the log named origin),
// checks each checkpoint's root against the rebuilt tree and its consistency
// with the one before, and compares every index row with its record.
//
// A ledger with a fault gives a *VerifyError naming the first bad record.
// Any other error is the source failing to read.
//
// Signatures, of envelopes and checkpoints alike, are checked in batches
// of hundreds with curve25519-voi's batch verification, several times
// cheaper per signature than crypto/ed25519.Verify. Batch
// verification uses the cofactored equation (RFC 8032 §5.1.7, FIPS 186-5),
// so a signature that passes it is valid under cofactored semantics, where
// crypto/ed25519 checks the cofactorless one; the two differ only on
// signatures with a small-order component, which no honest signer makes.
// That torsion malleability cannot change any signed content, and any
// change to stored bytes still changes the leaf hash and breaks the root.
// When a batch fails, every signature of its chunk is checked again with
// crypto/ed25519, so the first bad record is named, with the same problem
// as VerifyEnvelope and VerifyCheckpoint would give.
func Verify(src Source, pub ed25519.PublicKey, origin string) (*Report, error) {
	r, err := newRun(pub, origin)
	if err != nil {
		return nil, err
	}
	return r.verify(src, NewLog())
}

// newRun is a verification run with pub's verifiers.
func newRun(pub ed25519.PublicKey, origin string) (*run, error) {
	v, err := NewVerifier(pub)
	if err != nil {
		return nil, err
	}
	nv, err := NoteVerifier(origin, pub)
	if err != nil {
		return nil, err
	}
	// A key that is not a point on the curve cannot be expanded: then no
	// batch is made, and crypto/ed25519 rejects every signature.
	key, _ := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	r := &run{v: v, nv: nv, key: key, origin: origin, ids: make(map[[16]byte]int64)}
	r.minSeq.Store(math.MaxInt64)
	return r, nil
}

type run struct {
	v      *Verifier
	nv     note.Verifier
	key    *voi.ExpandedPublicKey // nil if pub is not a valid point
	origin string

	// minSeq is the lowest sequence with a problem so far: work beyond it
	// cannot change the answer, so it is skipped.
	minSeq atomic.Int64

	mu         sync.Mutex
	first      *problem
	rng        *problem           // the first problem spanning several records
	ids        map[[16]byte]int64 // truncated SHA-256 of id → seq, for duplicates
	exceptions []exceptionSeen
	firstObs   time.Time
	lastObs    time.Time

	// since is set for an incremental verify; see VerifySince.
	since    *Since
	priorErr error // the first error of since.Prior
}

type exceptionSeen struct {
	seq      int64
	id       [16]byte
	closes   string
	state    string // the record's own: open or closing
	row      map[string]string
	hasRow   bool
	recordID string
}

// job is one signature to check, with what to check once it is known to be
// valid.
type job struct {
	seq int64
	// A record, with its leaf hash and index row…
	env    []byte
	leaf   []byte
	row    map[string]string
	hasRow bool
	// …or a checkpoint to check the signature of.
	checkpoint []byte
}

// chunkSize is how many jobs the walker hands a worker at once, and so the
// largest batch of signatures. Batch verification costs less per signature
// the larger the batch, but little less beyond a few hundred; every chunk
// in flight holds its envelopes, a megabyte or more; and a bad signature
// makes its whole chunk be checked again one by one.
const chunkSize = 512

func (r *run) report(p problem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.last > p.seq {
		if r.rng == nil || p.seq < r.rng.seq {
			r.rng = &p
		}
		// The records of the range are still checked, to name the one.
		r.lowerMinSeq(p.last)
		return
	}
	if r.first == nil || p.seq < r.first.seq || (p.seq == r.first.seq && p.rank < r.first.rank) {
		r.first = &p
	}
	r.lowerMinSeq(p.seq)
}

func (r *run) lowerMinSeq(seq int64) {
	if seq < r.minSeq.Load() {
		r.minSeq.Store(seq)
	}
}

// firstProblem is the problem to name: the first by sequence number. A
// record that is missing or not validly signed beats a problem spanning it,
// because it says which record changed; an index row that disagrees does
// not, because a record moved within the range makes its row disagree too.
func (r *run) firstProblem() *problem {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, g := r.first, r.rng
	if g != nil && (f == nil || f.seq > g.last || (f.seq >= g.seq && f.rank > rankRecord)) {
		return g
	}
	return f
}

// verify checks the records of src from the end of tree on: all of them
// for a full verify, where tree is empty.
func (r *run) verify(src Source, tree *Log) (*Report, error) {
	start := tree.Size()
	workers := runtime.GOMAXPROCS(0)
	// Chunks in flight: one queued and one in hand per worker, one filling.
	chunks := make(chan []job, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := checker{run: r, batch: voi.NewBatchVerifierWithCapacity(chunkSize)}
			for jobs := range chunks {
				c.check(jobs)
			}
		})
	}
	w := walker{run: r, chunks: chunks, tree: tree}
	if r.since != nil {
		w.prev, w.lastGood = &r.since.Checkpoint, start
	}
	readErr := w.walk(src)
	w.flush()
	close(chunks)
	wg.Wait()
	// Once a problem is found, workers skip records after it, so a record
	// closing an exception may not have been read.
	r.checkExceptions(w.complete && r.minSeq.Load() == math.MaxInt64)

	if p := r.firstProblem(); p != nil {
		return nil, &VerifyError{Seq: p.seq, RecordID: p.name(), Problem: p.text}
	}
	if readErr == nil {
		readErr = r.priorErr
	}
	if readErr != nil {
		return nil, readErr
	}
	root, err := w.tree.Root(w.tree.Size())
	if err != nil {
		return nil, err
	}
	return &Report{
		Since:            start,
		Checkpoint:       w.lastNote,
		Records:          int64(w.tree.Size() - start),
		Checkpoints:      w.checkpoints,
		Size:             w.tree.Size(),
		Root:             root,
		LatestCheckpoint: w.lastGood,
		FirstObserved:    r.firstObs,
		LastObserved:     r.lastObs,
	}, nil
}

// walker is the sequential part of Verify: it reads the three streams in
// step, rebuilds the tree and checks checkpoints against it, and hands
// signatures and index rows to the workers.
type walker struct {
	*run
	chunks chan<- []job
	chunk  []job // filling
	tree   *Log

	nextCP  func() (StoredCheckpoint, error, bool)
	cp      StoredCheckpoint
	haveCP  bool
	nextRow func() (IndexRow, error, bool)
	row     IndexRow
	haveRow bool

	checkpoints int64
	prev        *log.Checkpoint // last checkpoint whose root matched
	lastGood    uint64          // its size
	lastNote    []byte          // its signed note
	afterGood   []byte          // envelope of record lastGood, to name it
	complete    bool            // every stored record was read
}

func (w *walker) walk(src Source) error {
	var stopCP, stopRow func()
	w.nextCP, stopCP = iter.Pull2(src.Checkpoints())
	defer stopCP()
	w.nextRow, stopRow = iter.Pull2(src.IndexRows())
	defer stopRow()
	if err := w.advanceCP(); err != nil {
		return err
	}
	if err := w.advanceRow(); err != nil {
		return err
	}
	stop, err := w.checkCheckpoints(nil)
	if stop || err != nil {
		return err
	}

	expected := int64(w.tree.Size())
	for rec, err := range src.Records() {
		if err != nil {
			return fmt.Errorf("read record %d: %w", expected, err)
		}
		if expected > w.minSeq.Load() {
			return nil
		}
		if rec.Seq != expected || rec.Missing {
			row, _, err := w.rowAt(expected)
			if err != nil {
				return err
			}
			text := "record is missing from the blob store"
			switch {
			case rec.Seq > expected:
				text = fmt.Sprintf("record is missing: the stored records skip from %d to %d", expected-1, rec.Seq)
			case rec.Seq < expected:
				text = fmt.Sprintf("stored records are out of sequence: %d follows %d", rec.Seq, expected-1)
			}
			w.report(problem{seq: expected, rank: rankMissing, text: text, row: row})
			return nil
		}
		env := bytes.Clone(rec.Envelope)
		leaf := LeafHash(env)
		if _, err := w.tree.AppendLeafHash(leaf); err != nil {
			return err
		}
		if uint64(expected) == w.lastGood {
			w.afterGood = env
		}
		row, hasRow, err := w.rowAt(expected)
		if err != nil {
			return err
		}
		w.send(job{seq: expected, env: env, leaf: leaf, row: row, hasRow: hasRow})
		expected++
		stop, err := w.checkCheckpoints(env)
		if stop || err != nil {
			return err
		}
	}
	w.complete = true

	n := w.tree.Size()
	if w.haveCP {
		latest := w.cp.Size
		for w.haveCP {
			latest = max(latest, w.cp.Size)
			w.checkpoints++
			if err := w.advanceCP(); err != nil {
				return err
			}
		}
		row, _, err := w.rowAt(int64(n))
		if err != nil {
			return err
		}
		w.report(problem{seq: int64(n), rank: rankMissing, row: row,
			text: fmt.Sprintf("log truncated: the latest checkpoint commits to %d records but only %d are stored", latest, n)})
	}
	if w.haveRow {
		w.report(problem{seq: w.row.Seq, rank: rankIndex, row: w.row.Fields,
			text: fmt.Sprintf("index row has no record: the log holds %d records", n)})
	}
	return nil
}

// send queues j for the workers, who get jobs a chunk at a time.
func (w *walker) send(j job) {
	if w.chunk == nil {
		w.chunk = make([]job, 0, chunkSize)
	}
	if w.chunk = append(w.chunk, j); len(w.chunk) == chunkSize {
		w.flush()
	}
}

// flush hands the workers the jobs queued so far.
func (w *walker) flush() {
	if len(w.chunk) > 0 {
		w.chunks <- w.chunk
		w.chunk = nil
	}
}

func (w *walker) advanceCP() error {
	cp, err, ok := w.nextCP()
	if !ok {
		w.haveCP = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	w.cp, w.haveCP = cp, true
	return nil
}

func (w *walker) advanceRow() error {
	row, err, ok := w.nextRow()
	if !ok {
		w.haveRow = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("read index row: %w", err)
	}
	w.row, w.haveRow = row, true
	return nil
}

// rowAt returns the index row for seq, reporting rows skipped on the way.
func (w *walker) rowAt(seq int64) (map[string]string, bool, error) {
	for w.haveRow && w.row.Seq < seq {
		w.report(problem{seq: w.row.Seq, rank: rankIndex, row: w.row.Fields,
			text: fmt.Sprintf("index row is out of order or duplicated (seen after row %d)", seq-1)})
		if err := w.advanceRow(); err != nil {
			return nil, false, err
		}
	}
	if w.haveRow && w.row.Seq == seq {
		f := w.row.Fields
		return f, true, w.advanceRow()
	}
	return nil, false, nil
}

// checkCheckpoints checks every pending checkpoint the tree has reached.
// env is the last record appended. stop says a problem was found: nothing
// after it can be checked against the checkpoints.
func (w *walker) checkCheckpoints(env []byte) (stop bool, err error) {
	size := w.tree.Size()
	for w.haveCP && w.cp.Size <= size {
		cp := w.cp
		w.checkpoints++
		seq := max(int64(cp.Size)-1, 0)
		fail := func(rank int, format string, args ...any) (bool, error) {
			p := problem{seq: seq, rank: rank, env: env, text: fmt.Sprintf("checkpoint %d: ", cp.Size) + fmt.Sprintf(format, args...)}
			if rank == rankCheckpoint && seq != int64(size)-1 {
				p.env = nil // not the record in hand
			}
			w.report(p)
			return true, nil
		}
		if cp.Size < w.lastGood || cp.Size < size {
			return fail(rankCheckpoint, "follows a checkpoint of size %d: checkpoints went backwards", max(w.lastGood, size))
		}
		// The signature is checked in parallel; the root can be compared
		// now because a bad signature is reported either way.
		jb := job{seq: seq, checkpoint: bytes.Clone(cp.Data)}
		if seq == int64(size)-1 {
			jb.env = env // to name the record
		}
		w.send(jb)
		got, err := peekCheckpoint(cp.Data, w.origin)
		if err != nil {
			return fail(rankCheckpoint, "%v", err)
		}
		if got.Size != cp.Size {
			return fail(rankCheckpoint, "stored as size %d but signed for size %d", cp.Size, got.Size)
		}
		root, err := w.tree.Root(cp.Size)
		if err != nil {
			return false, err
		}
		if !bytes.Equal(root, got.Hash) {
			// Everything up to the last good checkpoint matched, so the
			// first changed record is at or after it.
			first := int64(w.lastGood)
			p := problem{seq: first, last: int64(cp.Size) - 1, rank: rankCheckpoint, env: w.afterGood}
			if first == int64(cp.Size)-1 {
				p.text = fmt.Sprintf("checkpoint %d: the record is not the one the checkpoint committed to (records reordered, replaced or re-signed)", cp.Size)
			} else {
				p.text = fmt.Sprintf("checkpoint %d: the root rebuilt from the records differs; a record in %d..%d was reordered, replaced or re-signed", cp.Size, first, cp.Size-1)
			}
			w.report(p)
			return true, nil
		}
		if w.prev != nil {
			pf, err := w.tree.ConsistencyProof(w.prev.Size, cp.Size)
			if err != nil {
				return false, err
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, w.prev.Size, cp.Size, pf, w.prev.Hash, got.Hash); err != nil {
				return fail(rankCheckpoint, "not consistent with checkpoint %d: %v", w.prev.Size, err)
			}
		}
		w.prev, w.lastGood, w.lastNote = &got, cp.Size, jb.checkpoint
		if err := w.advanceCP(); err != nil {
			return false, err
		}
	}
	return false, nil
}

// checker is a worker: it checks the signatures of a chunk of jobs in one
// batch, then finishes each job.
type checker struct {
	*run
	batch *voi.BatchVerifier
	msgs  []byte // the envelopes' signed messages, reused from chunk to chunk
	items []item
}

// item is a job whose signature is in the batch.
type item struct {
	job
	env openedEnvelope   // a record's
	cp  openedCheckpoint // a checkpoint's
}

func (c *checker) check(jobs []job) {
	c.batch.Reset()
	c.msgs, c.items = c.msgs[:0], c.items[:0]
	for _, j := range jobs {
		if j.seq > c.minSeq.Load() {
			continue
		}
		if j.checkpoint != nil {
			c.openCheckpoint(j)
		} else {
			c.openRecord(j)
		}
	}
	// When the batch fails, each signature is checked again on its own, in
	// order, until a bad one is found: the jobs after it are skipped.
	ok := c.key != nil && c.batch.VerifyBatchOnly(nil)
	for i := range c.items {
		it := &c.items[i]
		if it.seq > c.minSeq.Load() {
			continue
		}
		if it.checkpoint != nil {
			c.checkpointVerified(it.job, &it.cp, ok || c.nv.Verify(it.cp.msg, it.cp.sig))
		} else {
			c.recordVerified(it.job, &it.env, ok || it.env.verify(c.v.pub))
		}
	}
	clear(c.items) // let go of the chunk's envelopes
}

// add puts a job's signature in the batch.
func (c *checker) add(it item, msg, sig []byte) {
	c.items = append(c.items, it)
	if c.key != nil {
		c.batch.AddExpanded(c.key, msg, sig)
	}
}

func (c *checker) openCheckpoint(j job) {
	o := openCheckpoint(j.checkpoint, c.nv)
	if o.msg == nil {
		c.checkpointVerified(j, &o, false) // no signature to check
		return
	}
	c.add(item{job: j, cp: o}, o.msg, o.sig)
}

func (c *checker) checkpointVerified(j job, o *openedCheckpoint, valid bool) {
	if _, err := o.verified(c.nv, valid); err != nil {
		c.report(problem{seq: j.seq, rank: rankCheckpointSig, env: j.env, text: err.Error()})
	}
}

// openRecord puts an envelope's first signature by the key in the batch.
// Should an envelope have several and that one be bad, the batch fails and
// the envelope is checked on its own, where any of them will do.
func (c *checker) openRecord(j job) {
	var o openedEnvelope
	var err error
	if c.msgs, o, err = c.v.openEnvelope(c.msgs, j.env); err != nil {
		c.recordFailed(j, err)
		return
	}
	c.add(item{job: j, env: o}, o.msg, o.sigs[0])
}

func (c *checker) recordVerified(j job, o *openedEnvelope, valid bool) {
	rec, err := c.v.verified(o, valid)
	if err != nil {
		c.recordFailed(j, err)
		return
	}
	c.checkRecord(j, rec)
}

func (r *run) recordFailed(j job, err error) {
	r.report(problem{seq: j.seq, rank: rankRecord, env: j.env, row: j.row, text: err.Error()})
}

// checkRecord checks a verified record against the others and its index
// row.
func (r *run) checkRecord(j job, rec *Record) {
	id := sha256.Sum256([]byte(rec.ID))
	key := [16]byte(id[:16])
	state := rec.exceptionState()

	r.mu.Lock()
	if r.firstObs.IsZero() || rec.ObservedAt.Before(r.firstObs) {
		r.firstObs = rec.ObservedAt
	}
	if rec.ObservedAt.After(r.lastObs) {
		r.lastObs = rec.ObservedAt
	}
	other, dup := r.ids[key]
	if !dup || j.seq < other {
		r.ids[key] = j.seq
	}
	if state != ExceptionStateNone {
		r.exceptions = append(r.exceptions, exceptionSeen{seq: j.seq, id: key, closes: rec.Exception.Closes,
			state: state, row: j.row, hasRow: j.hasRow, recordID: rec.ID})
	}
	r.mu.Unlock()
	if dup {
		later, earlier := max(j.seq, other), min(j.seq, other)
		r.report(problem{seq: later, rank: rankDuplicate, id: rec.ID, text: fmt.Sprintf("duplicate record id: also at %d", earlier)})
	}
	if earlier, _, found := r.prior(rec.ID); found {
		r.report(problem{seq: j.seq, rank: rankDuplicate, id: rec.ID, text: fmt.Sprintf("duplicate record id: also at %d, before the trusted checkpoint", earlier)})
	}

	if !j.hasRow {
		r.report(problem{seq: j.seq, rank: rankIndex, id: rec.ID, text: "no index row for this record"})
		return
	}
	// The field named is the first in key order to disagree. The fields
	// are compared one by one rather than gathered in a map: Verify does
	// this for every record.
	var bad indexField
	compare := func(want indexField) {
		if j.row[want.name] != want.value && (bad.name == "" || want.name < bad.name) {
			bad = want
		}
	}
	for _, f := range indexFields(rec) {
		compare(f)
	}
	if _, ok := j.row[FieldLeafHash]; ok {
		compare(indexField{FieldLeafHash, hex.EncodeToString(j.leaf)})
	}
	if state == ExceptionStateNone {
		// Records with an exception are checked once the whole log is
		// read, because a later record may close theirs.
		compare(indexField{FieldExceptionState, ExceptionStateNone})
	}
	if bad.name != "" {
		r.report(problem{seq: j.seq, rank: rankIndex, id: rec.ID,
			text: fmt.Sprintf("index row disagrees with the record: %s is %q, the record says %q", bad.name, j.row[bad.name], bad.value)})
	}
}

// checkExceptions settles each exception's state, which depends on later
// records, and checks the index against it. Without the whole log
// (complete false) an exception may be closed by a record not read, so
// only what was seen is judged.
func (r *run) checkExceptions(complete bool) {
	r.mu.Lock()
	seen := slices.Clone(r.exceptions)
	ids := r.ids
	r.mu.Unlock()
	slices.SortFunc(seen, func(a, b exceptionSeen) int { return cmp.Compare(a.seq, b.seq) })

	bySeq := make(map[int64]int, len(seen))
	for i, e := range seen {
		bySeq[e.seq] = i
	}
	closed := make(map[int64]bool)
	for _, e := range seen {
		if e.closes == "" {
			continue
		}
		target, ok := ids[[16]byte(sha256Of(e.closes)[:16])]
		i, hasExc := bySeq[target]
		if !ok && r.closesPrior(e.closes) {
			continue // an exception opened before the trusted checkpoint
		}
		switch {
		case !ok || target >= e.seq:
			r.report(problem{seq: e.seq, rank: rankRecord, id: e.recordID, text: fmt.Sprintf("closes record %s, which is not earlier in the log", e.closes)})
		case !hasExc || seen[i].state != ExceptionStateOpen:
			r.report(problem{seq: e.seq, rank: rankRecord, id: e.recordID, text: fmt.Sprintf("closes record %s, which has no open exception", e.closes)})
		default:
			closed[target] = true
		}
	}
	for _, e := range seen {
		want := e.state
		if closed[e.seq] {
			want = ExceptionStateClosed
		}
		got := e.row[FieldExceptionState]
		if !e.hasRow || got == want || (!complete && got == ExceptionStateClosed) {
			continue
		}
		r.report(problem{seq: e.seq, rank: rankIndex, id: e.recordID,
			text: fmt.Sprintf("index row disagrees with the log: %s is %q, the log says %q", FieldExceptionState, got, want)})
	}
}

func sha256Of(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// name returns the best id at hand for the problem's record: the verified
// record's, else the one the envelope claims, else the index row's.
func (p *problem) name() string {
	if p.id != "" {
		return p.id
	}
	if p.env != nil {
		if id := peekID(p.env); id != "" {
			return id
		}
	}
	return p.row[FieldID]
}

// peekID reads the id an envelope claims, without verifying anything. It
// only labels a record already found bad.
func peekID(env []byte) string {
	var e struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(env, &e) != nil {
		return ""
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return ""
	}
	var st struct {
		Predicate struct {
			ID string `json:"id"`
		} `json:"predicate"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return ""
	}
	return st.Predicate.ID
}
