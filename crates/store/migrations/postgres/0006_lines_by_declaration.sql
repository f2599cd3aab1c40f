-- Declaration lines keyed by (declaration, person) instead of a person index. Keep in step
-- with ../sqlite/0006_lines_by_declaration.sql, which says why. `id` stays the line's number
-- from the `declaration_line` counter: the file order, and what each line's encryption is
-- bound to.
DROP INDEX declaration_lines_person;
ALTER TABLE declaration_lines DROP CONSTRAINT declaration_lines_pkey;
ALTER TABLE declaration_lines ADD PRIMARY KEY (declaration_id, person_id);
CREATE UNIQUE INDEX declaration_lines_id ON declaration_lines (id);

-- Rectification: see ../sqlite/0006_lines_by_declaration.sql. The original keeps every byte
-- and line and only changes status, 'accepted' to 'rectified', once.
ALTER TABLE declarations ADD COLUMN rectifies BIGINT REFERENCES declarations (id);
CREATE UNIQUE INDEX declarations_rectifies ON declarations (rectifies);
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
CREATE TRIGGER declaration_lines_immutable BEFORE UPDATE OR DELETE ON declaration_lines
    FOR EACH ROW EXECUTE FUNCTION declaration_immutable();
CREATE TRIGGER declarations_no_truncate BEFORE TRUNCATE ON declarations
    FOR EACH STATEMENT EXECUTE FUNCTION declaration_immutable();
CREATE TRIGGER declaration_lines_no_truncate BEFORE TRUNCATE ON declaration_lines
    FOR EACH STATEMENT EXECUTE FUNCTION declaration_immutable();
