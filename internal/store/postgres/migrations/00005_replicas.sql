-- +goose Up
-- replicas are the processes sharing this database, by River client id,
-- with when each last said it was alive: the jobs a dead one left running
-- are made available again.
CREATE TABLE replicas (
    id      text        PRIMARY KEY,
    seen_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE replicas;
