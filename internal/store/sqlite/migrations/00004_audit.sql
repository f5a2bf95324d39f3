-- +goose Up
-- The auditor's columns: each record's event time (fixed-width UTC, so that
-- text order is time order) and its summary (evidence.SummaryJSON), the
-- fields of its population row. ledger_links lets a population find the
-- deployment records that link a change.
--
-- Existing rows lack both, and the index is derived: it is emptied here and
-- ledger.Open re-indexes every record from the signed blobs at start-up.
DELETE FROM ledger_records;
ALTER TABLE ledger_records ADD COLUMN event_time TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger_records ADD COLUMN summary TEXT NOT NULL DEFAULT '';
CREATE INDEX ledger_records_event ON ledger_records (event_time);
-- The records that close another's exception: few, and read by every
-- population.
CREATE INDEX ledger_records_closes ON ledger_records (closes) WHERE closes != '';

CREATE TABLE ledger_links (
    link       TEXT    NOT NULL, -- the id of the record linked to
    seq        INTEGER NOT NULL, -- the linking record
    event_time TEXT    NOT NULL, -- the linking record's event time
    PRIMARY KEY (link, seq)
) STRICT, WITHOUT ROWID;

-- ledger_leaves holds the leaf hashes of each batch of records indexed
-- together, concatenated (32 bytes each): an export reads the leaves of a
-- million records as some thousands of rows rather than a million.
CREATE TABLE ledger_leaves (
    first  INTEGER NOT NULL PRIMARY KEY, -- seq of the batch's first record
    hashes BLOB    NOT NULL
) STRICT;

-- +goose Down
DROP TABLE ledger_leaves;
DROP TABLE ledger_links;
DROP INDEX ledger_records_closes;
DROP INDEX ledger_records_event;
ALTER TABLE ledger_records DROP COLUMN summary;
ALTER TABLE ledger_records DROP COLUMN event_time;
