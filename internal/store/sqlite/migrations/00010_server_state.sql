-- +goose Up
-- server_state keeps small facts about past starts, such as whether the
-- last one had App credentials.
CREATE TABLE server_state (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE server_state;
