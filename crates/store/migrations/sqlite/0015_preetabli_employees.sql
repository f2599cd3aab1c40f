-- A préétabli's employees in one sealed value beside its header (XChaCha20-Poly1305, bound to
-- the préétabli's id), instead of one row and one ciphertext per employee in preetabli_lines:
-- an import reads each declarant's préétabli, so that was four million rows fetched and
-- decrypted for a month of the country (docs/performance.md). Préétablis issued before keep
-- `employees` NULL and their lines in preetabli_lines, which is still read for them and no
-- longer written. Keep in step with ../postgres/0015_preetabli_employees.sql.
ALTER TABLE preetablis ADD COLUMN employees BLOB;
