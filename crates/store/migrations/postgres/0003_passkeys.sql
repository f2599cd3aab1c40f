-- WebAuthn ceremonies in progress (registration or authentication), so that any node can finish
-- what another started. `state` is webauthn-rs's serialised state (the challenge and what it
-- expects; no secret once the challenge was sent). Used once, within five minutes.
CREATE TABLE passkey_ceremonies (
    flow_hash BYTEA PRIMARY KEY NOT NULL,
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
