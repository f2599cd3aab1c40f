-- Fewer writes per imported declaration (docs/performance.md). Keep in step with
-- ../postgres/0012_lean_import.sql.
--
-- A re-sent file is now recognised through the accepted declaration of the same employer,
-- period and form (found anyway by the import) and compared by digest: the unique index of
-- digests, a random key written with every declaration, is no longer needed.
DROP INDEX declarations_digest;

-- The postings, clustered on their key: one B-tree instead of a rowid table and its index.
-- Thirteen postings are written with every declaration.
CREATE TABLE ledger_postings_clustered (
    entry_id BIGINT NOT NULL REFERENCES ledger_entries (id),
    account TEXT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (entry_id, account)
) WITHOUT ROWID;
INSERT INTO ledger_postings_clustered (entry_id, account, amount)
    SELECT entry_id, account, amount FROM ledger_postings ORDER BY entry_id, account;
DROP TABLE ledger_postings;
ALTER TABLE ledger_postings_clustered RENAME TO ledger_postings;

-- Money movements are never edited: a correction is a new entry.
CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
