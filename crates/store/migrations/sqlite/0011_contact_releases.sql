-- The four-eyes release of contact data for breach notifications (docs/audit.md). Keep in step
-- with ../postgres/0011_contact_releases.sql.
--
-- A security officer asks for the contact data (phone, e-mail, address) of the persons a
-- breach report lists (its principals and window); another security officer approves; the
-- requester then receives the data once. Who asked, who approved and when are kept; the
-- database refuses an approval by the requester.
CREATE TABLE contact_releases (
    id BIGINT PRIMARY KEY NOT NULL,
    requested_by BIGINT NOT NULL REFERENCES principals (id),
    principals TEXT NOT NULL,
    from_at BIGINT NOT NULL,
    to_at BIGINT NOT NULL,
    requested_at BIGINT NOT NULL,
    approved_by BIGINT REFERENCES principals (id),
    approved_at BIGINT,
    released_at BIGINT,
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
