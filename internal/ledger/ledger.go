// Package ledger appends signed change records to the evidence log and
// keeps it consistent across crashes.
//
// Write order, one batch of records at a time (see Ledger on batches):
//
//  1. the records' signed envelopes go to the blob store as one bundle,
//     under a key that carries their sequence numbers
//     (records/000000000042-000000000073.dsse.jsonl; see BundleKey);
//  2. a checkpoint signed over the new tree size and root goes to the blob
//     store (checkpoints/000000000074.note), never before the records it
//     covers (blob.PutAll stores a prefix of its entries);
//  3. the records' queryable fields go to the SQL index.
//
// The blobs are the truth: the order of the log is the order of the bundle
// keys and of the lines in each, and the index can be rebuilt from them. A
// crash after step 1 leaves records without a checkpoint; after step 2,
// records without index rows. Open repairs both before the ledger takes a new record, so
// there is no gap, no duplicate and no unsigned record.
package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/evidence"
)

// Key layout in the blob store.
const (
	RecordPrefix     = "records/"
	CheckpointPrefix = "checkpoints/"
)

// CheckpointKey is where the checkpoint of a tree of size is stored.
func CheckpointKey(size uint64) string {
	return fmt.Sprintf("%s%012d.note", CheckpointPrefix, size)
}

// ParseCheckpointKey returns the tree size in a checkpoint key.
func ParseCheckpointKey(key string) (uint64, error) {
	rest, ok := strings.CutPrefix(key, CheckpointPrefix)
	if !ok {
		return 0, fmt.Errorf("checkpoint key %q: no %s prefix", key, CheckpointPrefix)
	}
	rest, ok = strings.CutSuffix(rest, ".note")
	if !ok || len(rest) != 12 {
		return 0, fmt.Errorf("checkpoint key %q: want 12-digit size and .note", key)
	}
	return strconv.ParseUint(rest, 10, 64)
}

// Index holds the queryable fields of each record.
type Index interface {
	// Put indexes records in one transaction; indexing a record again is a
	// no-op. Entries come in sequence order.
	Put(ctx context.Context, entries []evidence.IndexEntry) error
	// Size is how many records are indexed.
	Size(ctx context.Context) (uint64, error)
	// Leaves calls fn with the id and leaf hash of each of the first n
	// records, in sequence order, for Open to rebuild the tree without
	// reading the blobs.
	Leaves(ctx context.Context, n uint64, fn func(seq uint64, id string, leafHash []byte) error) error
}

// maxBatch bounds the records one commit takes, and so the wait of the
// last appender in a burst.
const maxBatch = 256

// Ledger appends records. It is safe for concurrent use; appends are
// strictly ordered.
//
// Concurrent appends are group-committed. Each caller signs its own record;
// the first to find no commit running becomes the writer and commits
// everything queued, as one batch: the records' bundle and the batch's
// checkpoint in one blob.PutAll (one round of syncs), then the index rows in
// one transaction. Every Append returns only once a signed checkpoint
// covering its record is durable, so "a checkpoint after each append" holds
// for every caller, while a burst of N appends costs one checkpoint rather
// than N.
type Ledger struct {
	blobs    blob.Store
	index    Index
	signer   *evidence.Signer
	verifier *evidence.Verifier
	origin   string

	qmu     sync.Mutex
	queue   []*request
	writing bool // a goroutine is committing the queue

	mu  sync.Mutex // held while committing; guards the fields below
	log *evidence.Log
	ids map[string]uint64 // record id → seq, for the whole log
	// repair says a commit failed part-way, so the stores may hold records,
	// a checkpoint or index rows the log does not know; the next commit
	// catches up first.
	repair bool
	// writers, when set, is shared with other processes writing the same
	// stores (replicas): each commit holds it, and first follows what the
	// others appended.
	writers Writers
}

// Writers serialises the ledgers of several processes that share one blob
// store and one index, as replicas do: a PostgreSQL advisory lock. Lock
// blocks until this process may write and returns the release. A process
// that dies holding it must lose it (a database session ends with it).
type Writers interface {
	Lock(ctx context.Context) (unlock func(), err error)
}

// RangeIndex is an index that reads leaf hashes from a sequence number on,
// so that a shared ledger follows the others' appends without reading
// from the start.
type RangeIndex interface {
	LeavesFrom(ctx context.Context, from, to uint64, fn func(seq uint64, id string, leafHash []byte) error) error
}

// Share makes the ledger one of several writers of its stores. Call it
// before the first Append.
func (l *Ledger) Share(w Writers) { l.writers = w }

type request struct {
	id   string
	rec  *evidence.Record
	env  []byte
	seq  uint64
	err  error
	done chan struct{}
}

// Open reads the log from the blob store, repairs what a crash left behind
// (a missing checkpoint or index rows), and returns the ledger.
func Open(ctx context.Context, blobs blob.Store, index Index, signer *evidence.Signer, origin string) (*Ledger, error) {
	verifier, err := evidence.NewVerifier(signer.Public())
	if err != nil {
		return nil, err
	}
	l := &Ledger{blobs: blobs, index: index, signer: signer, verifier: verifier, origin: origin,
		log: evidence.NewLog(), ids: map[string]uint64{}}
	refs, err := listBundles(ctx, blobs)
	if err != nil {
		return nil, err
	}
	if err := l.loadFromIndex(ctx, refs); err != nil {
		return nil, err
	}
	if err := l.catchUp(ctx, refs); err != nil {
		return nil, err
	}
	return l, nil
}

// loadFromIndex rebuilds the log's first records from the leaf hashes in
// the index, so that a large ledger opens without reading every blob. The
// index is not trusted for it: the tree rebuilt must have the root of the
// latest checkpoint the index covers, as signed by the ledger's key. When
// it does not, the log is left empty and catchUp reads the blobs, which are
// the truth. The record ids, which only serve to refuse duplicates, are
// taken from the index; verify checks them against the records.
func (l *Ledger) loadFromIndex(ctx context.Context, refs []bundleRef) error {
	if len(refs) == 0 {
		return nil
	}
	indexed, err := l.index.Size(ctx)
	if err != nil {
		return err
	}
	indexed = min(indexed, refs[len(refs)-1].last+1)
	var size uint64 // the largest checkpoint size the index covers
	err = l.blobs.List(ctx, CheckpointPrefix, func(k string) error {
		if s, err := ParseCheckpointKey(k); err == nil && s <= indexed {
			size = max(size, s)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	if size == 0 {
		return nil
	}
	data, err := l.blobs.Get(ctx, CheckpointKey(size))
	if err != nil {
		return fmt.Errorf("read checkpoint %d: %w", size, err)
	}
	nv, err := evidence.NoteVerifier(l.origin, l.signer.Public())
	if err != nil {
		return err
	}
	cp, err := evidence.VerifyCheckpoint(data, nv)
	if err != nil || cp.Size != size {
		return nil // read from the blobs, where verify will find the fault
	}
	log, ids := evidence.NewLog(), make(map[string]uint64, size)
	err = l.index.Leaves(ctx, size, func(seq uint64, id string, leaf []byte) error {
		if seq != log.Size() {
			return errDisagree
		}
		if _, err := log.AppendLeafHash(leaf); err != nil {
			return errDisagree
		}
		ids[id] = seq
		return nil
	})
	if errors.Is(err, errDisagree) || log.Size() != size {
		return nil
	}
	if err != nil {
		return err
	}
	if root, err := log.Root(size); err != nil || !bytes.Equal(root, cp.Hash) {
		return nil
	}
	l.log, l.ids = log, ids
	return nil
}

var errDisagree = errors.New("index disagrees with the blob store")

// catchUp brings the log up to the blob store and the index up to the log,
// in the write order: records stored past the log's end (a crash or a
// failed commit after the blobs were written) are checked and adopted, the
// checkpoint of the whole log is stored, and records missing from the
// index are indexed. Every adopted record has its signature checked, so no
// unsigned record enters the log.
func (l *Ledger) catchUp(ctx context.Context, refs []bundleRef) error {
	if refs == nil {
		var err error
		if refs, err = listBundles(ctx, l.blobs); err != nil {
			return err
		}
	}
	indexed, err := l.index.Size(ctx)
	if err != nil {
		return err
	}
	if err := contiguous(refs); err != nil {
		return fmt.Errorf("%w; run changegate audit verify", err)
	}
	err = eachRecord(ctx, l.blobs, l.verifier, refs, l.log.Size(), math.MaxUint64, func(seq uint64, env []byte, rec *evidence.Record) error {
		if prev, dup := l.ids[rec.ID]; dup {
			return fmt.Errorf("ledger: record %s appears at %d and %d", rec.ID, prev, seq)
		}
		l.log.Append(env)
		l.ids[rec.ID] = seq
		return nil
	})
	if err != nil {
		return err
	}
	size := l.log.Size()
	if size > 0 {
		cp, err := l.checkpoint(size, nil)
		if err != nil {
			return err
		}
		if err := l.blobs.Put(ctx, cp.Key, cp.Data); err != nil {
			return fmt.Errorf("store checkpoint %d: %w", size, err)
		}
	}
	if _, err := indexRecords(ctx, l.blobs, l.verifier, refs, l.index, indexed, size); err != nil {
		return err
	}
	l.repair = false
	return nil
}

// Close releases the blob store, when it holds resources (the fs store's
// journal). Appends must have returned.
func (l *Ledger) Close() error {
	if c, ok := l.blobs.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Size is the number of records in the log.
func (l *Ledger) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.Size()
}

// ErrDuplicate reports that the record was archived before.
var ErrDuplicate = errors.New("record already archived")

// ErrWrite marks an append the stores did not take: the blob store, the
// index or the writer lock failed. Nothing is wrong with the record; the
// next commit repairs what was stored part-way, so appending it again
// once the stores answer archives it once.
var ErrWrite = errors.New("ledger write failed")

// Append signs r and appends it. r.ID is set from its repository, commit
// and change type; a second record with the same identity is refused with
// ErrDuplicate, so a redelivered merge archives once.
//
// If ctx ends while the record waits for its commit, Append returns the
// context's error, but the record may still be committed; appending it
// again then gives ErrDuplicate.
func (l *Ledger) Append(ctx context.Context, r *evidence.Record) (uint64, error) {
	closes := ""
	if r.Exception != nil {
		closes = r.Exception.Closes
	}
	r.ID = evidence.RecordID(r.Repo.String(), evidence.SubjectKey(r), r.ChangeType, closes)
	env, err := l.signer.Sign(r)
	if err != nil {
		return 0, fmt.Errorf("sign record: %w", err)
	}
	req := &request{id: r.ID, rec: r, env: env, done: make(chan struct{})}

	l.qmu.Lock()
	l.queue = append(l.queue, req)
	lead := !l.writing
	l.writing = true
	l.qmu.Unlock()
	if lead {
		// The commit outlives a caller that gives up: others wait on it.
		l.commitQueued(context.WithoutCancel(ctx), req)
	}
	select {
	case <-req.done:
		return req.seq, req.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// commitQueued commits batches until own is done and then hands whatever
// is still queued to a new goroutine, so that no caller writes for others
// for long. With own nil it commits until the queue is empty.
func (l *Ledger) commitQueued(ctx context.Context, own *request) {
	for {
		l.qmu.Lock()
		if len(l.queue) == 0 {
			l.writing = false
			l.qmu.Unlock()
			return
		}
		if own != nil && isDone(own) {
			l.qmu.Unlock()
			go l.commitQueued(ctx, nil) // l.writing stays true
			return
		}
		n := min(len(l.queue), maxBatch)
		batch := l.queue[:n:n]
		l.queue = l.queue[n:]
		l.qmu.Unlock()
		l.commit(ctx, batch)
	}
}

func isDone(r *request) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// commit writes one batch: the bundle and checkpoint, then the index rows.
func (l *Ledger) commit(ctx context.Context, batch []*request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	finish := func(reqs []*request, err error) {
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrWrite, err)
		}
		for _, r := range reqs {
			r.err = err
			close(r.done)
		}
	}
	if l.writers != nil {
		unlock, err := l.writers.Lock(ctx)
		if err != nil {
			finish(batch, fmt.Errorf("ledger: wait for the writer lock: %w", err))
			return
		}
		defer unlock()
		if err := l.follow(ctx); err != nil {
			finish(batch, fmt.Errorf("ledger: follow the other writers: %w", err))
			return
		}
	}
	if l.repair {
		if err := l.catchUp(ctx, nil); err != nil {
			finish(batch, fmt.Errorf("ledger: repair after a failed commit: %w", err))
			return
		}
	}
	// Duplicates of the log, or of a record earlier in the batch, are
	// answered now and take no sequence number.
	var todo []*request
	inBatch := map[string]uint64{}
	next := l.log.Size()
	for _, r := range batch {
		if seq, ok := l.ids[r.id]; ok {
			r.seq, r.err = seq, ErrDuplicate
			close(r.done)
			continue
		}
		if seq, ok := inBatch[r.id]; ok {
			r.seq, r.err = seq, ErrDuplicate
			close(r.done)
			continue
		}
		r.seq = next
		inBatch[r.id] = next
		next++
		todo = append(todo, r)
	}
	if len(todo) == 0 {
		return
	}

	envs := make([][]byte, len(todo))
	leaves := make([][]byte, len(todo))
	for i, r := range todo {
		envs[i], leaves[i] = r.env, evidence.LeafHash(r.env)
	}
	cp, err := l.checkpoint(next, leaves)
	if err != nil {
		finish(todo, err)
		return
	}
	// The records' bundle, then the checkpoint that covers them.
	entries := []blob.Entry{{Key: BundleKey(todo[0].seq, next-1), Data: Bundle(envs)}, cp}
	if err := blob.PutAll(ctx, l.blobs, entries); err != nil {
		// Some of the records may be stored: the next commit adopts them.
		l.repair = true
		finish(todo, fmt.Errorf("store records %d..%d: %w", todo[0].seq, next-1, err))
		return
	}
	rows := make([]evidence.IndexEntry, len(todo))
	for i, r := range todo {
		if _, err := l.log.AppendLeafHash(leaves[i]); err != nil {
			panic(err) // LeafHash always has the right size
		}
		l.ids[r.id] = r.seq
		rows[i] = evidence.IndexEntry{Seq: r.seq, LeafHash: hex.EncodeToString(leaves[i]), Fields: evidence.IndexFields(r.rec), Links: r.rec.Links}
	}
	if err := l.index.Put(ctx, rows); err != nil {
		// The records are in the log; only their rows are missing.
		l.repair = true
		finish(todo, fmt.Errorf("index records %d..%d: %w", todo[0].seq, next-1, err))
		return
	}
	finish(todo, nil)
}

// follow brings the log up to what the other writers appended since this
// one last held the lock. Their index rows are adopted when the tree they
// make has the root of the checkpoint their writer stored, signed by the
// ledger's key; anything else (a writer that died between storing records
// and indexing them, an index that does not agree) is read from the blobs,
// as start-up does.
func (l *Ledger) follow(ctx context.Context) error {
	size := l.log.Size()
	indexed, err := l.index.Size(ctx)
	if err != nil {
		return err
	}
	ri, ranged := l.index.(RangeIndex)
	if indexed > size && (!ranged || !l.adoptIndexed(ctx, ri, size, indexed)) {
		l.repair = true
		return nil
	}
	// A bundle at the log's end that no index row covers is a dead
	// writer's: adopt it before writing after it.
	stray := false
	err = l.blobs.List(ctx, fmt.Sprintf("%s%012d-", RecordPrefix, l.log.Size()), func(string) error { stray = true; return nil })
	if err != nil {
		return fmt.Errorf("list records: %w", err)
	}
	if stray {
		l.repair = true
	}
	return nil
}

// adoptIndexed extends the log with the index's rows from..to-1, if the
// tree they make has the root of checkpoint to; else it leaves the log as
// it was and reports false.
func (l *Ledger) adoptIndexed(ctx context.Context, ri RangeIndex, from, to uint64) bool {
	var leaves [][]byte
	ids := map[string]uint64{}
	err := ri.LeavesFrom(ctx, from, to, func(seq uint64, id string, leaf []byte) error {
		if seq != from+uint64(len(leaves)) {
			return errDisagree
		}
		leaves, ids[id] = append(leaves, leaf), seq
		return nil
	})
	if err != nil || uint64(len(leaves)) != to-from {
		return false
	}
	data, err := l.blobs.Get(ctx, CheckpointKey(to))
	if err != nil {
		return false
	}
	nv, err := evidence.NoteVerifier(l.origin, l.signer.Public())
	if err != nil {
		return false
	}
	cp, err := evidence.VerifyCheckpoint(data, nv)
	if err != nil || cp.Size != to {
		return false
	}
	if root, err := l.log.RootAfter(leaves); err != nil || !bytes.Equal(root, cp.Hash) {
		return false
	}
	for _, h := range leaves {
		if _, err := l.log.AppendLeafHash(h); err != nil {
			panic(err) // checked by RootAfter
		}
	}
	maps.Copy(l.ids, ids)
	return true
}

// checkpoint signs the checkpoint of the log after appending leaves.
// ed25519 signatures are deterministic, so storing it again (a repaired
// crash, a retried commit) writes identical bytes, which the store accepts.
func (l *Ledger) checkpoint(size uint64, leaves [][]byte) (blob.Entry, error) {
	root, err := l.log.RootAfter(leaves)
	if err != nil {
		return blob.Entry{}, err
	}
	data, err := l.signer.SignCheckpoint(l.origin, size, root)
	if err != nil {
		return blob.Entry{}, fmt.Errorf("sign checkpoint %d: %w", size, err)
	}
	return blob.Entry{Key: CheckpointKey(size), Data: data}, nil
}

// Rebuilder is an index that can be emptied, for Reindex.
type Rebuilder interface {
	Index
	Clear(ctx context.Context) error
}

// Reindex rebuilds the index from the blob store: the blobs are the truth.
// Every record's signature is checked before it is indexed. It returns the
// number of records indexed. The server must not be running.
func Reindex(ctx context.Context, blobs blob.Store, index Rebuilder, pub ed25519.PublicKey) (uint64, error) {
	verifier, err := evidence.NewVerifier(pub)
	if err != nil {
		return 0, err
	}
	if err := index.Clear(ctx); err != nil {
		return 0, err
	}
	refs, err := listBundles(ctx, blobs)
	if err != nil {
		return 0, err
	}
	if err := contiguous(refs); err != nil {
		return 0, err
	}
	return indexRecords(ctx, blobs, verifier, refs, index, 0, math.MaxUint64)
}
