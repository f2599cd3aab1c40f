-- A declaration's ledger entry is two postings (the employer's receivable, and
-- `contribution:declared`); each transaction that accepts declarations allocates what they
-- declared to the branches in one entry a period, which belongs to no one employer
-- (../sqlite/0020_ledger_allocations.sql, docs/declarations.md).
ALTER TABLE ledger_entries ALTER COLUMN employer_id DROP NOT NULL;
