-- Data-key rotation (docs/keys.md). Keep in step with ../postgres/0009_key_rotation.sql.
--
-- A data key is added first (`primary_since` NULL: every node may decrypt with it, none
-- encrypts), made primary once every live node has loaded it (`primary_since` set; the primary
-- is the key with the highest id among those that have been made primary), and every row is
-- then re-encrypted to it in the background.
ALTER TABLE data_keys ADD COLUMN primary_since BIGINT;
UPDATE data_keys SET primary_since = created_at;

-- What each running daman (server node or command) has loaded, reported every second or so:
-- a rotation makes its new key primary only once every node seen lately has loaded it, and
-- re-encrypts only once every such node encrypts with it.
CREATE TABLE key_nodes (
    node TEXT PRIMARY KEY NOT NULL,
    newest_key BIGINT NOT NULL,
    primary_key BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
) WITHOUT ROWID;

-- Declarations stay immutable, except that a ciphertext may be re-encrypted to the primary
-- data key: the header to a ciphertext of the same length and format under the primary key, from
-- an older one; a block of lines to data of the same length with the same plaintext directory
-- (lines, persons, line numbers, lengths: crates/store/src/blocks.rs), only the ciphertexts after
-- it changing (each is authenticated, bound to its line: anything but a re-encryption of the same
-- line fails to decrypt).
DROP TRIGGER declarations_immutable;
CREATE TRIGGER declarations_immutable BEFORE UPDATE OF id, employer_id, period, form, digest,
    preetabli_id, first_line, lines, entrants, days, gross, capped, employer_share,
    employee_share, received_at, rectifies ON declarations
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declarations_header_rekey BEFORE UPDATE OF header ON declarations
WHEN NOT (length(NEW.header) = length(OLD.header)
          AND substr(NEW.header, 1, 1) = substr(OLD.header, 1, 1)
          AND substr(NEW.header, 2, 4) > substr(OLD.header, 2, 4)
          AND hex(substr(NEW.header, 2, 4)) = (SELECT printf('%08X', MAX(id)) FROM data_keys
                                               WHERE primary_since IS NOT NULL))
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
DROP TRIGGER declaration_line_blocks_no_update;
CREATE TRIGGER declaration_line_blocks_rekey_only BEFORE UPDATE ON declaration_line_blocks
WHEN NOT (NEW.declaration_id = OLD.declaration_id AND NEW.last_person = OLD.last_person
          AND NEW.period = OLD.period AND NEW.lines = OLD.lines
          AND length(NEW.data) = length(OLD.data)
          AND substr(NEW.data, 1, 5 + 20 * OLD.lines) = substr(OLD.data, 1, 5 + 20 * OLD.lines))
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
