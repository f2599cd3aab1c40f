-- Person row ids are keyed (vault::Keyring::person_id): at or above 2^52, in no order of the
-- immatriculation numbers. A database made before numbers its persons by serial (the number
-- minus 100 000 000, below 2^52): this row marks it so until every person is renumbered
-- (Kernel::renumber_persons, which `daman migrate` and `daman serve` run at once) and new
-- persons keep serial ids meanwhile.
INSERT INTO counters (name, next_value)
SELECT 'person_ids_serial', 0 WHERE EXISTS (SELECT 1 FROM persons WHERE id < 4503599627370496);
