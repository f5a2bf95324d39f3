-- +goose Up
-- deliveries holds every acknowledged webhook delivery that asked for work.
-- id is the dedupe key: GitHub keeps X-GitHub-Delivery on redelivery.
-- job_args holds the delivery's jobs until a dispatcher, on any replica,
-- has moved them into River's queue (dispatched) in one transaction.
-- processed counts jobs whose effects were committed; a job commits its
-- effects, this count and its own completion in one transaction, so
-- processed never exceeds jobs.
CREATE TABLE deliveries (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    source          text        NOT NULL,
    event           text        NOT NULL,
    action          text        NOT NULL DEFAULT '',
    installation_id bigint      NOT NULL DEFAULT 0,
    repo            text        NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL,
    jobs            integer     NOT NULL,
    job_args        jsonb       NOT NULL,
    dispatched      boolean     NOT NULL DEFAULT false,
    processed       integer     NOT NULL DEFAULT 0,
    processed_at    timestamptz
);
CREATE INDEX deliveries_received_at ON deliveries (received_at);
CREATE INDEX deliveries_undispatched ON deliveries (seq) WHERE NOT dispatched;

CREATE TABLE installations (
    id                   bigint      PRIMARY KEY,
    account              text        NOT NULL,
    account_type         text        NOT NULL,
    repository_selection text        NOT NULL DEFAULT '',
    suspended            boolean     NOT NULL DEFAULT false,
    deleted              boolean     NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL
);

CREATE TABLE repositories (
    id              bigint      PRIMARY KEY,
    installation_id bigint      NOT NULL,
    full_name       text        NOT NULL,
    private         boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX repositories_installation ON repositories (installation_id);
CREATE INDEX repositories_full_name ON repositories (full_name);

-- health is written by /readyz to prove the store takes writes.
CREATE TABLE health (
    id         integer     PRIMARY KEY CHECK (id = 1),
    checked_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE health;
DROP TABLE repositories;
DROP TABLE installations;
DROP TABLE deliveries;
