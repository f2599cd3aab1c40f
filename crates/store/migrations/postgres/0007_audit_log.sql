-- The audit log as a verifiable Merkle tree (docs/audit.md). Keep in step with
-- ../sqlite/0007_audit_log.sql.
--
-- Events are numbered densely from 1 (`seq`) in the order they commit: an identity column
-- leaves gaps (a rolled-back insert) and commits out of order across nodes, so the writer now
-- numbers each group itself under a transaction-scoped advisory lock (Session::append_audit).
-- Event N is leaf N - 1 of an RFC 6962 tree. The sequencer (the node holding the sequencer's
-- advisory lock) integrates the events after the last checkpoint: each one's leaf hash, then
-- the checkpoint (size, root, the right edge of the tree to continue from, and the note signed
-- with a key that is not in the database; the same note is appended to the witness file). The
-- verifier recomputes every leaf from the events and every root from the leaves, so neither
-- table is trusted: they make proofs cheap and name the first entry that no longer matches.
ALTER TABLE audit_events ALTER COLUMN seq DROP IDENTITY;

-- Rows appended before this migration were numbered by the identity, which leaves gaps (a
-- rolled-back insert, a sequence cache lost in a crash): renumber them densely, in order
-- (through negative numbers, so no two rows ever share one).
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
UPDATE audit_events SET seq = -r.n
    FROM (SELECT seq AS old, row_number() OVER (ORDER BY seq) AS n FROM audit_events) AS r
    WHERE audit_events.seq = r.old;
UPDATE audit_events SET seq = -seq;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update;

CREATE TABLE audit_leaves (
    seq BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);

CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL,
    frontier BYTEA NOT NULL,
    note TEXT NOT NULL,
    at BIGINT NOT NULL
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE OR DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
