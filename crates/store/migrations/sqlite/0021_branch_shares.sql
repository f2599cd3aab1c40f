-- A declaration's employer and employee shares by branch (12 little-endian i64, in
-- `Branch::ALL` order), so that a rectification takes back exactly what its declaration's
-- commit allocated to the branches (0020). NULL for the declarations accepted before, whose
-- ledger entries credit the branches themselves.
ALTER TABLE declarations ADD COLUMN branch_shares BLOB;
-- As immutable as the rest of the declaration (PostgreSQL's trigger compares whole rows).
CREATE TRIGGER declarations_branch_shares_immutable BEFORE UPDATE OF branch_shares ON declarations
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
