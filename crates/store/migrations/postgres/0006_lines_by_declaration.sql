-- Declaration lines stored in blocks, and rectification. Keep in step with
-- ../sqlite/0006_lines_by_declaration.sql, which says why.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM declaration_lines) THEN
        RAISE EXCEPTION 'declaration lines in the layout before migration 0006: re-import the files into a new database';
    END IF;
END;
$$;
DROP TABLE declaration_lines;

CREATE TABLE declaration_line_blocks (
    declaration_id BIGINT NOT NULL REFERENCES declarations (id),
    last_person BIGINT NOT NULL,
    period BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    data BYTEA NOT NULL,
    UNIQUE (declaration_id, last_person)
);

-- Rectification: the original keeps every byte and line and only changes status, 'accepted'
-- to 'rectified', once.
ALTER TABLE declarations ADD COLUMN rectifies BIGINT REFERENCES declarations (id);
CREATE UNIQUE INDEX declarations_rectifies ON declarations (rectifies)
    WHERE rectifies IS NOT NULL;
CREATE FUNCTION declaration_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    before declarations;
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'declarations' THEN
        before := OLD;
        before.status := NEW.status;
        IF OLD.status = 'accepted' AND NEW.status = 'rectified' AND before IS NOT DISTINCT FROM NEW THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'a declaration is immutable';
END;
$$;
CREATE TRIGGER declarations_immutable BEFORE UPDATE OR DELETE ON declarations
    FOR EACH ROW EXECUTE FUNCTION declaration_immutable();
CREATE TRIGGER declaration_line_blocks_immutable BEFORE UPDATE OR DELETE ON declaration_line_blocks
    FOR EACH ROW EXECUTE FUNCTION declaration_immutable();
CREATE TRIGGER declarations_no_truncate BEFORE TRUNCATE ON declarations
    FOR EACH STATEMENT EXECUTE FUNCTION declaration_immutable();
CREATE TRIGGER declaration_line_blocks_no_truncate BEFORE TRUNCATE ON declaration_line_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION declaration_immutable();
