-- +goose Up
-- The deployment gate's answers and the reviews of deployments, and the
-- merge groups checked.
CREATE TABLE deployment_gates (
    repo          text        NOT NULL,
    deployment_id bigint      NOT NULL,
    environment   text        NOT NULL,
    sha           text        NOT NULL,
    state         text        NOT NULL, -- approved, rejected
    comment       text        NOT NULL,
    pulls         integer[]   NOT NULL, -- the pull requests judged
    delivery_id   text        NOT NULL,
    answered_at   timestamptz NOT NULL,
    PRIMARY KEY (repo, deployment_id, environment)
);

CREATE TABLE deployment_reviews (
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    repo        text        NOT NULL,
    sha         text        NOT NULL,
    environment text        NOT NULL,
    state       text        NOT NULL,
    reviewer    text        NOT NULL,
    comment     text        NOT NULL,
    at          timestamptz NOT NULL,
    delivery_id text        NOT NULL,
    PRIMARY KEY (delivery_id, environment)
);
CREATE INDEX deployment_reviews_sha ON deployment_reviews (repo, sha, environment);

CREATE TABLE merge_groups (
    repo     text      NOT NULL,
    pr       integer   NOT NULL,
    head_sha text      NOT NULL,
    head_ref text      NOT NULL,
    base_sha text      NOT NULL,
    pulls    integer[] NOT NULL, -- the group's pull requests
    seen     bigint    GENERATED ALWAYS AS IDENTITY, -- order of checking
    PRIMARY KEY (repo, pr, head_sha)
);

-- The redelivery sweep's cursor and what it asked GitHub for.
CREATE TABLE sweep_state (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);
CREATE TABLE redeliveries (
    guid         text        PRIMARY KEY,
    delivery_id  bigint      NOT NULL,
    event        text        NOT NULL,
    requested_at timestamptz NOT NULL
);

-- Reconciliation: how far each production branch was walked, and the
-- commits a direct-push record covers.
CREATE TABLE reconcile_points (
    repo   text        NOT NULL,
    branch text        NOT NULL,
    sha    text        NOT NULL,
    at     timestamptz NOT NULL,
    PRIMARY KEY (repo, branch)
);
CREATE TABLE pushed_commits (
    repo      text NOT NULL,
    sha       text NOT NULL,
    record_id text NOT NULL,
    PRIMARY KEY (repo, sha)
);

-- Whether changegate's check or gate is enforced on each target.
CREATE TABLE control_state (
    repo       text        NOT NULL,
    target     text        NOT NULL, -- branch:NAME or environment:NAME
    enforced   boolean     NOT NULL,
    detail     text        NOT NULL,
    since      timestamptz NOT NULL,
    checked_at timestamptz NOT NULL,
    record_id  text        NOT NULL DEFAULT '',
    PRIMARY KEY (repo, target)
);

-- server_state is what a server remembers across its restarts.
CREATE TABLE server_state (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- +goose Down
DROP TABLE server_state;
DROP TABLE control_state;
DROP TABLE pushed_commits;
DROP TABLE reconcile_points;
DROP TABLE redeliveries;
DROP TABLE sweep_state;
DROP TABLE merge_groups;
DROP TABLE deployment_reviews;
DROP TABLE deployment_gates;
