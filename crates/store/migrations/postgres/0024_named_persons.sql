-- The persons a préétabli lists, in plaintext (little-endian 8-byte ids, in the order of its
-- lines), like a block's directory: whoever downloads it is audited as reading each of them,
-- before anything is decrypted (docs/declarations.md). It says nothing a dump does not: who
-- works where is the employment graph. NULL for a préétabli issued before (its persons are the
-- employer's employees on the period's first day). Keep in step with
-- ../sqlite/0024_named_persons.sql.
ALTER TABLE preetablis ADD COLUMN persons BYTEA;

-- The registered persons a kept rejection names (the numbers and CINs its errors quote, found
-- when it was kept), in the same form: its readers are audited as reading each of them. NULL
-- for one kept before.
ALTER TABLE declaration_rejections ADD COLUMN persons BYTEA;
