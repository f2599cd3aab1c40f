-- Employers take their ids from a counter, in the order they are affiliated (as affiliation
-- numbers are): an import reads its files in affiliation order, so the employer-keyed indexes
-- it writes (declarations, ledger entries, employments) and the préétablis it reads are then
-- each touched in one run of neighbouring pages per batch instead of one random page per file
-- (docs/performance.md). Ids already given (random) stay, as in 0013. Keep in step with
-- ../postgres/0014_counted_employers.sql.
INSERT INTO counters (name, next_value) VALUES ('employer', 1);
