-- +goose Up
-- reconcile_points is, per repository and production branch, the newest
-- commit reconciliation has checked: the next run walks back to it.
CREATE TABLE reconcile_points (
    repo   TEXT NOT NULL,
    branch TEXT NOT NULL,
    sha    TEXT NOT NULL,
    at     TEXT NOT NULL,
    PRIMARY KEY (repo, branch)
) STRICT;

-- pushed_commits are the commits a direct-push record covers beside its
-- head (ledger_records.sha): a push may carry several.
CREATE TABLE pushed_commits (
    repo      TEXT NOT NULL,
    sha       TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (repo, sha)
) STRICT;

-- +goose Down
DROP TABLE pushed_commits;
DROP TABLE reconcile_points;
