-- +goose Up
-- pull_requests indexes the pull requests changegate has evaluated, so that
-- an event about a commit (check run, status, deployment) or a Jira issue
-- finds every open pull request it affects without calling GitHub.
CREATE TABLE pull_requests (
    repo            text        NOT NULL,
    number          integer     NOT NULL,
    installation_id bigint      NOT NULL,
    head_sha        text        NOT NULL,
    base_ref        text        NOT NULL,
    state           text        NOT NULL,
    -- when the latest evaluation started: a queued evaluation triggered
    -- before it is redundant, because that one read fresher facts.
    evaluated_at    timestamptz,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (repo, number)
);
CREATE INDEX pull_requests_open_head ON pull_requests (repo, head_sha) WHERE state = 'open';
CREATE INDEX pull_requests_open_owner ON pull_requests (installation_id, lower(split_part(repo, '/', 1))) WHERE state = 'open';

-- pull_request_keys links open pull requests to the Jira keys they name.
CREATE TABLE pull_request_keys (
    key    text    NOT NULL,
    repo   text    NOT NULL,
    number integer NOT NULL,
    PRIMARY KEY (key, repo, number)
);
CREATE INDEX pull_request_keys_pr ON pull_request_keys (repo, number);

-- check_runs remembers the changegate check run on each head commit and
-- the digest of what was last written, so unchanged decisions write nothing.
CREATE TABLE check_runs (
    repo         text        NOT NULL,
    sha          text        NOT NULL,
    check_run_id bigint      NOT NULL,
    digest       text        NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (repo, sha)
);

-- +goose Down
DROP TABLE check_runs;
DROP TABLE pull_request_keys;
DROP TABLE pull_requests;
