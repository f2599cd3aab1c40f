-- Read budgets and the breach-impact report (docs/audit.md). Keep in step with ../postgres/0008_read_budgets.sql.
--
-- One row per principal, clock hour (UTC, hours since 1970) and person revealed to them, the
-- person named by the same keyed pseudonym as in the audit log. The gate counts the distinct
-- persons of the current hour and of the current day before it reveals anything; counting in
-- the database makes every node share the budget. Rows older than two days are deleted.
CREATE TABLE reads (
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    hour BIGINT NOT NULL,
    subject BLOB NOT NULL,
    PRIMARY KEY (principal_id, hour, subject)
) WITHOUT ROWID;
CREATE INDEX reads_hour ON reads (hour);

-- The breach-impact report reads one principal's events at a time, in order.
CREATE INDEX audit.audit_events_principal ON audit_events (principal_id, seq);
