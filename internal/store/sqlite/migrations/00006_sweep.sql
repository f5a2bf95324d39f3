-- +goose Up
-- sweep_state keeps the redelivery sweep's cursor: the newest GitHub hook
-- delivery id a finished sweep saw. The next sweep pages back to it.
CREATE TABLE sweep_state (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

-- redeliveries are the delivery GUIDs changegate asked GitHub to
-- redeliver: each is asked for once.
CREATE TABLE redeliveries (
    guid         TEXT    NOT NULL PRIMARY KEY,
    delivery_id  INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    requested_at TEXT    NOT NULL
) STRICT;

-- +goose Down
DROP TABLE redeliveries;
DROP TABLE sweep_state;
