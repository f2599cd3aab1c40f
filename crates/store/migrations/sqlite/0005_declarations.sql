-- Declarations (e-BDS), careers and the contribution ledger. Keep in step with
-- ../postgres/0005_declarations.sql. Periods are YYYYMM numbers. Ids of préétablis,
-- declarations, their lines and ledger entries come from counters in blocks, so the lines of
-- one préétabli or declaration are the contiguous range first_line .. first_line + lines - 1
-- (no index needed to read them, and inserts append to the B-trees).

INSERT INTO counters (name, next_value) VALUES
    ('preetabli', 1), ('preetabli_line', 1), ('declaration', 1), ('declaration_line', 1),
    ('ledger_entry', 1), ('payment', 1);

-- A préétabli issued to an employer for a period. `transfer_id` (14 digits) is what the
-- employer's B00 record repeats.
CREATE TABLE preetablis (
    id BIGINT PRIMARY KEY NOT NULL,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    period BIGINT NOT NULL,
    transfer_id BIGINT NOT NULL UNIQUE,
    first_line BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    header BLOB NOT NULL,
    issued_at BIGINT NOT NULL,
    UNIQUE (employer_id, period)
);

-- One known employee of a préétabli: the A02 content (number, name, children, family
-- allowances) encrypted, bound to this row.
CREATE TABLE preetabli_lines (
    id INTEGER PRIMARY KEY NOT NULL,
    preetabli_id BIGINT NOT NULL REFERENCES preetablis (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    data BLOB NOT NULL
);

-- An accepted declaration, immutable: corrections are complementary declarations (`form`
-- 1..9; 0 is the main declaration). A rejected file leaves no row: its sender gets every error
-- at once and the audit log records the rejection. `status` is 'accepted' (the life cycle's
-- only stored state). `digest` is a keyed hash of the file's bytes: the same file uploaded again
-- is this declaration. `header` (encrypted) holds what is needed, with the lines, to write the
-- file back byte for byte. Amounts in centimes; the shares are the sums of the lines'
-- contributions.
CREATE TABLE declarations (
    id BIGINT PRIMARY KEY NOT NULL,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    period BIGINT NOT NULL,
    form BIGINT NOT NULL,
    status TEXT NOT NULL,
    digest BLOB NOT NULL,
    preetabli_id BIGINT REFERENCES preetablis (id),
    first_line BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    entrants BIGINT NOT NULL,
    days BIGINT NOT NULL,
    gross BIGINT NOT NULL,
    capped BIGINT NOT NULL,
    employer_share BIGINT NOT NULL,
    employee_share BIGINT NOT NULL,
    header BLOB NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX declarations_one_form ON declarations (employer_id, period, form)
    WHERE status = 'accepted';
CREATE UNIQUE INDEX declarations_digest ON declarations (digest) WHERE status = 'accepted';

-- A declared line: the person's career for that month and employer. `data` (encrypted) holds
-- the line as declared (kind, name, CIN, children, family allowances, days, salaries,
-- situation) and its contributions.
CREATE TABLE declaration_lines (
    id INTEGER PRIMARY KEY NOT NULL,
    declaration_id BIGINT NOT NULL REFERENCES declarations (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    period BIGINT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX declaration_lines_person ON declaration_lines (person_id, period);

-- The double-entry ledger. An entry is one balanced movement (a declaration's contributions,
-- a payment, a surcharge); its postings sum to zero. `key` makes every money command
-- idempotent. Accounts: `receivable` (what the employer owes for the period: debit),
-- `contribution:<branch>:employer|employee` (credit), `bank` (debit), `surcharge` (credit).
CREATE TABLE ledger_entries (
    id BIGINT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    period BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX ledger_entries_employer ON ledger_entries (employer_id, period);

CREATE TABLE ledger_postings (
    entry_id BIGINT NOT NULL REFERENCES ledger_entries (id),
    account TEXT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (entry_id, account)
);

-- A payment received from an employer, with the bank's reference (unique: recording the same
-- payment twice does nothing).
CREATE TABLE payments (
    id BIGINT PRIMARY KEY NOT NULL,
    employer_id BIGINT NOT NULL REFERENCES employers (id),
    period BIGINT NOT NULL,
    bank_reference TEXT NOT NULL UNIQUE,
    amount BIGINT NOT NULL,
    paid_on TEXT NOT NULL,
    entry_id BIGINT NOT NULL REFERENCES ledger_entries (id),
    received_at BIGINT NOT NULL
);

-- Money movements are never edited: a correction is a new entry.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE INDEX employments_employer ON employments (employer_id, start_date);
