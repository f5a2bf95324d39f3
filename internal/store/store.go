// Package store holds the rows every store adapter reads and writes (the
// embedded SQLite one and the PostgreSQL one), so that the workflow, the
// queue and the conformance suite see one type per concept whichever store
// runs.
package store

import (
	"encoding/json"
	"time"

	"github.com/changegate/changegate/internal/jobs"
)

// Delivery is the row kept for an acknowledged delivery.
type Delivery struct {
	ID             string
	Source         string
	Event          string
	Action         string
	InstallationID int64
	Repo           string
	ReceivedAt     time.Time
	// JobArgs is the JSON of the delivery's jobs, as the dispatcher reads them.
	JobArgs   json.RawMessage
	Jobs      int
	Processed int
}

// Installation is a row of the installation inventory.
type Installation struct {
	jobs.Installation
	Deleted bool
}

// Repository is a row of the repository inventory.
type Repository struct {
	jobs.Repo
	InstallationID int64
}

// PullRequest is a row of the pull request index.
type PullRequest struct {
	Repo           string
	Number         int
	InstallationID int64
	HeadSHA        string
	BaseRef        string
	State          string
	Keys           []string
	// EvaluatedAt is when the evaluation that produced this entry started;
	// zero keeps the recorded time.
	EvaluatedAt time.Time
}

// CheckRun is the remembered changegate check run on a commit.
type CheckRun struct {
	ID     int64
	Digest string
}

// Redelivery is one redelivery changegate asked GitHub for.
type Redelivery struct {
	GUID       string
	DeliveryID int64
	Event      string
}

// ControlState is whether changegate is enforced on one target.
type ControlState struct {
	Repo, Target string
	Enforced     bool
	Detail       string
	Since        time.Time
	CheckedAt    time.Time
	// RecordID is the record whose exception a loss of enforcement opened.
	RecordID string
}
