-- "Who read my data" (docs/audit.md): the audit events naming a person, by their keyed
-- pseudonym. Keep in step with ../postgres/0010_access_log.sql.
--
-- Not an index on audit_events: a random 16-byte key inserted with every event would cost the
-- gate's audit append about a third of its throughput (docs/performance.md). The sequencer
-- records (pseudonym, entry) here when it seals, sorted, once a second, off the request path;
-- the events not sealed yet are read from the log's tail. Append-only like the log.
CREATE TABLE tree.audit_subjects (
    subject BLOB NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (subject, seq)
) WITHOUT ROWID;
CREATE TRIGGER tree.audit_subjects_no_update BEFORE UPDATE ON audit_subjects
BEGIN SELECT RAISE(ABORT, 'audit_subjects is append-only'); END;
CREATE TRIGGER tree.audit_subjects_no_delete BEFORE DELETE ON audit_subjects
BEGIN SELECT RAISE(ABORT, 'audit_subjects is append-only'); END;
