-- +goose Up
-- pull_requests indexes the pull requests changegate has evaluated, so that
-- an event about a commit (check run, status, deployment) or a Jira issue
-- finds every open pull request it affects without calling GitHub.
CREATE TABLE pull_requests (
    repo            TEXT    NOT NULL,
    number          INTEGER NOT NULL,
    installation_id INTEGER NOT NULL,
    head_sha        TEXT    NOT NULL,
    base_ref        TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    -- when the latest evaluation started: a queued evaluation triggered
    -- before it is redundant, because that one read fresher facts.
    evaluated_at    TEXT,
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (repo, number)
) STRICT;
CREATE INDEX pull_requests_open_head ON pull_requests (repo, head_sha) WHERE state = 'open';

-- pull_request_keys links open pull requests to the Jira keys they name.
CREATE TABLE pull_request_keys (
    key    TEXT    NOT NULL,
    repo   TEXT    NOT NULL,
    number INTEGER NOT NULL,
    PRIMARY KEY (key, repo, number)
) STRICT;
CREATE INDEX pull_request_keys_pr ON pull_request_keys (repo, number);

-- check_runs remembers the changegate check run on each head commit and
-- the digest of what was last written, so unchanged decisions write nothing.
CREATE TABLE check_runs (
    repo         TEXT    NOT NULL,
    sha          TEXT    NOT NULL,
    check_run_id INTEGER NOT NULL,
    digest       TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (repo, sha)
) STRICT;

-- +goose Down
DROP TABLE check_runs;
DROP TABLE pull_request_keys;
DROP TABLE pull_requests;
