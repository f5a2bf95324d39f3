-- +goose Up
-- deliveries holds every acknowledged webhook delivery that asked for work.
-- id is the dedupe key: GitHub keeps X-GitHub-Delivery on
-- redelivery. job_args holds the delivery's jobs until the dispatcher has
-- moved them into River's queue (dispatched = 1) in one transaction.
-- processed counts jobs whose effects were committed; a job commits its
-- effects, this count and its own completion in one transaction, so
-- processed never exceeds jobs.
CREATE TABLE deliveries (
    seq             INTEGER NOT NULL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    source          TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    action          TEXT    NOT NULL DEFAULT '',
    installation_id INTEGER NOT NULL DEFAULT 0,
    repo            TEXT    NOT NULL DEFAULT '',
    received_at     TEXT    NOT NULL,
    jobs            INTEGER NOT NULL,
    job_args        TEXT    NOT NULL,
    dispatched      INTEGER NOT NULL DEFAULT 0,
    processed       INTEGER NOT NULL DEFAULT 0,
    processed_at    TEXT
) STRICT;
CREATE INDEX deliveries_received_at ON deliveries (received_at);
CREATE INDEX deliveries_undispatched ON deliveries (seq) WHERE dispatched = 0;

CREATE TABLE installations (
    id                   INTEGER NOT NULL PRIMARY KEY,
    account              TEXT    NOT NULL,
    account_type         TEXT    NOT NULL,
    repository_selection TEXT    NOT NULL DEFAULT '',
    suspended            INTEGER NOT NULL DEFAULT 0,
    deleted              INTEGER NOT NULL DEFAULT 0,
    updated_at           TEXT    NOT NULL
) STRICT;

CREATE TABLE repositories (
    id              INTEGER NOT NULL PRIMARY KEY,
    installation_id INTEGER NOT NULL,
    full_name       TEXT    NOT NULL,
    private         INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT    NOT NULL
) STRICT;
CREATE INDEX repositories_installation ON repositories (installation_id);
CREATE INDEX repositories_full_name ON repositories (full_name);

-- health is written by /readyz to prove the store takes writes.
CREATE TABLE health (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    checked_at TEXT    NOT NULL
) STRICT;

-- +goose Down
DROP TABLE health;
DROP TABLE repositories;
DROP TABLE installations;
DROP TABLE deliveries;
