-- Declaration lines keyed by (declaration, person) instead of a person index. Keep in step
-- with ../sqlite/0006_lines_by_declaration.sql, which says why. `id` stays the line's number
-- from the `declaration_line` counter: the file order, and what each line's encryption is
-- bound to.
DROP INDEX declaration_lines_person;
ALTER TABLE declaration_lines DROP CONSTRAINT declaration_lines_pkey;
ALTER TABLE declaration_lines ADD PRIMARY KEY (declaration_id, person_id);
