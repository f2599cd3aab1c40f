-- "Who read my data" (docs/audit.md): the audit events naming a person, by their keyed
-- pseudonym. Keep in step with ../sqlite/0010_access_log.sql.
--
-- Not an index on audit_events: a random 16-byte key inserted with every event costs the
-- gate's audit append about a third of its throughput (docs/performance.md). The sequencer
-- records (bucket, entry, pseudonym) here in bulk when it seals, every ten seconds or 100 000
-- entries, off the request path (audit_subjects_upto: up to which entry):
-- the bucket is the pseudonym's first two bytes modulo 1024 (crates/store/src/audit_log.rs), so
-- sealing appends at the end of at most 1024 places, whatever the table's size, and a person's
-- accesses are read from their bucket backwards, newest first. Later events are read from the
-- log's tail. Append-only like the log.
CREATE TABLE audit_subjects (
    bucket BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    subject BYTEA NOT NULL,
    PRIMARY KEY (bucket, seq)
);
CREATE TRIGGER audit_subjects_no_update BEFORE UPDATE OR DELETE ON audit_subjects
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_subjects_no_truncate BEFORE TRUNCATE ON audit_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TABLE audit_subjects_upto (seq BIGINT PRIMARY KEY NOT NULL);
CREATE TRIGGER audit_subjects_upto_no_update BEFORE UPDATE OR DELETE ON audit_subjects_upto
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_subjects_upto_no_truncate BEFORE TRUNCATE ON audit_subjects_upto
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
