//! The e-BDS reader and writer: round trips, every reader rule with a file that breaks it, and
//! properties over generated files (round trip; any single-character corruption is caught or
//! only changes free text).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use domain::{Centimes, Date, Parameters, Period};
use ebds::*;
use proptest::prelude::*;

fn params() -> Parameters {
    Parameters::morocco().unwrap()
}

fn identity() -> Identity {
    Identity {
        affiliate: 1_234_567,
        period: Period::parse("202610").unwrap(),
        name: "ATLAS TEXTILE SARL".into(),
        activity: "CONFECTION".into(),
        address: "N 12 RUE D AGADIR".into(),
        city: "CASABLANCA".into(),
        postcode: "20000".into(),
        agency: "01".into(),
        issued: Date::new(2026, 11, 1).unwrap(),
        due: Date::new(2026, 11, 10).unwrap(),
    }
}

fn employee(imma: u32, name: &str, children: u8) -> Employee {
    let af = Centimes(30_000 * i64::from(children.min(3)));
    Employee {
        immatriculation: imma,
        name: name.into(),
        children,
        af_payable: af,
        af_deductible: Centimes(0),
        af_net: af,
    }
}

fn line(imma: u32, gross: i64, situation: Situation) -> Line {
    let (days, gross) = if situation.unpaid() {
        (0, 0)
    } else {
        (26, gross)
    };
    Line {
        employee: employee(imma, "BENANI MOHAMED", 2),
        af_repayable: Centimes(0),
        days,
        gross: Centimes(gross),
        capped: Centimes(gross.min(600_000)),
        situation,
    }
}

fn sample() -> Declaration {
    Declaration {
        form: Form::Main,
        transfer_id: 20_261_000_000_042,
        identity: identity(),
        lines: vec![
            line(100_000_011, 800_000, Situation::Normal),
            line(100_000_012, 342_272, Situation::Sick),
            line(100_000_013, 0, Situation::UnpaidLeave),
        ],
        entrants: vec![
            Entrant {
                immatriculation: None,
                name: "ZAHRA AMINA".into(),
                cin: "ZA123456".into(),
                days: 12,
                gross: Centimes(150_000),
                capped: Centimes(150_000),
            },
            Entrant {
                immatriculation: Some(100_000_099),
                name: "IDRISSI KARIM".into(),
                cin: String::new(),
                days: 26,
                gross: Centimes(700_000),
                capped: Centimes(600_000),
            },
        ],
        layout: Layout::default(),
    }
}

fn sample_bytes() -> Vec<u8> {
    declaration_bytes(&sample(), Some(&params())).unwrap()
}

/// Replaces `len` bytes of record `line` (1-based) at 1-based column `col`.
fn patch(bytes: &[u8], line: usize, col: usize, with: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let start = (line - 1) * 261 + col - 1;
    out[start..start + with.len()].copy_from_slice(with.as_bytes());
    out
}

fn errors(bytes: &[u8]) -> Vec<EbdsError> {
    read_declaration(bytes, Some(&params())).unwrap_err()
}

fn one(bytes: &[u8]) -> (u64, String, &'static str, String, Problem) {
    let e = errors(bytes);
    assert_eq!(e.len(), 1, "{e:#?}");
    let e = &e[0];
    (
        e.line,
        e.record.map(|r| r.to_string()).unwrap_or_default(),
        e.field,
        e.found.clone(),
        e.problem.clone(),
    )
}

#[test]
fn a_declaration_round_trips_byte_for_byte() {
    let d = sample();
    let bytes = sample_bytes();
    assert_eq!(bytes.len(), 10 * 261);
    assert!(
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .all(|l| l.len() == 260)
    );
    let back = read_declaration(bytes.as_slice(), Some(&params())).unwrap();
    assert_eq!(back, d);
    assert_eq!(declaration_bytes(&back, Some(&params())).unwrap(), bytes);
    let text = String::from_utf8(bytes.clone()).unwrap();
    let recs: Vec<&str> = text.lines().collect();
    // B02 S_Ctr = 100000011 + 0 + 26 + 800000 + 600000 + 0.
    assert_eq!(&recs[2][137..156], "0000000000101400037");
    // Sick leave (IL) adds rank 4.
    assert_eq!(&recs[3][135..137], "IL");
    assert_eq!(
        &recs[3][137..156],
        &format!("{:019}", 100_000_012u64 + 26 + 342_272 * 2 + 4)
    );
    // B06 = B03 + B05: 5 employees.
    assert_eq!(&recs[9][..3], "B06");
    assert_eq!(&recs[9][16..22], "000005");
    let totals = d.totals();
    assert_eq!(totals.gross, 800_000 + 342_272 + 150_000 + 700_000);
    assert_eq!(&recs[9][43..58], &format!("{:015}", totals.gross));
}

#[test]
fn crlf_and_no_final_newline_are_kept() {
    let mut d = sample();
    d.layout = Layout {
        ending: Ending::CrLf,
        final_newline: false,
    };
    let bytes = declaration_bytes(&d, None).unwrap();
    assert!(bytes.ends_with(b" ") && bytes.windows(2).any(|w| w == b"\r\n"));
    let back = read_declaration(bytes.as_slice(), None).unwrap();
    assert_eq!(back.layout, d.layout);
    assert_eq!(declaration_bytes(&back, None).unwrap(), bytes);
}

#[test]
fn no_entrants_means_one_empty_b04_and_zero_b05() {
    let mut d = sample();
    d.entrants.clear();
    let bytes = declaration_bytes(&d, None).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let b04 = text.lines().find(|l| l.starts_with("B04")).unwrap();
    assert_eq!(&b04[16..25], "         ");
    let b05 = text.lines().find(|l| l.starts_with("B05")).unwrap();
    assert!(b05[16..90].bytes().all(|b| b == b'0'));
    assert_eq!(read_declaration(bytes.as_slice(), None).unwrap(), d);
}

#[test]
fn a_complementary_declaration_has_only_entrants() {
    let mut d = sample();
    d.form = Form::Complementary(2);
    d.lines.clear();
    let bytes = declaration_bytes(&d, Some(&params())).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("E00"));
    assert_eq!(&text[17..19], "E2");
    assert_eq!(
        read_declaration(bytes.as_slice(), Some(&params())).unwrap(),
        d
    );
    // With lines of known employees it is refused.
    let mut bad = sample();
    bad.form = Form::Complementary(1);
    let e = declaration_bytes(&bad, None).unwrap_err();
    assert_eq!(e[0].problem, Problem::ComplementaryDeclaresEntrantsOnly);
}

#[test]
fn a_preetabli_round_trips_and_sums_immatriculations() {
    let p = preetabli_sample();
    let bytes = preetabli_bytes(&p).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let a03 = text.lines().nth(4).unwrap();
    assert_eq!(&a03[..3], "A03");
    assert_eq!(&a03[64..79], &format!("{:015}", 200_000_023u64));
    assert_eq!(read_preetabli(bytes.as_slice()).unwrap(), p);
    // A préétabli is not a declaration, and the other way round.
    assert_eq!(
        read_declaration(bytes.as_slice(), None).unwrap_err()[0].problem,
        Problem::WrongFamily('B')
    );
    assert_eq!(
        read_preetabli(sample_bytes().as_slice()).unwrap_err()[0].problem,
        Problem::WrongFamily('A')
    );
}

#[test]
fn the_writer_refuses_what_the_reader_would_refuse() {
    let mut d = sample();
    d.lines[0].days = 27;
    d.lines[1].capped = Centimes(d.lines[1].gross.0 + 1);
    d.entrants[0].name = "Zahra".into();
    let e = declaration_bytes(&d, Some(&params())).unwrap_err();
    let got: Vec<(u64, &str, Problem)> = e
        .iter()
        .map(|e| (e.line, e.field, e.problem.clone()))
        .collect();
    assert_eq!(got, vec![(7, "L_Nom_Prenom", Problem::NotAllowedChar),]);
    d.entrants[0].name = transliterate("Zahra");
    let e = declaration_bytes(&d, Some(&params())).unwrap_err();
    let got: Vec<(u64, &str, Problem)> = e
        .iter()
        .map(|e| (e.line, e.field, e.problem.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "N_Jours_Declares", Problem::DaysRange),
            (4, "N_Salaire_Plaf", Problem::CappedNotCeiling(342_272)),
        ]
    );
    let mut big = sample();
    big.lines[0].gross = Centimes(10_000_000_000_000);
    let e = declaration_bytes(&big, None).unwrap_err();
    assert_eq!(
        (e[0].field, e[0].problem.clone()),
        ("N_Salaire_Reel", Problem::TooLarge)
    );
}

// ---- every reader rule, each with a file that breaks it and the error it gets ----

#[test]
fn rule_record_length() {
    let mut b = sample_bytes();
    b.insert(261 * 2 + 30, b'X');
    let (line, rec, _, _, p) = one(&b);
    assert_eq!((line, rec.as_str(), p), (3, "B02", Problem::Length(261)));
}

#[test]
fn rule_unknown_record_and_wrong_family() {
    let (line, _, field, found, p) = one(&patch(&sample_bytes(), 3, 1, "X02"));
    assert_eq!(
        (line, field, found.as_str(), p),
        (3, "L_Type_Enreg", "X02", Problem::UnknownRecord)
    );
    let (line, _, _, found, p) = one(&patch(&sample_bytes(), 3, 1, "A02"));
    assert_eq!(
        (line, found.as_str(), p),
        (3, "A02", Problem::WrongFamily('B'))
    );
}

#[test]
fn rule_order_and_missing_records() {
    // Swapping B03 and the first B04.
    let b = sample_bytes();
    let mut recs: Vec<&[u8]> = b.chunks(261).collect();
    recs.swap(5, 6);
    let swapped = recs.concat();
    let got: Vec<(u64, Problem)> = errors(&swapped)
        .into_iter()
        .map(|e| (e.line, e.problem))
        .collect();
    assert_eq!(
        got,
        vec![
            (6, Problem::Missing(RecordType::new(Family::B, 3))),
            (7, Problem::OutOfOrder("B04 / B05".into()))
        ]
    );
    // A file cut after B04: B05 and B06 missing.
    let cut: Vec<u8> = b[..261 * 8].to_vec();
    let e = errors(&cut);
    let got: Vec<Problem> = e.iter().map(|e| e.problem.clone()).collect();
    assert_eq!(
        got,
        vec![
            Problem::Missing(RecordType::new(Family::B, 5)),
            Problem::Missing(RecordType::new(Family::B, 6))
        ]
    );
    assert_eq!(e[0].line, 9);
    // An empty file.
    assert_eq!(
        errors(b"")[0].problem,
        Problem::Missing(RecordType::new(Family::B, 0))
    );
}

#[test]
fn rule_digits_text_filler_date_period() {
    let b = sample_bytes();
    // N_Jours_Declares of the first B02 (columns 112–113).
    let (_, _, f, found, p) = one(&patch(&b, 3, 112, " 6"));
    assert_eq!(
        (f, found.as_str(), p),
        ("N_Jours_Declares", " 6", Problem::NotDigits)
    );
    // Lower case in a name (columns 26–85).
    let (_, _, f, found, p) = one(&patch(&b, 3, 26, "Benani"));
    assert_eq!(f, "L_Nom_Prenom");
    assert!(found.starts_with("Benani"));
    assert_eq!(p, Problem::NotAllowedChar);
    // Something in a filler.
    let (_, _, f, found, p) = one(&patch(&b, 3, 200, "X"));
    assert_eq!((f, found.as_str(), p), ("L_filler", "X", Problem::NotBlank));
    // An impossible due date (B01 columns 253–260).
    let (_, rec, f, _, p) = one(&patch(&b, 2, 253, "20260231"));
    assert_eq!(
        (rec.as_str(), f, p),
        ("B01", "D_Date_Exig", Problem::BadDate)
    );
    // A period with month 13 in B01: every later record now differs from nothing.
    let e = errors(&patch(&b, 2, 11, "202613"));
    assert_eq!(
        (e[0].field, e[0].problem.clone()),
        ("L_Periode", Problem::BadPeriod)
    );
    // Accented bytes (UTF-8) make the record too long: reported as such, nothing else.
    let mut acc = b.clone();
    acc.splice(261 * 2 + 25..261 * 2 + 26, "É".bytes());
    assert_eq!(one(&acc).4, Problem::Length(261));
}

#[test]
fn rule_header_category_affiliate_and_period() {
    let b = sample_bytes();
    let (_, _, f, found, p) = one(&patch(&b, 1, 18, "B1"));
    assert_eq!(
        (f, found.as_str(), p),
        ("L_Cat", "B1", Problem::BadCategory("B0".into()))
    );
    // A B02 of another affiliate and another period.
    let e = errors(&patch(&patch(&b, 3, 4, "7654321"), 3, 11, "202609"));
    let got: Vec<(&str, &str, Problem)> = e
        .iter()
        .map(|e| (e.field, e.found.as_str(), e.problem.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "N_Num_Affilie",
                "7654321",
                Problem::DiffersFromHeader("1234567".into())
            ),
            (
                "L_Periode",
                "202609",
                Problem::DiffersFromHeader("202610".into())
            ),
        ]
    );
}

#[test]
fn rule_days_situation_and_capped_salary() {
    let b = sample_bytes();
    // 27 days, with the control sum and recaps adjusted so only the rule is broken.
    let mut d = sample();
    d.lines[0].days = 27;
    let e = read_declaration(raw_bytes_of(&d).as_slice(), Some(&params())).unwrap_err();
    assert_eq!(
        (e.len(), e[0].field, e[0].problem.clone()),
        (1, "N_Jours_Declares", Problem::DaysRange)
    );
    // An unknown situation code.
    let (_, _, f, found, p) = one(&patch(&b, 3, 136, "XX"));
    assert_eq!(
        (f, found.as_str(), p),
        ("L_Situation", "XX", Problem::UnknownSituation)
    );
    // CS with days.
    let mut d = sample();
    d.lines[2].days = 3;
    let e = read_declaration(raw_bytes_of(&d).as_slice(), Some(&params())).unwrap_err();
    assert_eq!(
        (e.len(), e[0].problem.clone()),
        (1, Problem::NoPaySituation)
    );
    // Capped above real (without parameters), and not min(real, ceiling) (with them).
    let mut d = sample();
    d.lines[1].capped = Centimes(342_273);
    let raw = raw_bytes_of(&d);
    let e = read_declaration(raw.as_slice(), None).unwrap_err();
    assert_eq!(
        (e.len(), e[0].problem.clone()),
        (1, Problem::CappedAboveReal)
    );
    let mut d = sample();
    d.lines[0].capped = Centimes(550_000);
    let e = read_declaration(raw_bytes_of(&d).as_slice(), Some(&params())).unwrap_err();
    assert_eq!(
        (e.len(), e[0].problem.clone()),
        (1, Problem::CappedNotCeiling(600_000))
    );
}

#[test]
fn rule_control_sums_and_totals() {
    let b = sample_bytes();
    // A changed salary digit: its line's S_Ctr and the B03 and B06 totals.
    let e = errors(&patch(&b, 3, 120, "9"));
    let got: Vec<(u64, &str, String)> = e
        .iter()
        .map(|e| (e.line, e.field, e.problem.code().to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "S_Ctr", "control_sum".into()),
            (6, "N_T_Salaire_Reel", "total".into()),
            (10, "N_T_Salaire_Reel", "total".into()),
        ]
    );
    // A changed count in B05.
    let (line, rec, f, _, p) = one(&patch(&b, 9, 22, "3"));
    assert_eq!(
        (line, rec.as_str(), f, p),
        (9, "B05", "N_Nbr_Salaries", Problem::Total(2))
    );
}

#[test]
fn rule_entrants_need_a_cin_and_a_name_and_no_duplicates() {
    let mut d = sample();
    d.entrants[0].cin.clear();
    d.entrants[1].name.clear();
    d.entrants.push(Entrant {
        immatriculation: Some(100_000_011),
        name: "DOUBLE".into(),
        cin: "ZA12".into(),
        days: 1,
        gross: Centimes(100),
        capped: Centimes(100),
    });
    d.entrants.push(Entrant {
        immatriculation: None,
        name: "BAD CIN".into(),
        cin: "12345".into(),
        days: 1,
        gross: Centimes(100),
        capped: Centimes(100),
    });
    let e = read_declaration(raw_bytes_of(&d).as_slice(), None).unwrap_err();
    let got: Vec<(u64, &str, Problem)> = e
        .iter()
        .map(|e| (e.line, e.field, e.problem.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (7, "L_Num_CIN", Problem::CinRequired),
            (8, "L_Nom_Prenom", Problem::NameRequired),
            (9, "N_Num_Assure", Problem::DuplicateEmployee),
            (10, "L_Num_CIN", Problem::CinShape),
        ]
    );
}

/// Each error as (line, field, value found, problem).
fn listed(e: &[EbdsError]) -> Vec<(u64, &'static str, String, Problem)> {
    e.iter()
        .map(|e| (e.line, e.field, e.found.clone(), e.problem.clone()))
        .collect()
}

fn entrant(immatriculation: Option<u32>, name: &str, cin: &str) -> Entrant {
    Entrant {
        immatriculation,
        name: name.into(),
        cin: cin.into(),
        days: 10,
        gross: Centimes(100_000),
        capped: Centimes(100_000),
    }
}

#[test]
fn rule_every_employee_has_a_number_and_only_one_line() {
    // A B02 line numbered 000000000, and a B02 line repeating the one before it.
    let mut d = sample();
    d.lines[0].employee.immatriculation = 0;
    d.lines[2].employee.immatriculation = 100_000_012;
    let e = read_declaration(raw_bytes_of(&d).as_slice(), None).unwrap_err();
    assert_eq!(
        listed(&e),
        vec![
            (
                3,
                "N_Num_Assure",
                "000000000".into(),
                Problem::ImmatriculationRequired
            ),
            (
                5,
                "N_Num_Assure",
                "100000012".into(),
                Problem::DuplicateEmployee
            ),
        ]
    );
    // A blank number: required, and the line's control sum and the recaps no longer add up.
    let e = errors(&patch(&sample_bytes(), 3, 17, "         "));
    assert_eq!(
        listed(&e)[0],
        (
            3,
            "N_Num_Assure",
            "         ".into(),
            Problem::ImmatriculationRequired
        )
    );
    assert!(
        e[1..]
            .iter()
            .all(|e| matches!(e.problem, Problem::Total(_) | Problem::ControlSum(_))),
        "{e:#?}"
    );
    // Two entrants with one CIN, and two entrants with one number: each repeat is reported.
    let mut d = sample();
    d.entrants = vec![
        entrant(None, "ZAHRA AMINA", "ZA123456"),
        entrant(None, "ZAHRA AMINA", "ZA123456"),
        entrant(Some(100_000_099), "IDRISSI KARIM", ""),
        entrant(Some(100_000_099), "IDRISSI KARIM", ""),
    ];
    let e = read_declaration(raw_bytes_of(&d).as_slice(), None).unwrap_err();
    assert_eq!(
        listed(&e),
        vec![
            (
                8,
                "L_Num_CIN",
                "ZA123456".into(),
                Problem::DuplicateEmployee
            ),
            (
                10,
                "N_Num_Assure",
                "100000099".into(),
                Problem::DuplicateEmployee
            ),
        ]
    );
}

#[test]
fn rule_an_entrant_line_has_its_control_sum_and_a_number_or_nothing() {
    // The first entrant's S_Ctr (columns 118–136) off by one: the line, then B05 and B06,
    // whose totals no longer equal the sums found above them.
    let d = sample();
    let (first, second) = (d.entrants[0].control_sum(), d.entrants[1].control_sum());
    let all = d.lines.iter().map(Line::control_sum).sum::<u64>() + first + second;
    let e = errors(&patch(
        &sample_bytes(),
        7,
        118,
        &format!("{:019}", first + 1),
    ));
    assert_eq!(
        listed(&e),
        vec![
            (
                7,
                "S_Ctr",
                format!("{:019}", first + 1),
                Problem::ControlSum(first)
            ),
            (
                9,
                "N_T_Ctr",
                format!("{:019}", first + second),
                Problem::Total(first + second + 1)
            ),
            (10, "N_T_Ctr", format!("{all:019}"), Problem::Total(all + 1)),
        ]
    );
    // A blank number on a line that has a name and a CIN is not the empty entrant line.
    let mut one_entrant = sample();
    one_entrant.entrants.truncate(1);
    let b = declaration_bytes(&one_entrant, None).unwrap();
    let e = errors(&patch(&b, 7, 17, "         "));
    assert_eq!(
        listed(&e)[0],
        (7, "N_Num_Assure", "         ".into(), Problem::NotDigits)
    );
}

#[test]
fn rule_the_empty_entrant_line_stands_alone() {
    // The empty B04 line (no entrants) in place of the first or the second of two entrants.
    let mut none = sample();
    none.entrants.clear();
    let empty = declaration_bytes(&none, None).unwrap()[261 * 6..261 * 7].to_vec();
    let b = sample_bytes();
    for (at, found) in [(7usize, "100000099"), (8, "")] {
        let mut recs: Vec<Vec<u8>> = b.chunks(261).map(<[u8]>::to_vec).collect();
        recs[at - 1] = empty.clone();
        let e = errors(&recs.concat());
        assert_eq!(
            listed(&e)[0],
            (
                8,
                "N_Num_Assure",
                found.to_string(),
                Problem::PlaceholderNotAlone
            ),
            "empty line at {at}: {e:#?}"
        );
    }
}

#[test]
fn rule_the_category_of_each_family() {
    // A complementary declaration is numbered E1 to E9: E0 and EX are refused.
    let mut d = sample();
    d.form = Form::Complementary(3);
    d.lines.clear();
    let b = declaration_bytes(&d, None).unwrap();
    for cat in ["E0", "EX"] {
        let (line, _, f, found, p) = one(&patch(&b, 1, 18, cat));
        assert_eq!(
            (line, f, found.as_str(), p),
            (1, "L_Cat", cat, Problem::BadCategory("E1…E9".into()))
        );
    }
    let e9 = patch(&b, 1, 18, "E9");
    assert_eq!(
        read_declaration(e9.as_slice(), None).unwrap().form,
        Form::Complementary(9)
    );
    // A préétabli is A0.
    let e = read_preetabli(patch(&preetabli_sample_bytes(), 1, 18, "A1").as_slice()).unwrap_err();
    assert_eq!(
        listed(&e),
        vec![(1, "L_Cat", "A1".into(), Problem::BadCategory("A0".into()))]
    );
}

fn preetabli_sample() -> Preetabli {
    Preetabli {
        transfer_id: 7,
        identity: identity(),
        employees: vec![
            employee(100_000_011, "BENANI MOHAMED", 2),
            employee(100_000_012, "ALAOUI SARA", 4),
        ],
        layout: Layout::default(),
    }
}

fn preetabli_sample_bytes() -> Vec<u8> {
    preetabli_bytes(&preetabli_sample()).unwrap()
}

#[test]
fn rule_a_preetabli_checks_its_lines_and_its_recap() {
    let b = preetabli_sample_bytes();
    let read = |b: &[u8]| listed(&read_preetabli(b).unwrap_err());
    // A03's N_T_Num_Imma (columns 65–79) one more than the sum of the numbers.
    assert_eq!(
        read(&patch(&b, 5, 65, &format!("{:015}", 200_000_024u64))),
        vec![(
            5,
            "N_T_Num_Imma",
            format!("{:015}", 200_000_024u64),
            Problem::Total(200_000_023)
        )]
    );
    // A02 with no number, then with the number of the line before, then without a name.
    assert_eq!(
        read(&patch(&b, 3, 17, "000000000"))[0],
        (
            3,
            "N_Num_Assure",
            "000000000".into(),
            Problem::ImmatriculationRequired
        )
    );
    assert_eq!(
        read(&patch(&b, 4, 17, "100000011"))[0],
        (
            4,
            "N_Num_Assure",
            "100000011".into(),
            Problem::DuplicateEmployee
        )
    );
    assert_eq!(
        read(&patch(&b, 4, 26, &" ".repeat(60))),
        vec![(4, "L_Nom_Prenom", String::new(), Problem::NameRequired)]
    );
    // Children (columns 86–87) that A03 does not count.
    assert_eq!(
        read(&patch(&b, 3, 86, "03")),
        vec![(5, "N_T_Enfants", "000006".into(), Problem::Total(7))]
    );
}

/// A source that fails once its bytes are read.
struct FailsAfter {
    bytes: Vec<u8>,
    at: usize,
}

impl std::io::Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.bytes.len() {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = buf.len().min(self.bytes.len() - self.at).min(100);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn rule_an_unreadable_file_is_refused_whole_and_too_long_text_is_not_written() {
    // Four valid records, then the source fails: nothing of the file is returned.
    let b = sample_bytes();
    let r = std::io::BufReader::new(FailsAfter {
        bytes: b[..261 * 4].to_vec(),
        at: 0,
    });
    let e = read_declaration(r, None).unwrap_err();
    assert_eq!(
        e.iter()
            .map(|e| (e.line, e.problem.clone()))
            .collect::<Vec<_>>(),
        vec![(5, Problem::Unreadable)]
    );
    // The writer refuses a name longer than its 60 columns rather than cutting it.
    let mut d = sample();
    d.entrants[0].name = "A".repeat(61);
    let e = declaration_bytes(&d, None).unwrap_err();
    assert_eq!(
        (e[0].field, e[0].problem.clone()),
        ("L_Nom_Prenom", Problem::TooLong(60))
    );
}

#[test]
fn rule_line_endings_and_empty_lines() {
    let mut b = sample_bytes();
    // The third record ends with CRLF, the others with LF.
    b.insert(261 * 3 - 1, b'\r');
    let (line, _, _, _, p) = one(&b);
    assert_eq!((line, p), (3, Problem::MixedLineEndings));
    let mut b = sample_bytes();
    b.push(b'\n');
    let (line, _, _, _, p) = one(&b);
    assert_eq!((line, p), (11, Problem::EmptyLine));
}

#[test]
fn every_error_is_reported_at_once_and_capped() {
    let mut b = sample_bytes();
    for line in 3..=5 {
        b = patch(&b, line, 112, "XX");
    }
    let e = errors(&b);
    assert_eq!(
        e.iter().filter(|e| e.problem == Problem::NotDigits).count(),
        3
    );
    // A file of 20 000 unknown records lists MAX_ERRORS and counts the rest.
    let junk = "X".repeat(260) + "\n";
    let big = junk.repeat(20_000);
    let e = errors(big.as_bytes());
    assert_eq!(e.len(), MAX_ERRORS + 1);
    assert_eq!(
        e.last().unwrap().problem,
        Problem::TooManyErrors(20_000 + 6 - MAX_ERRORS as u64)
    );
}

#[test]
fn messages_in_french_arabic_and_english() {
    let e = &errors(&patch(&sample_bytes(), 3, 112, "27"))[0];
    assert_eq!(
        e.message(domain::Lang::Fr),
        "ligne 3, B02, N_Jours_Declares = « 27 » : de 0 à 26 jours"
    );
    assert!(e.message(domain::Lang::Ar).contains("من 0 إلى 26 يومًا"));
    assert_eq!(
        e.message(domain::Lang::En),
        "line 3, B02, N_Jours_Declares = \"27\" : 0 to 26 days"
    );
    // Display (for logs) never shows the value found.
    assert_eq!(e.to_string(), "line 3 B02 N_Jours_Declares: days_range");
}

/// The bytes of a declaration that breaks a rule (which the writer refuses to write): a valid
/// neighbour is written, then the broken values are patched in with the control sums and recaps
/// recomputed, so the file breaks that one rule and nothing else.
fn raw_bytes_of(d: &Declaration) -> Vec<u8> {
    let mut valid = d.clone();
    for l in &mut valid.lines {
        l.days = l.days.min(26);
        if l.situation.unpaid() {
            l.days = 0;
        }
        l.capped = Centimes(l.gross.0.min(600_000));
        if l.situation.unpaid() {
            l.gross = Centimes(0);
            l.capped = Centimes(0);
        }
    }
    for e in &mut valid.entrants {
        if e.name.is_empty() {
            e.name = "X".into();
        }
        if e.cin.is_empty() && e.immatriculation.is_none() {
            e.cin = "ZZ1".into();
        }
        if e.cin == "12345" {
            e.cin = "ZZ2".into();
        }
    }
    // Numbers and CINs the broken file repeats or leaves out are made distinct in the neighbour.
    let mut numbers = std::collections::HashSet::new();
    for (i, l) in valid.lines.iter_mut().enumerate() {
        if l.employee.immatriculation == 0 || !numbers.insert(l.employee.immatriculation) {
            l.employee.immatriculation = 190_000_000 + i as u32;
        }
    }
    let mut cins = std::collections::HashSet::new();
    for (i, e) in valid.entrants.iter_mut().enumerate() {
        if !e.cin.is_empty() && !cins.insert(e.cin.clone()) {
            e.cin = format!("ZY{i}");
        }
    }
    let mut seen = std::collections::HashSet::new();
    for e in &mut valid.entrants {
        if let Some(i) = e.immatriculation
            && (valid.lines.iter().any(|l| l.employee.immatriculation == i) || !seen.insert(i))
        {
            e.immatriculation = Some(i + 500);
        }
    }
    let template = declaration_bytes(&valid, None).unwrap();
    let mut out = template.clone();
    let set = |out: &mut Vec<u8>, rec: usize, col: usize, text: String| {
        let s = rec * 261 + col - 1;
        out[s..s + text.len()].copy_from_slice(text.as_bytes());
    };
    let mut ctr3 = 0u64;
    let (mut days3, mut gross3, mut capped3) = (0u64, 0u64, 0u64);
    for (i, l) in d.lines.iter().enumerate() {
        let rec = 2 + i;
        set(
            &mut out,
            rec,
            17,
            format!("{:09}", l.employee.immatriculation),
        );
        set(&mut out, rec, 112, format!("{:02}", l.days));
        set(&mut out, rec, 114, format!("{:013}", l.gross.0));
        set(&mut out, rec, 127, format!("{:09}", l.capped.0));
        set(&mut out, rec, 138, format!("{:019}", l.control_sum()));
        ctr3 += l.control_sum();
        days3 += u64::from(l.days);
        gross3 += l.gross.0 as u64;
        capped3 += l.capped.0 as u64;
    }
    let imma3: u64 = d
        .lines
        .iter()
        .map(|l| u64::from(l.employee.immatriculation))
        .sum();
    let b03 = 2 + d.lines.len();
    set(&mut out, b03, 65, format!("{imma3:015}"));
    set(&mut out, b03, 92, format!("{days3:06}"));
    set(&mut out, b03, 98, format!("{gross3:015}"));
    set(&mut out, b03, 113, format!("{capped3:013}"));
    set(&mut out, b03, 126, format!("{ctr3:019}"));
    let mut t = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (i, e) in d.entrants.iter().enumerate() {
        let rec = b03 + 1 + i;
        set(
            &mut out,
            rec,
            17,
            format!("{:09}", e.immatriculation.unwrap_or(0)),
        );
        set(&mut out, rec, 26, format!("{:<60}", e.name));
        set(&mut out, rec, 86, format!("{:<8}", e.cin));
        set(&mut out, rec, 118, format!("{:019}", e.control_sum()));
        t.0 += u64::from(e.immatriculation.unwrap_or(0));
        t.1 += u64::from(e.days);
        t.2 += e.gross.0 as u64;
        t.3 += e.capped.0 as u64;
        t.4 += e.control_sum();
    }
    let b05 = b03 + 1 + d.entrants.len().max(1);
    set(&mut out, b05, 23, format!("{:015}", t.0));
    set(&mut out, b05, 72, format!("{:019}", t.4));
    set(&mut out, b05 + 1, 23, format!("{:015}", imma3 + t.0));
    set(&mut out, b05 + 1, 38, format!("{:06}", days3 + t.1));
    set(&mut out, b05 + 1, 44, format!("{:015}", gross3 + t.2));
    set(&mut out, b05 + 1, 59, format!("{:013}", capped3 + t.3));
    set(&mut out, b05 + 1, 72, format!("{:019}", ctr3 + t.4));
    out
}

#[test]
fn huge_control_sums_do_not_overflow_and_complementary_files_have_one_e02() {
    // Two lines whose S_Ctr is the largest 19-digit number: errors, no overflow.
    let b = patch(
        &patch(&sample_bytes(), 3, 138, "9999999999999999999"),
        4,
        138,
        "9999999999999999999",
    );
    let e = errors(&b);
    assert!(
        e.iter()
            .all(|e| e.problem.code() == "control_sum" || e.problem.code() == "total")
    );
    // A complementary declaration without its E02 line, or with two.
    let mut d = sample();
    d.form = Form::Complementary(1);
    d.lines.clear();
    let bytes = declaration_bytes(&d, None).unwrap();
    let recs: Vec<&[u8]> = bytes.chunks(261).collect();
    let without: Vec<u8> = recs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .flat_map(|(_, r)| r.to_vec())
        .collect();
    assert_eq!(
        errors(&without)[0].problem,
        Problem::Missing(RecordType::new(Family::E, 2))
    );
    let mut twice: Vec<u8> = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        twice.extend_from_slice(r);
        if i == 2 {
            twice.extend_from_slice(r);
        }
    }
    assert_eq!(errors(&twice)[0].problem, Problem::OutOfOrder("E03".into()));
    // A blank E02 number is not the empty line.
    let blank = patch(&bytes, 3, 17, "         ");
    assert_eq!(
        errors(&blank)[0].problem,
        Problem::ComplementaryDeclaresEntrantsOnly
    );
}

// ---- properties ----

fn name() -> impl Strategy<Value = String> {
    "[A-Z][A-Z ]{0,58}[A-Z]".prop_map(|s| s)
}

fn arb_line() -> impl Strategy<Value = (String, u8, u8, i64, usize, i64)> {
    (
        name(),
        0u8..=6,
        0u8..=26,
        0i64..5_000_000,
        0usize..9,
        0i64..10_000,
    )
}

fn arb_entrant() -> impl Strategy<Value = (String, bool, u32, u8, i64)> {
    (
        name(),
        any::<bool>(),
        0u32..250_000,
        0u8..=26,
        0i64..5_000_000,
    )
}

prop_compose! {
    fn arb_declaration()(
        affiliate in 1_000_000u32..9_999_999,
        month in 1u8..=12,
        year in 2016u16..=2026,
        transfer in 0u64..99_999_999_999_999,
        lines in proptest::collection::vec(arb_line(), 0..12),
        entrants in proptest::collection::vec(arb_entrant(), 0..4),
        complementary in 0u8..=9,
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) -> Declaration {
        let mut id = identity();
        id.affiliate = affiliate;
        id.period = Period::new(year, month).unwrap();
        let form = if complementary == 0 { Form::Main } else { Form::Complementary(complementary) };
        let lines = if complementary == 0 {
            lines.into_iter().enumerate().map(|(i, (name, children, days, gross, sit, repay))| {
                let situation = Situation::ALL[sit];
                let (days, gross) = if situation.unpaid() { (0, 0) } else { (days, gross) };
                Line {
                    employee: Employee {
                        immatriculation: 100_000_001 + i as u32 * 7,
                        name,
                        children,
                        af_payable: Centimes(i64::from(children) * 30_000),
                        af_deductible: Centimes(0),
                        af_net: Centimes(i64::from(children) * 30_000),
                    },
                    af_repayable: Centimes(repay),
                    days,
                    gross: Centimes(gross),
                    capped: Centimes(gross.min(600_000)),
                    situation,
                }
            }).collect()
        } else {
            Vec::new()
        };
        let entrants = entrants.into_iter().enumerate().map(|(i, (name, numbered, cin, days, gross))| Entrant {
            immatriculation: numbered.then_some(200_000_001 + i as u32),
            name,
            // Distinct for each entrant (at most 3): two alike are a file the writer refuses.
            cin: if numbered && cin % 2 == 0 { String::new() } else { format!("QZ{}", cin * 4 + i as u32) },
            days,
            gross: Centimes(gross),
            capped: Centimes(gross.min(600_000)),
        }).collect();
        Declaration {
            form,
            transfer_id: transfer,
            identity: id,
            lines,
            entrants,
            layout: Layout {
                ending: if crlf { Ending::CrLf } else { Ending::Lf },
                final_newline,
            },
        }
    }
}

prop_compose! {
    fn arb_preetabli()(
        affiliate in 1_000_000u32..9_999_999,
        month in 1u8..=12,
        transfer in 0u64..99_999_999_999_999,
        employees in proptest::collection::vec((name(), 0u8..=12, 0i64..100_000, 0i64..100_000), 0..12),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) -> Preetabli {
        let mut id = identity();
        id.affiliate = affiliate;
        id.period = Period::new(2026, month).unwrap();
        Preetabli {
            transfer_id: transfer,
            identity: id,
            employees: employees.into_iter().enumerate().map(|(i, (name, children, pay, ded))| Employee {
                immatriculation: 100_000_001 + i as u32 * 13,
                name,
                children,
                af_payable: Centimes(pay),
                af_deductible: Centimes(ded.min(pay)),
                af_net: Centimes(pay - ded.min(pay)),
            }).collect(),
            layout: Layout {
                ending: if crlf { Ending::CrLf } else { Ending::Lf },
                final_newline,
            },
        }
    }
}

/// The fields whose content no sum covers: free text, dates, the transfer id, and the number
/// of a complementary declaration (the digit of `E1`…`E9`). A corruption there may give
/// another valid file; anywhere else it must be caught.
fn free_field(bytes: &[u8], at: usize) -> bool {
    let line_start = bytes[..at]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = at - line_start;
    let Some(rt) = bytes
        .get(line_start..line_start + 3)
        .and_then(RecordType::parse)
    else {
        return false;
    };
    let mut start = 0;
    for field in rt.layout() {
        if col >= start && col < start + field.len {
            let complementary_number =
                field.name == "L_Cat" && col == start + 1 && bytes[line_start] == b'E';
            return matches!(field.kind, ebds::layout::Kind::An | ebds::layout::Kind::D)
                && field.name != "L_Cat"
                || field.name == "N_Identif_Transfert"
                || complementary_number;
        }
        start += field.len;
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn write_then_read_gives_back_the_declaration(d in arb_declaration()) {
        let p = params();
        let bytes = declaration_bytes(&d, Some(&p)).unwrap();
        let back = read_declaration(bytes.as_slice(), Some(&p)).unwrap();
        prop_assert_eq!(&back, &d);
        prop_assert_eq!(declaration_bytes(&back, Some(&p)).unwrap(), bytes);
    }

    #[test]
    fn any_single_character_corruption_is_caught_or_only_changes_free_text(
        d in arb_declaration(),
        pos in any::<prop::sample::Index>(),
        with in prop::sample::select(b"0123456789 AZaz\r\n\t-\xc3\x00".to_vec()),
    ) {
        let p = params();
        let bytes = declaration_bytes(&d, Some(&p)).unwrap();
        let at = pos.index(bytes.len());
        prop_assume!(bytes[at] != with);
        let mut bad = bytes.clone();
        bad[at] = with;
        match read_declaration(bad.as_slice(), Some(&p)) {
            Err(e) => prop_assert!(!e.is_empty()),
            Ok(back) => {
                prop_assert!(free_field(&bytes, at), "accepted a corruption at byte {} ({:?})", at, with as char);
                prop_assert_ne!(&back, &d);
                prop_assert_eq!(declaration_bytes(&back, Some(&p)).unwrap(), bad);
            }
        }
    }

    #[test]
    fn a_preetabli_written_then_read_is_the_same(p in arb_preetabli()) {
        let bytes = preetabli_bytes(&p).unwrap();
        prop_assert_eq!(&read_preetabli(bytes.as_slice()).unwrap(), &p);
    }

    #[test]
    fn any_single_character_corruption_of_a_preetabli_is_caught_or_only_changes_free_text(
        p in arb_preetabli(),
        pos in any::<prop::sample::Index>(),
        with in prop::sample::select(b"0123456789 AZaz\r\n\t-\xc3\x00".to_vec()),
    ) {
        let bytes = preetabli_bytes(&p).unwrap();
        let at = pos.index(bytes.len());
        prop_assume!(bytes[at] != with);
        let mut bad = bytes.clone();
        bad[at] = with;
        match read_preetabli(bad.as_slice()) {
            Err(e) => prop_assert!(!e.is_empty()),
            Ok(back) => {
                prop_assert!(free_field(&bytes, at), "accepted a corruption at byte {} ({:?})", at, with as char);
                prop_assert_ne!(&back, &p);
                prop_assert_eq!(preetabli_bytes(&back).unwrap(), bad);
            }
        }
    }

    #[test]
    fn the_reader_never_panics_on_mutated_or_random_input(
        d in arb_declaration(),
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        noise in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = declaration_bytes(&d, None).unwrap();
        for (i, b) in cuts {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        fuzz_read(&bytes);
        fuzz_read(&noise);
    }
}
