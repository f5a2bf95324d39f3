-- +goose Up
-- control_state is whether changegate is enforced on each production
-- branch and environment, as the last watch saw it, and since when.
CREATE TABLE control_state (
    repo       TEXT    NOT NULL,
    target     TEXT    NOT NULL, -- branch:NAME or environment:NAME
    enforced   INTEGER NOT NULL,
    detail     TEXT    NOT NULL,
    since      TEXT    NOT NULL,
    checked_at TEXT    NOT NULL,
    PRIMARY KEY (repo, target)
) STRICT;

-- +goose Down
DROP TABLE control_state;
