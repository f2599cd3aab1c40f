-- Persons and employments take their ids from counters (allocated in blocks), as préétablis,
-- declarations and ledger entries do: rows created together are then neighbours in the table
-- and its indexes, instead of one random page each (docs/performance.md: persons and
-- employments created by a month's entrants were most of what an import wrote). Ids already
-- given (random, anywhere in 1 .. 2^63) stay; a clash with a counted id is as unlikely as one
-- between two random ids was. Keep in step with ../sqlite/0013_counted_ids.sql.
INSERT INTO counters (name, next_value) VALUES ('person', 1), ('employment', 1);
