-- +goose Up
-- record_id is the control_config record whose open exception a loss of
-- enforcement left, for the record that restores it to close.
ALTER TABLE control_state ADD COLUMN record_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE control_state DROP COLUMN record_id;
