-- Read budgets and the breach-impact report (docs/audit.md). Keep in step with
-- ../sqlite/0008_read_budgets.sql.
--
-- `reads`: one row per principal, calendar day (UTC, days since 1970) and person revealed to
-- them, the person named by the same keyed pseudonym as in the audit log, with the last clock
-- hour it was revealed in: the distinct persons of a principal today are its rows for the day,
-- those of this hour the rows whose last hour is this one. Each node keeps its principals' rows
-- of the day in memory, decides there, and writes its new rows every quarter of a second (and
-- reads the other nodes' rows as often, on PostgreSQL): the database is what the nodes share.
-- Rows older than two days are deleted.
CREATE TABLE reads (
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    day BIGINT NOT NULL,
    subject BYTEA NOT NULL,
    last_hour BIGINT NOT NULL,
    PRIMARY KEY (principal_id, day, subject)
);

-- A principal locked pending a security officer's review (its read budget crossed, a decoy
-- touched): why. Apart from `locked` (an account disabled by an operator), so that neither
-- clears the other: an officer's unlock does not re-enable a disabled account, and enabling an
-- account does not lift a review lock.
ALTER TABLE principals ADD COLUMN review_lock TEXT;

-- The breach-impact report reads one principal's events at a time, in order.
CREATE INDEX audit_events_principal ON audit_events (principal_id, seq);
