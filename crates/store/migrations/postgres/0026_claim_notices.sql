-- An employment claim's notice to the person it names is queued, not sent while the claim is
-- made: whoever made the claim gets one answer in one time whoever it named, and a crash after
-- the claim's commit loses no notice. The sweeper of each node takes a pending link claim's
-- notice (`notice_taken_at`, a lease, so two nodes do not both send it), sends it and marks it
-- sent (`notified_at`; Registry::send_claim_notices). Claims made before were told at once.
ALTER TABLE employment_claims ADD COLUMN notified_at BIGINT;
ALTER TABLE employment_claims ADD COLUMN notice_taken_at BIGINT;
UPDATE employment_claims SET notified_at = created_at;
CREATE INDEX employment_claims_unnotified ON employment_claims (id)
    WHERE notified_at IS NULL AND state = 'pending' AND kind = 'link' AND person_id IS NOT NULL;
