-- "Who read my data" (docs/audit.md): the audit events naming a person, by their keyed
-- pseudonym, newest first. Keep in step with ../sqlite/0010_access_log.sql.
CREATE INDEX audit_events_subject ON audit_events (subject, seq) WHERE subject IS NOT NULL;
