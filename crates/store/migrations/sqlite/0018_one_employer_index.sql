-- Employments by employer are found through the unique index on (employer_id, person_id,
-- start_date), whose first column is the employer: employments_employer (employer_id,
-- start_date) answered nothing that index does not. An import adds an index entry for every
-- new employment at a random place in each index of the table (one page written per entry), so
-- one index fewer is one random page write fewer per entrant (docs/performance.md). Keep in
-- step with ../postgres/0018_one_employer_index.sql.
DROP INDEX employments_employer;
