// Package jobs defines the durable job arguments that intake enqueues and
// workers consume. The types are plain data (stdlib only): each has a Kind
// that names its worker, and the fields are what the worker needs without
// re-reading the webhook payload, which is never stored.
package jobs

import "log/slog"

// Job is the arguments of one durable job. It matches river.JobArgs.
type Job interface {
	Kind() string
}

// Kinds, stable across versions: queued jobs outlive the binary that queued them.
const (
	KindInstallationEvent = "installation_event"
	KindInstallationSync  = "installation_sync"
)

// Installation is an App installation as a webhook or the API reports it.
type Installation struct {
	ID                  int64  `json:"id"`
	Account             string `json:"account"`
	AccountType         string `json:"account_type"`
	RepositorySelection string `json:"repository_selection,omitempty"`
	Suspended           bool   `json:"suspended,omitempty"`
}

// Repo is a repository an installation can see.
type Repo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private,omitempty"`
}

// InstallationEvent applies an `installation` or `installation_repositories`
// webhook to the inventory of installations and repositories.
type InstallationEvent struct {
	DeliveryID   string       `json:"delivery_id"`
	Event        string       `json:"event"`
	Action       string       `json:"action"`
	Installation Installation `json:"installation"`
	// Repos is the full list sent with `installation.created`.
	Repos   []Repo `json:"repos,omitempty"`
	Added   []Repo `json:"added,omitempty"`
	Removed []Repo `json:"removed,omitempty"`
}

func (InstallationEvent) Kind() string { return KindInstallationEvent }

// LogAttrs are the attributes a worker's log lines carry.
func (e InstallationEvent) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("delivery_id", e.DeliveryID),
		slog.Int64("installation_id", e.Installation.ID),
	}
}

// InstallationSync lists installations and their repositories from GitHub
// and reconciles the inventory with them. Start-up enqueues one.
type InstallationSync struct {
	Reason string `json:"reason"`
}

func (InstallationSync) Kind() string { return KindInstallationSync }

// LogAttrs are the attributes a worker's log lines carry.
func (s InstallationSync) LogAttrs() []slog.Attr {
	return []slog.Attr{slog.String("reason", s.Reason)}
}

// DeliveryRef names the delivery the job was queued for.
func (e InstallationEvent) DeliveryRef() string { return e.DeliveryID }
