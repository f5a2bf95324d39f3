// Package inventory keeps the list of App installations and the
// repositories each can see: from installation webhooks as they arrive, and
// from a full sync with GitHub at start-up.
package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/changegate/changegate/internal/jobs"
)

// Store writes the inventory inside a job's transaction.
type Store interface {
	UpsertInstallation(ctx context.Context, tx jobs.Tx, in jobs.Installation, now time.Time) error
	DeleteInstallation(ctx context.Context, tx jobs.Tx, id int64, now time.Time) error
	UpsertRepos(ctx context.Context, tx jobs.Tx, installationID int64, repos []jobs.Repo, now time.Time) error
	RemoveRepos(ctx context.Context, tx jobs.Tx, installationID int64, repos []jobs.Repo) error
	// ReplaceRepos makes repos the installation's list as of listedAt:
	// a repository recorded after that (by a webhook applied while the
	// list was read) is newer news, and is kept.
	ReplaceRepos(ctx context.Context, tx jobs.Tx, installationID int64, repos []jobs.Repo, listedAt, now time.Time) error
	MarkMissingInstallationsDeleted(ctx context.Context, tx jobs.Tx, keep []int64, now time.Time) error
}

// GitHub lists what the App is installed on.
type GitHub interface {
	ListInstallations(ctx context.Context) ([]jobs.Installation, error)
	ListRepos(ctx context.Context, installationID int64) ([]jobs.Repo, error)
}

// Walk queues, in tx, a walk of the history of repositories just
// installed: their first reconciliation, which backfills them.
type Walk func(ctx context.Context, tx jobs.Tx, installation int64, repos []jobs.Repo, reason string) error

// EventHandler applies installation and installation_repositories webhooks.
// It needs no GitHub call: the payload says what changed. Repositories
// the App gains are walked (walk; nil walks nothing), in the same
// transaction, so a crash leaves both or neither.
func EventHandler(s Store, now func() time.Time, walk Walk) jobs.Handler[jobs.InstallationEvent] {
	return func(ctx context.Context, log *slog.Logger, ev jobs.InstallationEvent) (jobs.Apply, error) {
		return func(ctx context.Context, tx jobs.Tx) error {
			t := now()
			in := ev.Installation
			switch ev.Event + "." + ev.Action {
			case "installation.deleted":
				return s.DeleteInstallation(ctx, tx, in.ID, t)
			case "installation.suspend":
				in.Suspended = true
			case "installation.unsuspend":
				in.Suspended = false
			}
			if err := s.UpsertInstallation(ctx, tx, in, t); err != nil {
				return err
			}
			if ev.Event == "installation" && ev.Action == "created" {
				if err := s.ReplaceRepos(ctx, tx, in.ID, ev.Repos, t, t); err != nil {
					return err
				}
				return walkNew(ctx, tx, walk, in.ID, ev.Repos, "installation.created")
			}
			if err := s.UpsertRepos(ctx, tx, in.ID, ev.Added, t); err != nil {
				return err
			}
			if err := walkNew(ctx, tx, walk, in.ID, ev.Added, "installation_repositories.added"); err != nil {
				return err
			}
			if err := s.RemoveRepos(ctx, tx, in.ID, ev.Removed); err != nil {
				return err
			}
			log.Info("installation updated", "action", ev.Action, "added", len(ev.Added), "removed", len(ev.Removed))
			return nil
		}, nil
	}
}

func walkNew(ctx context.Context, tx jobs.Tx, walk Walk, installation int64, repos []jobs.Repo, reason string) error {
	if walk == nil || len(repos) == 0 {
		return nil
	}
	return walk(ctx, tx, installation, repos, reason)
}

// SyncHandler reconciles the inventory with what GitHub lists. Installations
// GitHub no longer lists are marked deleted. It reads everything before it
// writes anything, so a failure half-way changes nothing.
func SyncHandler(s Store, gh GitHub, now func() time.Time) jobs.Handler[jobs.InstallationSync] {
	return func(ctx context.Context, log *slog.Logger, _ jobs.InstallationSync) (jobs.Apply, error) {
		listedAt := now()
		installs, err := gh.ListInstallations(ctx)
		if err != nil {
			return nil, fmt.Errorf("list installations: %w", err)
		}
		repos := make(map[int64][]jobs.Repo, len(installs))
		for _, in := range installs {
			if in.Suspended {
				continue // a suspended installation cannot get a token
			}
			r, err := gh.ListRepos(ctx, in.ID)
			if err != nil {
				return nil, fmt.Errorf("list repositories of installation %d: %w", in.ID, err)
			}
			repos[in.ID] = r
		}
		return func(ctx context.Context, tx jobs.Tx) error {
			t := now()
			keep := make([]int64, 0, len(installs))
			total := 0
			for _, in := range installs {
				keep = append(keep, in.ID)
				if err := s.UpsertInstallation(ctx, tx, in, t); err != nil {
					return err
				}
				r, ok := repos[in.ID]
				if !ok {
					continue
				}
				total += len(r)
				if err := s.ReplaceRepos(ctx, tx, in.ID, r, listedAt, t); err != nil {
					return err
				}
			}
			if err := s.MarkMissingInstallationsDeleted(ctx, tx, keep, t); err != nil {
				return err
			}
			log.Info("installations synced", "installations", len(installs), "repositories", total)
			return nil
		}, nil
	}
}
