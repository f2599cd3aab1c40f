-- Blocks of declaration lines, format 2: one ciphertext per block, bound to the declaration
-- and to the block's directory of persons and line numbers, instead of one ciphertext per line
-- (crates/store/src/blocks.rs, docs/declarations.md). A line costs about 45 bytes less (the
-- nonce, tag and key id of its own ciphertext) and an import seals 64 times fewer values; a
-- line's length is no longer visible, only its block's. Keep in step with
-- ../postgres/0017_sealed_blocks.sql.
--
-- The table is unchanged. Blocks of format 1 are not converted (that needs the keys, which a
-- migration does not hold): before this migration only synthetic data existed, and it refuses
-- to run over them (re-import the files into a new database).
CREATE TABLE migration_0017_guard (format_1_blocks BIGINT NOT NULL CHECK (format_1_blocks = 0));
INSERT INTO migration_0017_guard
    SELECT COUNT(*) FROM declaration_line_blocks WHERE substr(data, 1, 1) = x'01';
DROP TABLE migration_0017_guard;

-- Rotation may still re-encrypt a block, now as the header is: the directory (version, count,
-- persons and line numbers: 5 + 16 bytes a line) unchanged, the data of the same length, and
-- its one ciphertext moving to the primary data key from an older one.
DROP TRIGGER declaration_line_blocks_rekey_only;
CREATE TRIGGER declaration_line_blocks_rekey_only BEFORE UPDATE ON declaration_line_blocks
WHEN NOT (NEW.declaration_id = OLD.declaration_id AND NEW.last_person = OLD.last_person
          AND NEW.period = OLD.period AND NEW.lines = OLD.lines
          AND length(NEW.data) = length(OLD.data)
          AND substr(NEW.data, 1, 6 + 16 * OLD.lines) = substr(OLD.data, 1, 6 + 16 * OLD.lines)
          AND substr(NEW.data, 7 + 16 * OLD.lines, 4) > substr(OLD.data, 7 + 16 * OLD.lines, 4)
          AND hex(substr(NEW.data, 7 + 16 * OLD.lines, 4)) =
              (SELECT printf('%08X', MAX(id)) FROM data_keys WHERE primary_since IS NOT NULL))
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
