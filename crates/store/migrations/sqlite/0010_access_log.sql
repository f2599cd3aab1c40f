-- "Who read my data" (docs/audit.md): the audit events naming a person, by their keyed
-- pseudonym. Keep in step with ../postgres/0010_access_log.sql.
--
-- Not an index on audit_events: a random 16-byte key inserted with every event costs the
-- gate's audit append about a third of its throughput (docs/performance.md). The sequencer
-- records (bucket, entry, pseudonym) here in bulk when it seals, every ten seconds or 100 000
-- entries, off the request path (audit_subjects_upto: up to which entry):
-- the bucket is the pseudonym's first two bytes modulo 1024 (crates/store/src/audit_log.rs), so
-- sealing appends at the end of at most 1024 places, whatever the table's size, and a person's
-- accesses are read from their bucket backwards, newest first. Later events are read from the
-- log's tail. Append-only like the log.
CREATE TABLE tree.audit_subjects (
    bucket BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    subject BLOB NOT NULL,
    PRIMARY KEY (bucket, seq)
) WITHOUT ROWID;
CREATE TRIGGER tree.audit_subjects_no_update BEFORE UPDATE ON audit_subjects
BEGIN SELECT RAISE(ABORT, 'audit_subjects is append-only'); END;
CREATE TRIGGER tree.audit_subjects_no_delete BEFORE DELETE ON audit_subjects
BEGIN SELECT RAISE(ABORT, 'audit_subjects is append-only'); END;
CREATE TABLE tree.audit_subjects_upto (seq BIGINT PRIMARY KEY NOT NULL);
CREATE TRIGGER tree.audit_subjects_upto_no_update BEFORE UPDATE ON audit_subjects_upto
BEGIN SELECT RAISE(ABORT, 'audit_subjects_upto is append-only'); END;
CREATE TRIGGER tree.audit_subjects_upto_no_delete BEFORE DELETE ON audit_subjects_upto
BEGIN SELECT RAISE(ABORT, 'audit_subjects_upto is append-only'); END;
