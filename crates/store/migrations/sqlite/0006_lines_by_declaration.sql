-- Declaration lines keyed by (declaration, person) instead of a person index. Keep in step
-- with ../postgres/0006_lines_by_declaration.sql.
--
-- Why: the (person, period) index took a random insert per declared line, and once the
-- country's months outgrew the page cache every import batch rewrote most of its pages (see
-- docs/performance.md). Keyed by declaration, a batch's lines (written in declaration then
-- person order) append at the end of the B-tree. A person's career is found through their
-- employments instead: every employer they ever worked for, that employer's declarations,
-- and one key lookup per declaration (see Store::career). `id` stays the line's number from
-- the `declaration_line` counter: the file order, and what each line's encryption is bound to.
CREATE TABLE declaration_lines_by_declaration (
    declaration_id BIGINT NOT NULL REFERENCES declarations (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    id BIGINT NOT NULL,
    period BIGINT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (declaration_id, person_id)
) WITHOUT ROWID;
INSERT INTO declaration_lines_by_declaration (declaration_id, person_id, id, period, data)
    SELECT declaration_id, person_id, id, period, data FROM declaration_lines
    ORDER BY declaration_id, person_id;
DROP TABLE declaration_lines;
ALTER TABLE declaration_lines_by_declaration RENAME TO declaration_lines;
-- Line numbers are unique (each line's ciphertext is bound to its number); they only grow, so
-- this index appends too.
CREATE UNIQUE INDEX declaration_lines_id ON declaration_lines (id);

-- Rectification: an accepted declaration may be replaced, whole, by a corrected file for the
-- same employer, period and form. The replacement names what it `rectifies`; the original
-- keeps every byte and line and only changes status, 'accepted' to 'rectified', once. Nothing
-- else about a declaration or its lines ever changes.
ALTER TABLE declarations ADD COLUMN rectifies BIGINT REFERENCES declarations (id);
CREATE UNIQUE INDEX declarations_rectifies ON declarations (rectifies);
CREATE TRIGGER declarations_immutable BEFORE UPDATE OF id, employer_id, period, form, digest,
    preetabli_id, first_line, lines, entrants, days, gross, capped, employer_share,
    employee_share, header, received_at, rectifies ON declarations
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declarations_status BEFORE UPDATE OF status ON declarations
WHEN NOT (OLD.status = 'accepted' AND NEW.status = 'rectified')
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declarations_no_delete BEFORE DELETE ON declarations
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declaration_lines_no_update BEFORE UPDATE ON declaration_lines
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declaration_lines_no_delete BEFORE DELETE ON declaration_lines
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
