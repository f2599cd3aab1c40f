-- daman registry schema, SQLite (the registry in daman.db, the audit log in audit.db). Keep in step with ../postgres/0001_registry.sql:
-- the test `schemas_do_not_drift` compares the two.
-- Personal fields are BLOB ciphertexts (vault format v1); *_bidx are keyed blind indexes.

CREATE TABLE data_keys (
    id BIGINT PRIMARY KEY NOT NULL,
    wrapped BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE counters (
    name TEXT PRIMARY KEY NOT NULL,
    next_value BIGINT NOT NULL
);
INSERT INTO counters (name, next_value) VALUES ('affiliate_number', 1000001), ('immatriculation', 100000001);

CREATE TABLE employers (
    id BIGINT PRIMARY KEY NOT NULL,
    affiliate_number BIGINT NOT NULL UNIQUE,
    ice TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    activity TEXT NOT NULL,
    city TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- INTEGER PRIMARY KEY: the id is the rowid, so a lookup through an index reaches the row in
-- one B-tree search.
CREATE TABLE persons (
    id INTEGER PRIMARY KEY NOT NULL,
    immatriculation_bidx BLOB NOT NULL UNIQUE,
    cin_bidx BLOB NOT NULL UNIQUE,
    immatriculation BLOB NOT NULL,
    cin BLOB NOT NULL,
    last_name BLOB NOT NULL,
    first_name BLOB NOT NULL,
    last_name_ar BLOB NOT NULL,
    first_name_ar BLOB NOT NULL,
    birth_date BLOB NOT NULL,
    phone BLOB,
    email BLOB,
    address BLOB,
    rib BLOB,
    children BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE employments (
    id BIGINT PRIMARY KEY NOT NULL,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    start_date TEXT NOT NULL,
    end_date TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (employer_id, person_id, start_date)
);
CREATE INDEX employments_person ON employments (person_id, employer_id);

CREATE TABLE principals (
    id BIGINT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL,
    label TEXT NOT NULL UNIQUE,
    person_id BIGINT REFERENCES persons (id),
    employer_id BIGINT REFERENCES employers (id),
    locked BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

-- An agent's case on a person: it opens full reads for case review, for a limited time. The
-- reason is free text an agent types (it may name the person): stored encrypted.
CREATE TABLE cases (
    id BIGINT PRIMARY KEY NOT NULL,
    agent_id BIGINT NOT NULL REFERENCES principals (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    reason BLOB NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX cases_agent_person ON cases (agent_id, person_id);

-- Append-only: every reveal, denial, lookup and registry change. Subjects are keyed pseudonyms;
-- `fields` is the bit mask of the personal fields concerned (bit i = i-th field of PersonField::ALL:
-- immatriculation, cin, last_name, first_name, last_name_ar, first_name_ar, birth_date, phone,
-- email, address, rib, children); `detail` says more where needed (e.g. how many were registered).
-- In its own file (audit.db, attached as `audit` by the store on every connection). Rows are
-- never deleted (triggers below), so the rowid `seq` only grows.
CREATE TABLE audit.audit_events (
    seq INTEGER PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    principal_id BIGINT,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT,
    subject BLOB,
    fields BIGINT NOT NULL,
    detail TEXT,
    outcome TEXT NOT NULL,
    request_id TEXT NOT NULL
);

CREATE TRIGGER audit.audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit.audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
