-- E-ID logins in progress: between the redirect to the provider and its callback. Keyed by the
-- hash of the OAuth `state`; `secret` holds the nonce and the PKCE verifier, encrypted (vault
-- format v1, AAD bound to this row). Used once, within ten minutes.
CREATE TABLE eid_flows (
    id BIGINT PRIMARY KEY NOT NULL,
    state_hash BYTEA NOT NULL UNIQUE,
    secret BYTEA NOT NULL,
    client TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- For the hourly purge of what expired.
CREATE INDEX eid_flows_expiry ON eid_flows (expires_at);
CREATE INDEX otp_codes_expiry ON otp_codes (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX login_throttle_last ON login_throttle (last_failure_at);

-- When each person's phone on record (or login phone) last changed: a RIB change is refused for a
-- while after one, since its notice goes to that phone.
CREATE TABLE phone_changes (
    person_id BIGINT PRIMARY KEY NOT NULL REFERENCES persons (id),
    changed_at BIGINT NOT NULL
);
