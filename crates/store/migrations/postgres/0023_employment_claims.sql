-- An employer's claim that a person works for it, made by an entrant line (B04/E04) or by an
-- employer user's link, and decided by someone else (docs/declarations.md, "Entrants"):
--   kind 'link'    the declared number, CIN and name are one registered person's; that person
--                  (or an agent within a case on them) confirms or refuses;
--   kind 'request' anything else: a pending immatriculation request that an agent decides
--                  (a new person, or a registered one within a case on them), or refuses.
-- Until it is confirmed nothing links the person to the employer: the entrant's line is kept in
-- the declaration's blocks under the claim (directory id -id), not under a person, so no
-- career, préétabli or read of the employer shows the registry's data. Confirming creates the
-- employment from start_date and sets person_id (a request); the state moves once, from
-- 'pending', and only the application's UPDATE ... WHERE state = 'pending' moves it.
-- 'withdrawn': the declaration that made it was rectified before it was decided.
-- cin_bidx is the declared CIN's blind index (the same key as persons.cin_bidx), declared the
-- CIN and name as declared, sealed and bound to the row. Keep in step with
-- ../sqlite/0023_employment_claims.sql.
CREATE TABLE employment_claims (
    id BIGINT PRIMARY KEY NOT NULL,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    kind TEXT NOT NULL CHECK (kind IN ('link', 'request')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'refused', 'withdrawn')),
    period BIGINT NOT NULL,
    start_date TEXT NOT NULL,
    declaration_id BIGINT REFERENCES declarations (id),
    person_id BIGINT REFERENCES persons (id),
    cin_bidx BYTEA NOT NULL,
    declared BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by BIGINT REFERENCES principals (id)
);
CREATE INDEX employment_claims_person ON employment_claims (person_id, state);
CREATE INDEX employment_claims_employer ON employment_claims (employer_id, period, state);
CREATE INDEX employment_claims_declaration ON employment_claims (declaration_id);
CREATE INDEX employment_claims_pending ON employment_claims (state, id);
INSERT INTO counters (name, next_value) VALUES ('employment_claim', 1);
