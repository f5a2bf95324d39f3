-- +goose Up
-- ledger_records is the queryable index of the evidence log. The blobs and
-- the log are the truth; this table can be rebuilt from them and verify
-- compares the two.
CREATE TABLE ledger_records (
    seq             INTEGER NOT NULL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    repo            TEXT    NOT NULL,
    pr              TEXT    NOT NULL,
    sha             TEXT    NOT NULL,
    change_type     TEXT    NOT NULL,
    merged_at       TEXT    NOT NULL,
    observed_at     TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    compliant       TEXT    NOT NULL,
    ticket          TEXT    NOT NULL,
    exception       TEXT    NOT NULL,
    exception_due   TEXT    NOT NULL,
    closes          TEXT    NOT NULL,
    exception_state TEXT    NOT NULL,
    leaf_hash       TEXT    NOT NULL,
    UNIQUE (repo, sha, change_type, closes)
) STRICT;
CREATE INDEX ledger_records_observed ON ledger_records (observed_at);
CREATE INDEX ledger_records_repo ON ledger_records (repo, merged_at);

-- +goose Down
DROP TABLE ledger_records;
