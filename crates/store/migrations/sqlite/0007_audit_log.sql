-- The audit log as a verifiable Merkle tree (docs/audit.md). Keep in step with
-- ../postgres/0007_audit_log.sql.
--
-- Events are numbered densely from 1 (`seq`) in the order they commit (SQLite: the rowid of an
-- append-only table with a single writer); event N is leaf N - 1 of an RFC 6962 tree. The
-- sequencer integrates the events after the last checkpoint: each one's leaf hash, then the
-- checkpoint (size, root, the right edge of the tree to continue from, and the note signed with
-- a key that is not in the database; the same note is appended to the witness file). The
-- verifier recomputes every leaf from the events and every root from the leaves, so neither
-- table is trusted: they make proofs cheap and name the first entry that no longer matches.
-- They live in their own file (`audit-tree.db`, attached as `tree` by the store): sealing then
-- never holds the write lock of `audit.db`, which every audited request appends to.
CREATE TABLE tree.audit_leaves (
    seq INTEGER PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL
);

CREATE TABLE tree.audit_checkpoints (
    size INTEGER PRIMARY KEY NOT NULL,
    root BLOB NOT NULL,
    frontier BLOB NOT NULL,
    note TEXT NOT NULL,
    at BIGINT NOT NULL
);

CREATE TRIGGER tree.audit_leaves_no_update BEFORE UPDATE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only'); END;
CREATE TRIGGER tree.audit_leaves_no_delete BEFORE DELETE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only'); END;
CREATE TRIGGER tree.audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER tree.audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
