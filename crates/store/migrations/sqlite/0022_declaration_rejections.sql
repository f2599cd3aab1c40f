-- A declaration file that an employer user sent and daman rejected, kept with its errors so the
-- employer can read them again later: the life cycle is received → rejected with its errors
-- (here) | accepted (`declarations`). Nothing else of the file is kept, and nothing else
-- changes. The errors quote the values found (names, CINs, numbers): they are encrypted, bound
-- to the row. The latest rejections of each employer are kept (the application prunes the
-- rest). Keep in step with ../postgres/0022_declaration_rejections.sql.
CREATE TABLE declaration_rejections (
    id BIGINT PRIMARY KEY NOT NULL,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    received_at BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    errors BLOB NOT NULL
);
CREATE INDEX declaration_rejections_employer ON declaration_rejections (employer_id, id);
INSERT INTO counters (name, next_value) VALUES ('declaration_rejection', 1);
