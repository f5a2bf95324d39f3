package evidence

import (
	"encoding/hex"
	"fmt"
	"time"
)

// The index of the ledger: what each record's row holds, and the
// population queries over it. Every store adapter implements them.

// IndexEntry is one record's row in the index.
type IndexEntry struct {
	Seq      uint64
	LeafHash string // hex
	Fields   map[string]string
	// Links are the ids of the records this one links (a deployment's
	// change records), so that a population can find a change's deployment.
	Links []string
}

// Query selects a population from the index: the records among the first
// Size of the log whose event time falls in [From, To), optionally of one
// repository, of some change types, or only those carrying an exception.
// Rows come in sequence order.
type Query struct {
	From, To       time.Time
	Repo           string
	Types          []string
	ExceptionsOnly bool
	Size           uint64
	// Start and Limit page it: only records from sequence number Start
	// on, and at most Limit of them (0: all).
	Start uint64
	Limit int
}

// PopulationRow is one record of a population as the index holds it.
type PopulationRow struct {
	Seq      uint64
	LeafHash []byte
	// Summary is the record's SummaryJSON. It is only valid
	// during the call it is passed to.
	Summary []byte
	// DeployedAt is the event time (SortableTime) of the first
	// deployment record among the first Size that links this record; empty
	// when none does.
	DeployedAt string
}

// MonthCount counts the records of one change type whose event time falls
// in one month ("2026-01"), and how many of them were compliant.
type MonthCount struct {
	Month      string
	ChangeType string
	Records    int
	Compliant  int
}

// IndexColumns are the index's field columns, named as the Field*
// constants, in the order the stores keep them.
var IndexColumns = []string{
	FieldID, FieldRepo, FieldPR, FieldSHA, FieldChangeType, FieldMergedAt, FieldObservedAt, FieldOutcome,
	FieldCompliant, FieldTicket, FieldException, FieldExceptionDue, FieldCloses, FieldExceptionState,
	FieldEventTime, FieldSummary,
}

// ExceptionState is the state the entry's own fields give its row: closing
// for a record that closes another's exception, open for one that carries
// an exception, else none. A later record that closes it makes it closed.
func (e IndexEntry) ExceptionState() string {
	switch {
	case e.Fields[FieldCloses] != "":
		return ExceptionStateClosing
	case e.Fields[FieldException] != "":
		return ExceptionStateOpen
	}
	return ExceptionStateNone
}

// PutIndex indexes entries in order, as both stores do: put stores one
// record's row and reports whether it was new to the index; leaves stores
// the leaf hashes of each run of consecutive new records (IndexLeaves) as
// one row, and is given an empty run when there is nothing to store.
func PutIndex(entries []IndexEntry, put func(IndexEntry) (bool, error), leaves func(run []IndexEntry) error) error {
	var run []IndexEntry // consecutive records new to the index
	for _, e := range entries {
		added, err := put(e)
		if err != nil {
			return err
		}
		if !added || len(run) > 0 && run[len(run)-1].Seq+1 != e.Seq {
			if err := leaves(run); err != nil {
				return err
			}
			run = run[:0]
		}
		if added {
			run = append(run, e)
		}
	}
	return leaves(run)
}

// IndexLeaves concatenates the leaf hashes of consecutive entries, 32
// bytes each, as the stores keep a batch's leaves in one row.
func IndexLeaves(run []IndexEntry) ([]byte, error) {
	hashes := make([]byte, 0, len(run)*32)
	for _, e := range run {
		h, err := hex.DecodeString(e.LeafHash)
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("index record %d: leaf hash %q", e.Seq, e.LeafHash)
		}
		hashes = append(hashes, h...)
	}
	return hashes, nil
}
