package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Installation is the store-wide row.
type Installation = store.Installation

// UpsertInstallation records an installation as it is now.
func (s *DB) UpsertInstallation(ctx context.Context, jtx jobs.Tx, in jobs.Installation, now time.Time) error {
	tx := sqlTx(jtx)
	_, err := tx.ExecContext(ctx, `
		INSERT INTO installations (id, account, account_type, repository_selection, suspended, deleted, updated_at)
		VALUES (?, ?, ?, ?, ?, 0, ?)
		ON CONFLICT (id) DO UPDATE SET
			account = excluded.account,
			account_type = excluded.account_type,
			repository_selection = CASE WHEN excluded.repository_selection = '' THEN repository_selection ELSE excluded.repository_selection END,
			suspended = excluded.suspended,
			deleted = 0,
			updated_at = excluded.updated_at`,
		in.ID, in.Account, in.AccountType, in.RepositorySelection, in.Suspended, ts(now))
	if err != nil {
		return fmt.Errorf("upsert installation %d: %w", in.ID, err)
	}
	return nil
}

// DeleteInstallation marks an installation deleted and forgets its repositories.
func (s *DB) DeleteInstallation(ctx context.Context, jtx jobs.Tx, id int64, now time.Time) error {
	tx := sqlTx(jtx)
	if _, err := tx.ExecContext(ctx, `UPDATE installations SET deleted = 1, updated_at = ? WHERE id = ?`, ts(now), id); err != nil {
		return fmt.Errorf("delete installation %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM repositories WHERE installation_id = ?`, id); err != nil {
		return fmt.Errorf("delete repositories of installation %d: %w", id, err)
	}
	return nil
}

// UpsertRepos records repositories an installation can see.
func (s *DB) UpsertRepos(ctx context.Context, jtx jobs.Tx, installationID int64, repos []jobs.Repo, now time.Time) error {
	tx := sqlTx(jtx)
	for _, r := range repos {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO repositories (id, installation_id, full_name, private, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				installation_id = excluded.installation_id,
				full_name = excluded.full_name,
				private = excluded.private,
				updated_at = excluded.updated_at`,
			r.ID, installationID, r.FullName, r.Private, ts(now))
		if err != nil {
			return fmt.Errorf("upsert repository %s: %w", r.FullName, err)
		}
	}
	return nil
}

// RemoveRepos forgets repositories an installation no longer sees.
func (s *DB) RemoveRepos(ctx context.Context, jtx jobs.Tx, installationID int64, repos []jobs.Repo) error {
	tx := sqlTx(jtx)
	for _, r := range repos {
		if _, err := tx.ExecContext(ctx, `DELETE FROM repositories WHERE id = ? AND installation_id = ?`, r.ID, installationID); err != nil {
			return fmt.Errorf("remove repository %s: %w", r.FullName, err)
		}
	}
	return nil
}

// ReplaceRepos makes repos the complete list an installation saw at
// listedAt. A repository recorded after listedAt is kept: a webhook that
// added it was applied while the list was being read.
func (s *DB) ReplaceRepos(ctx context.Context, jtx jobs.Tx, installationID int64, repos []jobs.Repo, listedAt, now time.Time) error {
	tx := sqlTx(jtx)
	if _, err := tx.ExecContext(ctx, `DELETE FROM repositories WHERE installation_id = ? AND julianday(updated_at) < julianday(?)`,
		installationID, ts(listedAt)); err != nil {
		return fmt.Errorf("replace repositories of installation %d: %w", installationID, err)
	}
	return s.UpsertRepos(ctx, tx, installationID, repos, now)
}

// MarkMissingInstallationsDeleted marks deleted every installation not in
// keep: after a full sync, those are the ones GitHub no longer lists.
func (s *DB) MarkMissingInstallationsDeleted(ctx context.Context, jtx jobs.Tx, keep []int64, now time.Time) error {
	tx := sqlTx(jtx)
	rows, err := tx.QueryContext(ctx, `SELECT id FROM installations WHERE deleted = 0`)
	if err != nil {
		return fmt.Errorf("list installations: %w", err)
	}
	var gone []int64
	kept := make(map[int64]bool, len(keep))
	for _, id := range keep {
		kept[id] = true
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("list installations: %w", err)
		}
		if !kept[id] {
			gone = append(gone, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list installations: %w", err)
	}
	for _, id := range gone {
		if err := s.DeleteInstallation(ctx, tx, id, now); err != nil {
			return err
		}
	}
	return nil
}

// Installations lists the inventory, deleted ones included.
func (s *DB) Installations(ctx context.Context) ([]Installation, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, account, account_type, repository_selection, suspended, deleted
		FROM installations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list installations: %w", err)
	}
	defer rows.Close()
	var out []Installation
	for rows.Next() {
		var in Installation
		if err := rows.Scan(&in.ID, &in.Account, &in.AccountType, &in.RepositorySelection, &in.Suspended, &in.Deleted); err != nil {
			return nil, fmt.Errorf("list installations: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// Repository is the store-wide row.
type Repository = store.Repository

// Repositories lists the repositories of live installations.
func (s *DB) Repositories(ctx context.Context) ([]Repository, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, installation_id, full_name, private FROM repositories ORDER BY full_name`)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	var out []Repository
	for rows.Next() {
		var r Repository
		if err := rows.Scan(&r.ID, &r.InstallationID, &r.FullName, &r.Private); err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
