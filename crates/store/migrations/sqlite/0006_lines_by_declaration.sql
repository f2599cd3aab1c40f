-- Declaration lines stored in blocks, and rectification. Keep in step with
-- ../postgres/0006_lines_by_declaration.sql.
--
-- Lines: one row per line with a (person, period) index took a random insert per declared line
-- (the wall of the import at the country's scale: docs/performance.md). A declaration's lines
-- are now stored in blocks of up to 256, sorted by person: a row holds the persons and line
-- numbers in plaintext (as the columns did) and each line's ciphertext, still bound to its own
-- line number (see crates/store/src/blocks.rs). Blocks are keyed by (declaration, last person
-- in the block), so an import appends to both B-trees, and there are about eight times fewer
-- rows to write. A person's career is found through their employments: every declaration of
-- every employer they were ever employed by, one block lookup each (see Store::career).
--
-- Lines stored in the old layout are not converted: before this migration only synthetic data
-- existed; it refuses to run over them (re-import the files into a new database).
CREATE TABLE migration_0006_guard (old_lines BIGINT NOT NULL CHECK (old_lines = 0));
INSERT INTO migration_0006_guard SELECT COUNT(*) FROM declaration_lines;
DROP TABLE migration_0006_guard;
DROP TABLE declaration_lines;

CREATE TABLE declaration_line_blocks (
    declaration_id BIGINT NOT NULL REFERENCES declarations (id),
    last_person BIGINT NOT NULL,
    period BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (declaration_id, last_person)
);

-- Rectification: an accepted declaration may be replaced, whole, by a corrected file for the
-- same employer, period and form. The replacement names what it `rectifies`; the original
-- keeps every byte and line and only changes status, 'accepted' to 'rectified', once. Nothing
-- else about a declaration or its lines ever changes.
ALTER TABLE declarations ADD COLUMN rectifies BIGINT REFERENCES declarations (id);
CREATE UNIQUE INDEX declarations_rectifies ON declarations (rectifies)
    WHERE rectifies IS NOT NULL;
CREATE TRIGGER declarations_immutable BEFORE UPDATE OF id, employer_id, period, form, digest,
    preetabli_id, first_line, lines, entrants, days, gross, capped, employer_share,
    employee_share, header, received_at, rectifies ON declarations
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declarations_status BEFORE UPDATE OF status ON declarations
WHEN NOT (OLD.status = 'accepted' AND NEW.status = 'rectified')
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declarations_no_delete BEFORE DELETE ON declarations
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declaration_line_blocks_no_update BEFORE UPDATE ON declaration_line_blocks
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
CREATE TRIGGER declaration_line_blocks_no_delete BEFORE DELETE ON declaration_line_blocks
BEGIN SELECT RAISE(ABORT, 'a declaration is immutable'); END;
