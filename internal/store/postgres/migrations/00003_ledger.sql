-- +goose Up
-- ledger_records indexes the evidence log: one row per record, its
-- queryable fields as the evidence package names them (text, as in the
-- embedded store), derived from the signed records and rebuilt from them
-- by audit reindex.
CREATE TABLE ledger_records (
    seq             bigint PRIMARY KEY,
    id              text   NOT NULL UNIQUE,
    repo            text   NOT NULL,
    pr              text   NOT NULL,
    sha             text   NOT NULL,
    change_type     text   NOT NULL,
    merged_at       text   NOT NULL,
    observed_at     text   NOT NULL,
    outcome         text   NOT NULL,
    compliant       text   NOT NULL,
    ticket          text   NOT NULL,
    exception       text   NOT NULL,
    exception_due   text   NOT NULL,
    closes          text   NOT NULL,
    exception_state text   NOT NULL,
    event_time      text   NOT NULL DEFAULT '',
    summary         text   NOT NULL DEFAULT '',
    leaf_hash       text   NOT NULL,
    UNIQUE (repo, sha, change_type, closes)
);
CREATE INDEX ledger_records_observed ON ledger_records (observed_at);
CREATE INDEX ledger_records_repo ON ledger_records (repo, merged_at);
CREATE INDEX ledger_records_event ON ledger_records (event_time, seq);
CREATE INDEX ledger_records_closes ON ledger_records (closes) WHERE closes <> '';
CREATE INDEX ledger_records_commit ON ledger_records (repo, sha);

-- ledger_links: which records link which (a deployment's change records).
CREATE TABLE ledger_links (
    link       text   NOT NULL, -- the id of the record linked to
    seq        bigint NOT NULL, -- the linking record
    event_time text   NOT NULL, -- the linking record's event time
    PRIMARY KEY (link, seq)
);

-- ledger_leaves holds the leaf hashes of each batch of records indexed,
-- so that a replica rebuilds the tree without reading the blobs.
CREATE TABLE ledger_leaves (
    first  bigint PRIMARY KEY, -- seq of the batch's first record
    hashes bytea  NOT NULL
);

-- +goose Down
DROP TABLE ledger_leaves;
DROP TABLE ledger_links;
DROP TABLE ledger_records;
