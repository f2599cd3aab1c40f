-- Data-key rotation (docs/keys.md). Keep in step with ../sqlite/0009_key_rotation.sql.
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
);

-- Declarations stay immutable, except that a ciphertext may be re-encrypted to the primary
-- data key: the header to a ciphertext of the same length and format under the primary key, from
-- an older one; a block of lines to data of the same length with the same plaintext directory
-- (lines, persons, line numbers, lengths: crates/store/src/blocks.rs), only the ciphertexts after
-- it changing (each is authenticated, bound to its line: anything but a re-encryption of the same
-- line fails to decrypt).
CREATE OR REPLACE FUNCTION declaration_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    before declarations;
    head INTEGER;
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'declarations' THEN
        before := OLD;
        before.status := NEW.status;
        IF OLD.status = 'accepted' AND NEW.status = 'rectified' AND before IS NOT DISTINCT FROM NEW THEN
            RETURN NEW;
        END IF;
        before := OLD;
        before.header := NEW.header;
        IF before IS NOT DISTINCT FROM NEW
           AND length(NEW.header) = length(OLD.header)
           AND substring(NEW.header FROM 1 FOR 1) = substring(OLD.header FROM 1 FOR 1)
           AND substring(NEW.header FROM 2 FOR 4) > substring(OLD.header FROM 2 FOR 4)
           AND substring(NEW.header FROM 2 FOR 4) = int4send((SELECT MAX(id) FROM data_keys
                                                    WHERE primary_since IS NOT NULL)::INTEGER) THEN
            RETURN NEW;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'declaration_line_blocks' THEN
        head := 5 + 20 * OLD.lines::INTEGER;
        IF NEW.declaration_id = OLD.declaration_id AND NEW.last_person = OLD.last_person
           AND NEW.period = OLD.period AND NEW.lines = OLD.lines
           AND length(NEW.data) = length(OLD.data)
           AND substring(NEW.data FROM 1 FOR head) = substring(OLD.data FROM 1 FOR head) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'a declaration is immutable';
END;
$$;
