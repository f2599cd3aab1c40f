-- Blocks of declaration lines, format 2: one ciphertext per block. Keep in step with
-- ../sqlite/0017_sealed_blocks.sql, which says why.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM declaration_line_blocks WHERE get_byte(data, 0) = 1) THEN
        RAISE EXCEPTION 'declaration line blocks of format 1 (before migration 0017): re-import the files into a new database';
    END IF;
END;
$$;

-- Rotation may still re-encrypt a block, now as the header is: the directory (version, count,
-- persons and line numbers: 5 + 16 bytes a line) unchanged, the data of the same length, and
-- its one ciphertext moving to the primary data key from an older one.
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
        head := 5 + 16 * OLD.lines::INTEGER;
        IF NEW.declaration_id = OLD.declaration_id AND NEW.last_person = OLD.last_person
           AND NEW.period = OLD.period AND NEW.lines = OLD.lines
           AND length(NEW.data) = length(OLD.data)
           AND substring(NEW.data FROM 1 FOR head + 1) = substring(OLD.data FROM 1 FOR head + 1)
           AND substring(NEW.data FROM head + 2 FOR 4) > substring(OLD.data FROM head + 2 FOR 4)
           AND substring(NEW.data FROM head + 2 FOR 4) = int4send((SELECT MAX(id) FROM data_keys
                                                    WHERE primary_since IS NOT NULL)::INTEGER) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'a declaration is immutable';
END;
$$;
