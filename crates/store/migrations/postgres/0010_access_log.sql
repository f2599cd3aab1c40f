-- "Who read my data" (docs/audit.md): the audit events naming a person, by their keyed
-- pseudonym. Keep in step with ../sqlite/0010_access_log.sql.
--
-- Not an index on audit_events: a random 16-byte key inserted with every event would cost the
-- gate's audit append about a third of its throughput (docs/performance.md). The sequencer
-- records (pseudonym, entry) here when it seals, sorted, once a second, off the request path;
-- the events not sealed yet are read from the log's tail. Append-only like the log.
CREATE TABLE audit_subjects (
    subject BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (subject, seq)
);
CREATE TRIGGER audit_subjects_no_update BEFORE UPDATE OR DELETE ON audit_subjects
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_subjects_no_truncate BEFORE TRUNCATE ON audit_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
