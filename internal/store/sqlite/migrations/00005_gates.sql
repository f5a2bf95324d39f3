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

-- +goose Down
DROP TABLE deployment_gates;
