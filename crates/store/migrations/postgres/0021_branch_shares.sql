-- A declaration's employer and employee shares by branch (12 little-endian i64, in
-- `Branch::ALL` order), so that a rectification takes back exactly what was allocated; NULL
-- for the declarations accepted before, whose entries credit the branches themselves.
ALTER TABLE declarations ADD COLUMN branch_shares BYTEA;
