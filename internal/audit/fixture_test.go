package audit_test

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// fixedKey makes the goldens stable: the same key signs every run.
var fixedKey = ed25519.NewKeyFromSeed([]byte("changegate audit golden test key"))

// newLedger writes records into a real ledger (SQLite index, evidence
// directory) and returns the audit service over it.
func newLedger(t testing.TB, recs ...*evidence.Record) *audit.Service {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fs.Open(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.NewSigner(fixedKey)
	if err != nil {
		t.Fatal(err)
	}
	const origin = "changegate.test/audit"
	l, err := ledger.Open(t.Context(), blobs, store.Ledger(), signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, r := range recs {
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := audit.New(store.LedgerReader(), ledger.NewReader(blobs), signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

var jan = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// merge is a compliant merge of PR n at jan + n hours.
func merge(n int, title string) *evidence.Record {
	at := jan.Add(time.Duration(n) * time.Hour)
	sha := fmt.Sprintf("%040x", n)
	head := fmt.Sprintf("%039xf", n)
	repo := change.Repo{Owner: "acme", Name: "api"}
	key := fmt.Sprintf("PAY-%d", n)
	return &evidence.Record{
		Schema: evidence.Schema, Repo: repo, ChangeType: evidence.Standard,
		Subject: evidence.Subject{PR: n, BaseRef: "main", HeadSHA: head, MergeSHA: sha},
		Facts: change.Facts{
			PR: change.PullRequest{Number: n, Title: title, URL: fmt.Sprintf("https://github.com/acme/api/pull/%d", n),
				Author: "alice", Merged: true, MergedAt: at, MergedBy: "bob", HeadSHA: head, BaseRef: "main"},
			Reviews:     []change.Review{{User: "bob", State: change.ReviewApproved, CommitID: head, SubmittedAt: at.Add(-time.Hour)}, {User: "dave", State: change.ReviewApproved, CommitID: head, SubmittedAt: at.Add(-30 * time.Minute)}},
			Memberships: []change.Membership{{Team: "acme/managers", User: "dave", Active: true}},
			Tickets: []change.TicketLookup{{Key: key, Result: change.LookupFound, Ticket: &change.Ticket{Key: key, URL: "https://acme.atlassian.net/browse/" + key,
				Type: "Change", Status: "Approved", Summary: "=HYPERLINK(\"http://evil\")", Reporter: "paula", Created: at.Add(-48 * time.Hour)}}},
		},
		Decision: change.Decision{Outcome: change.Compliant, PolicyDigest: "sha256:abc", Controls: []change.ControlResult{
			{Control: change.ControlTicket, Result: change.Pass},
			{Control: change.ControlPeerReview, Result: change.Pass, Evidence: []change.Evidence{{Kind: "review", Ref: "bob"}}},
			{Control: change.ControlStaging, Result: change.Pass, Evidence: []change.Evidence{{Kind: "deployment", Ref: "staging", Detail: "success on " + head[:7], URL: "https://ci/1"}}},
			{Control: change.ControlManagerApproval, Result: change.Pass, Evidence: []change.Evidence{{Kind: "team", Ref: "acme/managers"}}},
		}},
		Policy:     evidence.Policy{Digest: "sha256:abc"},
		ObservedAt: at.Add(time.Minute), AppVersion: "test",
	}
}

// bypass is a merge made while the check failed.
func bypass(n int) *evidence.Record {
	r := merge(n, "hotfix without review")
	r.ChangeType = evidence.Bypass
	r.Decision.Outcome = change.NonCompliant
	r.Decision.Controls[1] = change.ControlResult{Control: change.ControlPeerReview, Result: change.Fail}
	r.Exception = &evidence.Exception{Kind: evidence.ExceptionBypass, Reason: "merged while changegate's decision was non_compliant", OpenedAt: r.Facts.PR.MergedAt}
	return r
}

// fixture: 12 merges in January (one titled with a formula, two
// bypasses), one in February.
func fixture(t testing.TB) *audit.Service {
	var recs []*evidence.Record
	for n := 1; n <= 12; n++ {
		switch n {
		case 4, 9:
			recs = append(recs, bypass(n))
		case 2:
			recs = append(recs, merge(n, "=cmd|' /C calc'!A0"))
		default:
			recs = append(recs, merge(n, fmt.Sprintf("Fix rounding, part %d", n)))
		}
	}
	recs = append(recs, merge(24*40, "February change"))
	return newLedger(t, recs...)
}

var january = audit.Query{From: jan, To: jan.AddDate(0, 1, 0)}
