-- Employments stored in the order of their natural key (employer_id, person_id, start_date),
-- WITHOUT ROWID, instead of a table in the order they were created plus a unique index on that
-- key. An import reads its files in affiliation order, so a batch's employers are neighbours:
-- the employments it ends (an UPDATE each) and the ones it adds are then rows of one run of
-- neighbouring pages, where each ended employment used to be a row on a random page of the
-- table (the population is registered person by person). That was the largest share of the
-- pages an import rewrote (docs/performance.md). One B-tree fewer too: the key is the table.
-- `id` stays unique. Nothing references employments. PostgreSQL keeps its heap and indexes
-- (../postgres/0019_employments_by_employer.sql).
CREATE TABLE employments_by_employer (
    id BIGINT NOT NULL UNIQUE,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    start_date TEXT NOT NULL,
    end_date TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (employer_id, person_id, start_date)
) WITHOUT ROWID;
INSERT INTO employments_by_employer (id, employer_id, person_id, start_date, end_date, created_at)
    SELECT id, employer_id, person_id, start_date, end_date, created_at FROM employments
    ORDER BY employer_id, person_id, start_date;
DROP TABLE employments;
ALTER TABLE employments_by_employer RENAME TO employments;
CREATE INDEX employments_person ON employments (person_id, employer_id);
