package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// UpsertInstallation records an installation as it is now.
func (s *DB) UpsertInstallation(ctx context.Context, jtx jobs.Tx, in jobs.Installation, now time.Time) error {
	_, err := pgTx(jtx).Exec(ctx, `
		INSERT INTO installations (id, account, account_type, repository_selection, suspended, deleted, updated_at)
		VALUES ($1, $2, $3, $4, $5, false, $6)
		ON CONFLICT (id) DO UPDATE SET
			account = excluded.account,
			account_type = excluded.account_type,
			repository_selection = CASE WHEN excluded.repository_selection = '' THEN installations.repository_selection
				ELSE excluded.repository_selection END,
			suspended = excluded.suspended,
			deleted = false,
			updated_at = excluded.updated_at`,
		in.ID, in.Account, in.AccountType, in.RepositorySelection, in.Suspended, now.UTC())
	if err != nil {
		return fmt.Errorf("upsert installation %d: %w", in.ID, err)
	}
	return nil
}

// DeleteInstallation marks an installation deleted and forgets its repositories.
func (s *DB) DeleteInstallation(ctx context.Context, jtx jobs.Tx, id int64, now time.Time) error {
	tx := pgTx(jtx)
	if _, err := tx.Exec(ctx, `UPDATE installations SET deleted = true, updated_at = $1 WHERE id = $2`, now.UTC(), id); err != nil {
		return fmt.Errorf("delete installation %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM repositories WHERE installation_id = $1`, id); err != nil {
		return fmt.Errorf("delete repositories of installation %d: %w", id, err)
	}
	return nil
}

// UpsertRepos records repositories an installation can see.
func (s *DB) UpsertRepos(ctx context.Context, jtx jobs.Tx, installationID int64, repos []jobs.Repo, now time.Time) error {
	b := &pgx.Batch{}
	for _, r := range repos {
		b.Queue(`
			INSERT INTO repositories (id, installation_id, full_name, private, updated_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO UPDATE SET
				installation_id = excluded.installation_id,
				full_name = excluded.full_name,
				private = excluded.private,
				updated_at = excluded.updated_at`,
			r.ID, installationID, r.FullName, r.Private, now.UTC())
	}
	if err := pgTx(jtx).SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("upsert repositories of installation %d: %w", installationID, err)
	}
	return nil
}

// RemoveRepos forgets repositories an installation no longer sees.
func (s *DB) RemoveRepos(ctx context.Context, jtx jobs.Tx, installationID int64, repos []jobs.Repo) error {
	ids := make([]int64, len(repos))
	for i, r := range repos {
		ids[i] = r.ID
	}
	if _, err := pgTx(jtx).Exec(ctx, `DELETE FROM repositories WHERE installation_id = $1 AND id = ANY($2)`, installationID, ids); err != nil {
		return fmt.Errorf("remove repositories of installation %d: %w", installationID, err)
	}
	return nil
}

// ReplaceRepos makes repos the complete list an installation saw at
// listedAt. A repository recorded after listedAt is kept: a webhook that
// added it was applied while the list was being read.
func (s *DB) ReplaceRepos(ctx context.Context, jtx jobs.Tx, installationID int64, repos []jobs.Repo, listedAt, now time.Time) error {
	if _, err := pgTx(jtx).Exec(ctx, `DELETE FROM repositories WHERE installation_id = $1 AND updated_at < $2`,
		installationID, listedAt.UTC()); err != nil {
		return fmt.Errorf("replace repositories of installation %d: %w", installationID, err)
	}
	return s.UpsertRepos(ctx, jtx, installationID, repos, now)
}

// MarkMissingInstallationsDeleted marks deleted every installation not in
// keep: after a full sync, those are the ones GitHub no longer lists.
func (s *DB) MarkMissingInstallationsDeleted(ctx context.Context, jtx jobs.Tx, keep []int64, now time.Time) error {
	if keep == nil {
		keep = []int64{}
	}
	rows, err := pgTx(jtx).Query(ctx, `SELECT id FROM installations WHERE NOT deleted AND NOT (id = ANY($1))`, keep)
	if err != nil {
		return fmt.Errorf("list installations: %w", err)
	}
	gone, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("list installations: %w", err)
	}
	for _, id := range gone {
		if err := s.DeleteInstallation(ctx, jtx, id, now); err != nil {
			return err
		}
	}
	return nil
}

// Installations lists the inventory, deleted ones included.
func (s *DB) Installations(ctx context.Context) ([]store.Installation, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, account, account_type, repository_selection, suspended, deleted
		FROM installations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list installations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Installation, error) {
		var in store.Installation
		err := r.Scan(&in.ID, &in.Account, &in.AccountType, &in.RepositorySelection, &in.Suspended, &in.Deleted)
		return in, err
	})
}

// Repositories lists the repositories of live installations.
func (s *DB) Repositories(ctx context.Context) ([]store.Repository, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, installation_id, full_name, private FROM repositories ORDER BY full_name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Repository, error) {
		var repo store.Repository
		err := r.Scan(&repo.ID, &repo.InstallationID, &repo.FullName, &repo.Private)
		return repo, err
	})
}
