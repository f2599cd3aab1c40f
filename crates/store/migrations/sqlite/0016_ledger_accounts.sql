-- Ledger postings name their account by a number from ledger_accounts instead of repeating its
-- name (`contribution:long_term:employer`, ...) in each of the 13 postings of every declaration:
-- a posting is a third of the size, and the ledger the largest part of an import's writes
-- (docs/performance.md). The names are unchanged and read through the join. Keep in step with
-- ../postgres/0016_ledger_accounts.sql.
CREATE TABLE ledger_accounts (
    id INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO ledger_accounts (name) SELECT DISTINCT account FROM ledger_postings ORDER BY account;

CREATE TABLE ledger_postings_by_account_id (
    entry_id BIGINT NOT NULL REFERENCES ledger_entries (id),
    account_id BIGINT NOT NULL REFERENCES ledger_accounts (id),
    amount BIGINT NOT NULL,
    PRIMARY KEY (entry_id, account_id)
) WITHOUT ROWID;
INSERT INTO ledger_postings_by_account_id (entry_id, account_id, amount)
    SELECT p.entry_id, a.id, p.amount FROM ledger_postings p JOIN ledger_accounts a ON a.name = p.account
    ORDER BY p.entry_id, a.id;
DROP TABLE ledger_postings;
ALTER TABLE ledger_postings_by_account_id RENAME TO ledger_postings;

CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_accounts_no_update BEFORE UPDATE ON ledger_accounts
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
