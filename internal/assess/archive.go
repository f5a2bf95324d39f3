package assess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
)

// Archiver appends change records to the evidence ledger.
type Archiver interface {
	Append(ctx context.Context, r *evidence.Record) (uint64, error)
}

// ErrDuplicateRecord is what an Archiver returns for a change archived
// before; the ledger package's ErrDuplicate wraps or equals it.
var ErrDuplicateRecord = errors.New("record already archived")

// archiveMerge records a pull request merged into a production branch: a
// final snapshot of the facts and the decision they give. A merge the
// decision did not allow is a bypass, with an open exception; an emergency
// merge owes a manager's approval within the policy's window.
func (a *Assessor) archiveMerge(ctx context.Context, log *slog.Logger, client *github.Client, head *change.Facts, delivery string) error {
	facts, d, _, err := a.decide(ctx, client, head)
	if err != nil {
		return err
	}
	if d.Outcome == change.NotProduction {
		log.Debug("merge not archived: not a production change", "reason", d.Reason)
		return nil
	}
	rec := mergeRecord(facts, d, a.Now(), delivery, a.AppVersion)
	seq, err := a.Archive.Append(ctx, rec)
	if errors.Is(err, ErrDuplicateRecord) {
		log.Debug("merge already archived", "seq", seq)
		return nil
	}
	if err != nil {
		return fmt.Errorf("archive merge: %w", err)
	}
	log.Info("merge archived", "seq", seq, "record", rec.ID, "change_type", rec.ChangeType, "outcome", d.Outcome)
	return nil
}

// mergeRecord is the change record of a merge. It is pure.
func mergeRecord(f *change.Facts, d change.Decision, now time.Time, delivery, version string) *evidence.Record {
	merged := f.PR.MergedAt
	if merged.IsZero() {
		merged = now
	}
	r := &evidence.Record{
		Schema:     evidence.Schema,
		Repo:       f.Subject.Repo,
		Subject:    evidence.Subject{PR: f.Subject.Number, BaseRef: f.PR.BaseRef, HeadSHA: f.PR.HeadSHA, MergeSHA: f.Subject.MergeSHA},
		ChangeType: evidence.Standard,
		Facts:      *f,
		Decision:   d,
		Policy:     evidence.Policy{Digest: d.PolicyDigest, Source: d.PolicySource},
		ObservedAt: now.UTC(),
		AppVersion: version,
	}
	if delivery != "" {
		r.DeliveryIDs = []string{delivery}
	}
	switch {
	case d.Outcome != change.Compliant && d.Outcome != change.Exempt:
		r.ChangeType = evidence.Bypass
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionBypass, OpenedAt: merged.UTC(),
			Reason: "merged while changegate's decision was " + string(d.Outcome) + missing(d)}
	case d.Emergency:
		r.ChangeType = evidence.Emergency
		window := d.EmergencyWindow
		if window <= 0 {
			window = 48 * time.Hour
		}
		r.Exception = &evidence.Exception{Kind: evidence.ExceptionEmergency, OpenedAt: merged.UTC(), DueAt: merged.Add(window).UTC(),
			Reason: "emergency change: a manager's approval is due after the fact"}
	}
	return r
}

// missing names the controls that did not pass, for an exception's reason.
func missing(d change.Decision) string {
	var names []string
	for _, c := range d.Controls {
		if c.Result != change.Pass {
			names = append(names, c.Control+" "+string(c.Result))
		}
	}
	if d.Reason != "" {
		names = append(names, d.Reason)
	}
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}
