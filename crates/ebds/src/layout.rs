//! The record layouts of the e-BDS format (cnss-domain.md §2.4): every record is 260 characters,
//! its fields chained from column 1 in the order of the official tables.

use std::fmt;

/// How a field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The record type (`B02`…).
    Type,
    /// Digits only, right-aligned, zero-padded (amounts in centimes).
    N,
    /// Upper case without accents: A–Z, 0–9, space and tab; left-aligned, space-padded.
    An,
    /// A date `AAAAMMJJ`.
    D,
    /// A period `AAAAMM`.
    P,
    /// A situation code: two spaces or one of SO, DE, IT, IL, AT, CS, MS, MP.
    Situation,
    /// Spaces only.
    Filler,
}

/// One field of a record layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub len: usize,
    pub kind: Kind,
}

const fn f(name: &'static str, len: usize, kind: Kind) -> Field {
    Field { name, len, kind }
}

use Kind::*;

/// The length of every record.
pub const RECORD_LEN: usize = 260;

/// A00 / B00 / E00: nature of the file.
pub const NATURE: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Identif_Transfert", 14, N),
    f("L_Cat", 2, An),
    f("L_filler", 241, Filler),
];

/// A01 / B01 / E01: the affiliate's identity.
pub const IDENTITY: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Num_Affilie", 7, N),
    f("L_Periode", 6, P),
    f("L_Raison_Sociale", 40, An),
    f("L_Activite", 40, An),
    f("L_Adresse", 120, An),
    f("L_Ville", 20, An),
    f("C_Code_Postal", 6, An),
    f("C_Code_Agence", 2, An),
    f("D_Date_Emission", 8, D),
    f("D_Date_Exig", 8, D),
];

/// A02: one known employee in the préétabli.
pub const EMPLOYEE: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Num_Affilie", 7, N),
    f("L_Periode", 6, P),
    f("N_Num_Assure", 9, N),
    f("L_Nom_Prenom", 60, An),
    f("N_Enfants", 2, N),
    f("N_AF_A_Payer", 6, N),
    f("N_AF_A_Deduire", 6, N),
    f("N_AF_Net_A_Payer", 6, N),
    f("L_filler", 155, Filler),
];

/// A03: recap of the préétabli.
pub const EMPLOYEE_RECAP: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Num_Affilie", 7, N),
    f("L_Periode", 6, P),
    f("N_Nbr_Salaries", 6, N),
    f("N_T_Enfants", 6, N),
    f("N_T_AF_A_Payer", 12, N),
    f("N_T_AF_A_Deduire", 12, N),
    f("N_T_AF_Net_A_Payer", 12, N),
    f("N_T_Num_Imma", 15, N),
    f("L_filler", 181, Filler),
];

/// B02 / E02: one employee of the préétabli, declared.
pub const LINE: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Num_Affilie", 7, N),
    f("L_Periode", 6, P),
    f("N_Num_Assure", 9, N),
    f("L_Nom_Prenom", 60, An),
    f("N_Enfants", 2, N),
    f("N_AF_A_Payer", 6, N),
    f("N_AF_A_Deduire", 6, N),
    f("N_AF_Net_A_Payer", 6, N),
    f("N_AF_A_Reverser", 6, N),
    f("N_Jours_Declares", 2, N),
    f("N_Salaire_Reel", 13, N),
    f("N_Salaire_Plaf", 9, N),
    f("L_Situation", 2, Situation),
    f("S_Ctr", 19, N),
    f("L_filler", 104, Filler),
];

/// B03 / E03: recap of the B02 lines.
pub const LINE_RECAP: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Num_Affilie", 7, N),
    f("L_Periode", 6, P),
    f("N_Nbr_Salaries", 6, N),
    f("N_T_Enfants", 6, N),
    f("N_T_AF_A_Payer", 12, N),
    f("N_T_AF_A_Deduire", 12, N),
    f("N_T_AF_Net_A_Payer", 12, N),
    f("N_T_Num_Imma", 15, N),
    f("N_T_AF_A_Reverser", 12, N),
    f("N_T_Jours_Declares", 6, N),
    f("N_T_Salaire_Reel", 15, N),
    f("N_T_Salaire_Plaf", 13, N),
    f("N_T_Ctr", 19, N),
    f("L_filler", 116, Filler),
];

/// B04 / E04: an entrant, not in the préétabli.
pub const ENTRANT: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Num_Affilie", 7, N),
    f("L_Periode", 6, P),
    f("N_Num_Assure", 9, N),
    f("L_Nom_Prenom", 60, An),
    f("L_Num_CIN", 8, An),
    f("N_Nbr_Jours", 2, N),
    f("N_Sal_Reel", 13, N),
    f("N_Sal_Plaf", 9, N),
    f("S_Ctr", 19, N),
    f("L_filler", 124, Filler),
];

/// B05 / E05 (recap of the entrants) and B06 / E06 (global recap).
pub const SHORT_RECAP: &[Field] = &[
    f("L_Type_Enreg", 3, Type),
    f("N_Num_Affilie", 7, N),
    f("L_Periode", 6, P),
    f("N_Nbr_Salaries", 6, N),
    f("N_T_Num_Imma", 15, N),
    f("N_T_Jours_Declares", 6, N),
    f("N_T_Salaire_Reel", 15, N),
    f("N_T_Salaire_Plaf", 13, N),
    f("N_T_Ctr", 19, N),
    f("L_filler", 170, Filler),
];

/// The three families of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// A: the préétabli the fund prepares.
    A,
    /// B: the main declaration.
    B,
    /// E: a complementary declaration.
    E,
}

impl Family {
    pub fn letter(self) -> char {
        match self {
            Family::A => 'A',
            Family::B => 'B',
            Family::E => 'E',
        }
    }
}

/// A record type: its family and number (`B02` = B, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordType {
    pub family: Family,
    pub number: u8,
}

impl RecordType {
    pub const fn new(family: Family, number: u8) -> RecordType {
        RecordType { family, number }
    }

    /// `A00`…`A03`, `B00`…`B06`, `E00`…`E06`.
    pub fn parse(b: &[u8]) -> Option<RecordType> {
        let family = match b.first()? {
            b'A' => Family::A,
            b'B' => Family::B,
            b'E' => Family::E,
            _ => return None,
        };
        if b.len() != 3 || b[1] != b'0' {
            return None;
        }
        let number = b[2].checked_sub(b'0')?;
        let max = if family == Family::A { 3 } else { 6 };
        (number <= max).then_some(RecordType { family, number })
    }

    pub const fn layout(self) -> &'static [Field] {
        match (self.family, self.number) {
            (_, 0) => NATURE,
            (_, 1) => IDENTITY,
            (Family::A, 2) => EMPLOYEE,
            (Family::A, _) => EMPLOYEE_RECAP,
            (_, 2) => LINE,
            (_, 3) => LINE_RECAP,
            (_, 4) => ENTRANT,
            _ => SHORT_RECAP,
        }
    }

    pub fn code(self) -> [u8; 3] {
        [self.family.letter() as u8, b'0', b'0' + self.number]
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}0{}", self.family.letter(), self.number)
    }
}

/// 0-based start column of every field of a layout.
pub fn offsets(layout: &[Field]) -> impl Iterator<Item = (usize, &Field)> {
    layout.iter().scan(0usize, |at, field| {
        let start = *at;
        *at += field.len;
        Some((start, field))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_of(layout: &[Field], name: &str) -> usize {
        offsets(layout)
            .find(|(_, f)| f.name == name)
            .map(|(s, _)| s + 1)
            .unwrap()
    }

    #[test]
    fn every_layout_is_260_characters() {
        for l in [
            NATURE,
            IDENTITY,
            EMPLOYEE,
            EMPLOYEE_RECAP,
            LINE,
            LINE_RECAP,
            ENTRANT,
            SHORT_RECAP,
        ] {
            assert_eq!(l.iter().map(|f| f.len).sum::<usize>(), RECORD_LEN);
        }
        // Field counts of the spec-JSON README.
        let counts: Vec<usize> = [
            IDENTITY,
            EMPLOYEE,
            EMPLOYEE_RECAP,
            LINE,
            LINE_RECAP,
            ENTRANT,
            SHORT_RECAP,
        ]
        .iter()
        .map(|l| l.len())
        .collect();
        assert_eq!(counts, [11, 10, 10, 16, 15, 11, 10]);
    }

    #[test]
    fn columns_match_the_reference_tables() {
        // 1-based starts from cnss-domain.md §2.4.
        assert_eq!(start_of(IDENTITY, "D_Date_Exig"), 253);
        assert_eq!(start_of(IDENTITY, "C_Code_Postal"), 237);
        assert_eq!(start_of(EMPLOYEE, "N_AF_Net_A_Payer"), 100);
        assert_eq!(start_of(EMPLOYEE_RECAP, "N_T_Num_Imma"), 65);
        assert_eq!(start_of(LINE, "N_Jours_Declares"), 112);
        assert_eq!(start_of(LINE, "L_Situation"), 136);
        assert_eq!(start_of(LINE, "S_Ctr"), 138);
        assert_eq!(start_of(LINE_RECAP, "N_T_Ctr"), 126);
        assert_eq!(start_of(ENTRANT, "L_Num_CIN"), 86);
        assert_eq!(start_of(ENTRANT, "S_Ctr"), 118);
        assert_eq!(start_of(SHORT_RECAP, "N_T_Ctr"), 72);
    }

    #[test]
    fn record_types_parse() {
        assert_eq!(
            RecordType::parse(b"B06"),
            Some(RecordType::new(Family::B, 6))
        );
        assert_eq!(RecordType::parse(b"A04"), None);
        assert_eq!(RecordType::parse(b"C00"), None);
        assert_eq!(RecordType::new(Family::E, 4).to_string(), "E04");
    }
}
