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
