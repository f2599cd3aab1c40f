-- no-transaction
-- A declaration's ledger entry is two postings (the employer's receivable, and
-- `contribution:declared`, what is declared and not yet allocated to a branch); each
-- transaction that accepts declarations allocates what they declared to the branches in one
-- entry a period (docs/declarations.md). Ten postings a declaration were five million rows a
-- month, the largest part of an import's writing (docs/performance.md).
--
-- An allocation belongs to no one employer, so `ledger_entries.employer_id` may be NULL. SQLite
-- cannot drop a NOT NULL in place: the table is rebuilt, with foreign keys off while the old one
-- is dropped (postings and payments refer to it by name, and keep referring to the new one), in
-- a transaction of its own. Run again after a crash between its commit and sqlx's record of it,
-- it rebuilds the table once more, to the same result (so nothing else is in this file:
-- 0021 adds the declarations' branch shares).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE ledger_entries_allocated (
    id BIGINT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    employer_id BIGINT REFERENCES employers (id),
    period BIGINT NOT NULL,
    at BIGINT NOT NULL
);
INSERT INTO ledger_entries_allocated (id, key, kind, employer_id, period, at)
    SELECT id, key, kind, employer_id, period, at FROM ledger_entries ORDER BY id;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_allocated RENAME TO ledger_entries;
CREATE INDEX ledger_entries_employer ON ledger_entries (employer_id, period);
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
COMMIT;
PRAGMA foreign_keys = ON;
