-- +goose Up
-- deployment_gates holds changegate's answer to each deployment protection
-- rule, written with the job that answered, so that a request is answered
-- once and the deployment's change record can carry the answer.
CREATE TABLE deployment_gates (
    repo          TEXT    NOT NULL,
    deployment_id INTEGER NOT NULL,
    environment   TEXT    NOT NULL,
    sha           TEXT    NOT NULL,
    state         TEXT    NOT NULL, -- approved, rejected
    comment       TEXT    NOT NULL,
    pulls         TEXT    NOT NULL, -- the pull requests judged, comma-separated numbers
    delivery_id   TEXT    NOT NULL,
    answered_at   TEXT    NOT NULL,
    PRIMARY KEY (repo, deployment_id, environment)
) STRICT;

-- deployment_reviews holds who approved or rejected a deployment in
-- GitHub (an environment's required reviewers), for the deployment's
-- change record.
CREATE TABLE deployment_reviews (
    repo        TEXT NOT NULL,
    sha         TEXT NOT NULL,
    environment TEXT NOT NULL,
    state       TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    comment     TEXT NOT NULL,
    at          TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    PRIMARY KEY (delivery_id, environment)
) STRICT;
CREATE INDEX deployment_reviews_sha ON deployment_reviews (repo, sha, environment);

-- merge_groups remembers each merge queue entry changegate checked, so
-- that a pull request's merge record can name the group it merged in.
CREATE TABLE merge_groups (
    repo     TEXT    NOT NULL,
    pr       INTEGER NOT NULL,
    head_sha TEXT    NOT NULL,
    head_ref TEXT    NOT NULL,
    base_sha TEXT    NOT NULL,
    pulls    TEXT    NOT NULL, -- the group's pull requests, comma-separated
    seen     INTEGER NOT NULL, -- order of checking
    PRIMARY KEY (repo, pr, head_sha)
) STRICT;

-- +goose Down
DROP TABLE deployment_reviews;
DROP TABLE merge_groups;
DROP TABLE deployment_gates;
