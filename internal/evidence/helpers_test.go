package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"iter"
	"maps"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/change"
)

const testOrigin = "changegate.test/ledger"

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// testKey is a fixed key, so golden files and failures are reproducible.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testSigner(tb testing.TB, seed byte) *Signer {
	tb.Helper()
	s, err := NewSigner(testKey(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// sha is a distinct, valid 40-hex commit SHA per n and salt.
func sha(n int, salt string) string {
	sum := sha1.Sum([]byte(fmt.Sprint(n, salt)))
	return hex.EncodeToString(sum[:])
}

// sampleRecord is a realistic standard record: facts of the size a
// reviewed, ticketed, staged pull request produces (about 4 KB signed).
func sampleRecord(i int) *Record {
	at := func(min int) time.Time { return t0.Add(time.Duration(i)*time.Hour + time.Duration(min)*time.Minute) }
	repo := change.Repo{Owner: "acme", Name: "pay"}
	head, merge := sha(i, "head"), sha(i, "merge")
	key := fmt.Sprintf("PAY-%d", 100+i)
	facts := change.Facts{
		Subject: change.Subject{Installation: 42, Repo: repo, Number: 1000 + i, BaseRef: "main", HeadRef: "feature/" + key, HeadSHA: head, MergeSHA: merge},
		PR: change.PullRequest{Number: 1000 + i, URL: fmt.Sprintf("https://github.com/acme/pay/pull/%d", 1000+i),
			Title: key + ": fix rounding in ledger totals", Body: "Rounds half-even, as finance asked.\n\nCloses " + key,
			Author: "alice", State: "closed", Merged: true, BaseRef: "main", HeadRef: "feature/" + key, HeadSHA: head,
			MergeCommitSHA: merge, DefaultBranch: "main", ChangedFiles: 2, CommitCount: 2, Labels: []string{"payments"},
			CreatedAt: at(-600), MergedAt: at(30), MergedBy: "bob"},
		Files: []string{"src/pay/round.go", "src/pay/round_test.go"},
		Commits: []change.Commit{
			{SHA: sha(i, "c1"), Author: change.Person{Name: "Alice", Email: "alice@acme.test", Login: "alice"}, Committer: change.Person{Login: "alice"}},
			{SHA: head, Author: change.Person{Name: "Alice", Email: "alice@acme.test", Login: "alice"}, Committer: change.Person{Login: "alice"}},
		},
		Reviews: []change.Review{
			{ID: 9000000000 + int64(i), User: "bob", State: change.ReviewApproved, CommitID: head, SubmittedAt: at(10), URL: "https://github.com/acme/pay/pull/1#review-1"},
			{ID: 9000000001 + int64(i), User: "dave", State: change.ReviewApproved, CommitID: head, SubmittedAt: at(20)},
		},
		CheckRuns: []change.CheckRun{{Name: "ci", HeadSHA: head, Status: "completed", Conclusion: "success", App: "github-actions", CompletedAt: at(5)}},
		Deployments: []change.Deployment{{ID: 7000 + int64(i), Environment: "staging", SHA: head, Ref: "feature/" + key, CreatedAt: at(1),
			Statuses: []change.DeploymentStatus{{State: "success", CreatedAt: at(3)}}}},
		Memberships: []change.Membership{{Team: "acme/release-managers", User: "dave", Active: true}},
		Tickets: []change.TicketLookup{{Key: key, Result: change.LookupFound, Ticket: &change.Ticket{Key: key,
			URL: "https://acme.atlassian.net/browse/" + key, Project: "PAY", Type: "Change", Status: "Approved",
			Summary: "Fix rounding", Reporter: "Paula", Created: at(-900),
			Approvals: []change.Approval{{Decision: "approved", Approvers: []string{"dave"}, Completed: at(-100)}}}}},
	}
	decision := change.Decision{Outcome: change.Compliant, PolicyDigest: "sha256:5d41402abc4b2a76b9719d911017c592", PolicySource: "acme/pay:.github/changegate.yml@main",
		Controls: []change.ControlResult{
			{Control: change.ControlTicket, Result: change.Pass, Evidence: []change.Evidence{{Kind: "ticket", Ref: key, Detail: "Approved"}}},
			{Control: change.ControlPeerReview, Result: change.Pass, Evidence: []change.Evidence{{Kind: "review", Ref: "bob", Detail: head}}},
			{Control: change.ControlStaging, Result: change.Pass, Evidence: []change.Evidence{{Kind: "deployment", Ref: "staging", Detail: "success"}}},
			{Control: change.ControlManagerApproval, Result: change.Pass, Evidence: []change.Evidence{{Kind: "review", Ref: "dave", Detail: head}}},
		}}
	return &Record{
		Schema: Schema, ID: fmt.Sprintf("cr-%06d", i), Repo: repo,
		Subject:    Subject{PR: 1000 + i, BaseRef: "main", HeadSHA: head, MergeSHA: merge},
		ChangeType: Standard, Facts: facts, Decision: decision,
		Policy:     Policy{Digest: decision.PolicyDigest, Source: decision.PolicySource},
		ObservedAt: at(31), DeliveryIDs: []string{fmt.Sprintf("d-%d", i)}, AppVersion: "v0.4.0",
	}
}

// memSource is a ledger held in memory, the way a storage adapter would
// hand it to Verify.
type memSource struct {
	records     []StoredRecord
	checkpoints []StoredCheckpoint
	rows        []IndexRow
}

func (m *memSource) Records() iter.Seq2[StoredRecord, error] {
	return func(yield func(StoredRecord, error) bool) {
		for _, r := range m.records {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (m *memSource) Checkpoints() iter.Seq2[StoredCheckpoint, error] {
	return func(yield func(StoredCheckpoint, error) bool) {
		for _, c := range m.checkpoints {
			if !yield(c, nil) {
				return
			}
		}
	}
}

func (m *memSource) IndexRows() iter.Seq2[IndexRow, error] {
	return func(yield func(IndexRow, error) bool) {
		for _, r := range m.rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// clone deep-copies the source so a test can tamper with its own copy.
func (m *memSource) clone() *memSource {
	c := &memSource{}
	for _, r := range m.records {
		r.Envelope = bytes.Clone(r.Envelope)
		c.records = append(c.records, r)
	}
	for _, cp := range m.checkpoints {
		cp.Data = bytes.Clone(cp.Data)
		c.checkpoints = append(c.checkpoints, cp)
	}
	for _, r := range m.rows {
		r.Fields = maps.Clone(r.Fields)
		c.rows = append(c.rows, r)
	}
	return c
}

// ledger is a writer in miniature: sign, append, checkpoint every
// checkpointEvery records (and at the end), write the index row.
type ledger struct {
	src    *memSource
	log    *Log
	signer *Signer
	every  int
}

func newLedger(signer *Signer, checkpointEvery int) *ledger {
	return &ledger{src: &memSource{}, log: NewLog(), signer: signer, every: checkpointEvery}
}

func (l *ledger) appendEnvelope(tb testing.TB, r *Record, env []byte) {
	tb.Helper()
	seq := int64(l.log.Append(env))
	l.src.records = append(l.src.records, StoredRecord{Seq: seq, Envelope: env})
	f := IndexFields(r)
	f[FieldExceptionState] = r.exceptionState()
	if r.Exception != nil && r.Exception.Closes != "" {
		for _, row := range l.src.rows {
			if row.Fields[FieldID] == r.Exception.Closes && row.Fields[FieldExceptionState] == ExceptionStateOpen {
				row.Fields[FieldExceptionState] = ExceptionStateClosed
			}
		}
	}
	l.src.rows = append(l.src.rows, IndexRow{Seq: seq, Fields: f})
	if l.every > 0 && (seq+1)%int64(l.every) == 0 {
		l.checkpoint(tb)
	}
}

func (l *ledger) append(tb testing.TB, r *Record) {
	tb.Helper()
	env, err := l.signer.Sign(r)
	if err != nil {
		tb.Fatal(err)
	}
	l.appendEnvelope(tb, r, env)
}

func (l *ledger) checkpoint(tb testing.TB) {
	tb.Helper()
	size := l.log.Size()
	root, err := l.log.Root(size)
	if err != nil {
		tb.Fatal(err)
	}
	cp, err := l.signer.SignCheckpoint(testOrigin, size, root)
	if err != nil {
		tb.Fatal(err)
	}
	l.src.checkpoints = append(l.src.checkpoints, StoredCheckpoint{Size: size, Data: cp})
}

// signAll signs n sample records on every CPU: setup for large benchmarks.
func signAll(tb testing.TB, signer *Signer, n int) ([]*Record, [][]byte) {
	recs := make([]*Record, n)
	envs := make([][]byte, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				recs[i] = sampleRecord(i)
				env, err := signer.Sign(recs[i])
				if err != nil {
					errs[w] = err
					return
				}
				envs[i] = env
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return recs, envs
}
