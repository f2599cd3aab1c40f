-- daman authentication schema, SQLite. Keep in step with ../postgres/0002_auth.sql.
-- No secret is stored usable: passwords as peppered Argon2id PHC strings, tokens and one-time
-- codes as hashes or MACs, login names as blind indexes, phone numbers, TOTP seeds and RIBs
-- encrypted (vault format v1, AAD bound to table, column and row id).

-- A principal's login. Disabling an account is locking its principal.
CREATE TABLE accounts (
    principal_id BIGINT PRIMARY KEY NOT NULL REFERENCES principals (id),
    login_bidx BLOB NOT NULL UNIQUE,
    password_hash TEXT,
    is_admin BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Consecutive failed logins per login name, whether or not an account has that name.
CREATE TABLE login_throttle (
    login_bidx BLOB PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL
);

-- Second factors: kind sms (secret = phone number), totp (secret = seed), passkey.
CREATE TABLE factors (
    id BIGINT PRIMARY KEY NOT NULL,
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    kind TEXT NOT NULL,
    secret BLOB NOT NULL,
    last_step BIGINT NOT NULL,
    confirmed BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX factors_principal ON factors (principal_id);

-- SMS one-time codes, as MACs bound to their flow (a pending login, an enrolment, a step-up).
CREATE TABLE otp_codes (
    id BIGINT PRIMARY KEY NOT NULL,
    flow_hash BLOB NOT NULL,
    code_mac BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX otp_codes_flow ON otp_codes (flow_hash);

-- Every SMS sent, for the per-number and global limits (each SMS costs money).
CREATE TABLE sms_sends (
    id INTEGER PRIMARY KEY NOT NULL,
    phone_bidx BLOB NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX sms_sends_phone ON sms_sends (phone_bidx, at);
CREATE INDEX sms_sends_at ON sms_sends (at);

-- Sessions by token hash. stage: 'pending' (password checked, second factor awaited) or 'full'.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    stage TEXT NOT NULL,
    method TEXT NOT NULL,
    idle_seconds BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    step_up_at BIGINT,
    ended_at BIGINT,
    end_reason TEXT
);
CREATE INDEX sessions_principal ON sessions (principal_id);

-- Accounts being created: an insured person proving the phone on record, or an invited user.
CREATE TABLE enrolments (
    id BIGINT PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    person_id BIGINT REFERENCES persons (id),
    employer_id BIGINT REFERENCES employers (id),
    is_admin BOOLEAN NOT NULL,
    login_bidx BLOB NOT NULL,
    phone BLOB,
    password_hash TEXT,
    failures BIGINT NOT NULL,
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- RIB changes wait out a cooling-off period and can be cancelled from the notice.
CREATE TABLE rib_changes (
    id BIGINT PRIMARY KEY NOT NULL,
    person_id BIGINT NOT NULL REFERENCES persons (id),
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    rib BLOB NOT NULL,
    cancel_hash BLOB NOT NULL UNIQUE,
    requested_at BIGINT NOT NULL,
    effective_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    applied_at BIGINT
);
CREATE INDEX rib_changes_due ON rib_changes (effective_at);
