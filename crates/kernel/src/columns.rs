//! Every sealed column and every blind index, in one list: what the keyring derives keys for
//! and what a key rotation re-encrypts (`store::sealed_tables()` lists the same columns from
//! the store's side, and a test holds the two equal). A capability crate that seals a new
//! column adds it here.

use domain::PersonField;
use vault::Column;

pub const PERSONS: &str = "persons";

/// The encrypted column of a person field.
pub fn person_column(f: PersonField) -> Column {
    Column {
        table: PERSONS,
        column: f.column(),
    }
}

/// Blind index of a person's CIN.
pub const CIN_INDEX: Column = Column {
    table: PERSONS,
    column: "cin",
};
/// Blind index of a person's immatriculation number.
pub const IMMATRICULATION_INDEX: Column = Column {
    table: PERSONS,
    column: "immatriculation",
};
/// The blind index of login names (`accounts.login_bidx`).
pub const LOGIN_INDEX: Column = Column {
    table: "accounts",
    column: "login",
};
/// The blind index of phone numbers in the SMS send log (`sms_sends.phone_bidx`).
pub const SMS_PHONE_INDEX: Column = Column {
    table: "sms_sends",
    column: "phone",
};
/// Blind index of a declaration file's bytes.
pub const DECLARATION_DIGEST: Column = Column {
    table: "declarations",
    column: "digest",
};

/// The encrypted column of a case's reason.
pub const CASE_REASON: Column = Column {
    table: "cases",
    column: "reason",
};
/// Encrypted factor secrets: a phone number, a TOTP seed, a passkey.
pub const FACTOR_SECRET: Column = Column {
    table: "factors",
    column: "secret",
};
/// The phone number an enrolment's code goes to.
pub const ENROLMENT_PHONE: Column = Column {
    table: "enrolments",
    column: "phone",
};
/// The new RIB while it waits.
pub const RIB_CHANGE: Column = Column {
    table: "rib_changes",
    column: "rib",
};
/// The nonce and PKCE verifier of an E-ID login in progress.
pub const EID_SECRET: Column = Column {
    table: "eid_flows",
    column: "secret",
};
/// A préétabli's header.
pub const PREETABLI_HEADER: Column = Column {
    table: "preetablis",
    column: "header",
};
/// The employees of a préétabli issued before migration 0015, one ciphertext each.
pub const PREETABLI_LINE: Column = Column {
    table: "preetabli_lines",
    column: "data",
};
/// A préétabli's employees, sealed in one value.
pub const PREETABLI_EMPLOYEES: Column = Column {
    table: "preetablis",
    column: "employees",
};
/// A declaration's header.
pub const DECLARATION_HEADER: Column = Column {
    table: "declarations",
    column: "header",
};
/// The sealed part of a block of declaration lines ([`store::blocks`]), bound to the
/// declaration's id and to the block's directory.
pub const DECLARATION_LINE_BLOCK: Column = Column {
    table: "declaration_line_blocks",
    column: "data",
};
/// The errors of a rejected file, kept for its employer.
pub const DECLARATION_REJECTION: Column = Column {
    table: "declaration_rejections",
    column: "errors",
};
/// What an employment claim's entrant line (or link) declared: the CIN and the name.
pub const CLAIM_DECLARED: Column = Column {
    table: "employment_claims",
    column: "declared",
};

/// Every blind-indexed column.
pub const BLIND_INDEXES: [Column; 5] = [
    CIN_INDEX,
    IMMATRICULATION_INDEX,
    LOGIN_INDEX,
    SMS_PHONE_INDEX,
    DECLARATION_DIGEST,
];

/// Every encrypted column, as bound into its ciphertexts.
pub fn encrypted() -> Vec<Column> {
    let mut encrypted: Vec<Column> = PersonField::ALL.iter().map(|f| person_column(*f)).collect();
    encrypted.extend([
        CASE_REASON,
        FACTOR_SECRET,
        ENROLMENT_PHONE,
        RIB_CHANGE,
        EID_SECRET,
        PREETABLI_HEADER,
        PREETABLI_LINE,
        PREETABLI_EMPLOYEES,
        DECLARATION_HEADER,
        DECLARATION_LINE_BLOCK,
        DECLARATION_REJECTION,
        CLAIM_DECLARED,
    ]);
    encrypted
}
