//! The writer: builds every record from typed content, computes every control sum and recap,
//! and refuses to write a file that its own reader would not accept back identically.

use crate::error::{EbdsError, Problem};
use crate::layout::{Family, Kind, RECORD_LEN, RecordType, offsets};
use crate::model::*;
use crate::read::{read_declaration, read_preetabli};
use crate::text::allowed;
use domain::{Date, Parameters, Period};
use std::io::Write;

/// Why a file was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the file would break {} rule(s) of the format", .0.len())]
    Invalid(Vec<EbdsError>),
    #[error("could not write the file")]
    Io(#[from] std::io::Error),
}

/// One field's value, in layout order.
enum W<'a> {
    Type,
    N(i128),
    An(&'a str),
    D(Date),
    P(Period),
    Sit(Situation),
    Blank,
    Filler,
}

struct Out {
    bytes: Vec<u8>,
    ending: Ending,
    line: u64,
    errors: Vec<EbdsError>,
}

impl Out {
    fn record(&mut self, rt: RecordType, values: &[W<'_>]) {
        self.line += 1;
        let layout = rt.layout();
        let start = self.bytes.len();
        for ((_, field), v) in offsets(layout).zip(values) {
            let mut bad = |found: String, problem: Problem| {
                self.errors.push(EbdsError {
                    line: self.line,
                    record: Some(rt),
                    field: field.name,
                    found,
                    problem,
                })
            };
            let text = match (v, field.kind) {
                (W::Type, Kind::Type) => rt.to_string(),
                (W::N(n), Kind::N) => {
                    let s = format!("{n:0w$}", w = field.len);
                    if *n < 0 {
                        bad(n.to_string(), Problem::NotDigits);
                    } else if s.len() > field.len {
                        bad(n.to_string(), Problem::TooLarge);
                    }
                    s
                }
                (W::Blank, Kind::N) => " ".repeat(field.len),
                (W::An(t), Kind::An) => {
                    if !t.bytes().all(allowed) {
                        bad(t.to_string(), Problem::NotAllowedChar);
                    } else if t.len() > field.len {
                        bad(t.to_string(), Problem::TooLong(field.len));
                    }
                    format!("{t:<w$}", w = field.len)
                }
                (W::D(d), Kind::D) => format!("{:04}{:02}{:02}", d.year, d.month, d.day),
                (W::P(p), Kind::P) => p.to_string(),
                (W::Sit(s), Kind::Situation) => s.code().to_string(),
                (W::Filler, Kind::Filler) => " ".repeat(field.len),
                _ => {
                    bad(String::new(), Problem::Unreadable);
                    " ".repeat(field.len)
                }
            };
            let mut b = text.into_bytes();
            b.resize(field.len, b' ');
            self.bytes.extend_from_slice(&b[..field.len]);
        }
        debug_assert_eq!(self.bytes.len() - start, RECORD_LEN);
        self.bytes.extend_from_slice(self.ending.bytes());
    }
}

fn nature(out: &mut Out, family: Family, transfer_id: u64, cat: &str) {
    let rt = RecordType::new(family, 0);
    out.record(
        rt,
        &[
            W::Type,
            W::N(i128::from(transfer_id)),
            W::An(cat),
            W::Filler,
        ],
    );
}

fn identity(out: &mut Out, family: Family, i: &Identity) {
    out.record(
        RecordType::new(family, 1),
        &[
            W::Type,
            W::N(i128::from(i.affiliate)),
            W::P(i.period),
            W::An(&i.name),
            W::An(&i.activity),
            W::An(&i.address),
            W::An(&i.city),
            W::An(&i.postcode),
            W::An(&i.agency),
            W::D(i.issued),
            W::D(i.due),
        ],
    );
}

fn c(v: domain::Centimes) -> i128 {
    i128::from(v.0)
}

fn finish(mut out: Out, layout: Layout) -> Vec<u8> {
    if !layout.final_newline {
        let n = out.ending.bytes().len();
        out.bytes.truncate(out.bytes.len().saturating_sub(n));
    }
    out.bytes
}

/// The bytes of a préétabli, or every reason it cannot be written.
pub fn preetabli_bytes(p: &Preetabli) -> Result<Vec<u8>, Vec<EbdsError>> {
    let mut out = Out {
        bytes: Vec::with_capacity((p.employees.len() + 3) * (RECORD_LEN + 2)),
        ending: p.layout.ending,
        line: 0,
        errors: Vec::new(),
    };
    let (a, per) = (i128::from(p.identity.affiliate), p.identity.period);
    nature(&mut out, Family::A, p.transfer_id, "A0");
    identity(&mut out, Family::A, &p.identity);
    let (mut children, mut pay, mut ded, mut net, mut imma) = (0i128, 0i128, 0i128, 0i128, 0i128);
    for e in &p.employees {
        out.record(
            RecordType::new(Family::A, 2),
            &[
                W::Type,
                W::N(a),
                W::P(per),
                W::N(i128::from(e.immatriculation)),
                W::An(&e.name),
                W::N(i128::from(e.children)),
                W::N(c(e.af_payable)),
                W::N(c(e.af_deductible)),
                W::N(c(e.af_net)),
                W::Filler,
            ],
        );
        children += i128::from(e.children);
        pay += c(e.af_payable);
        ded += c(e.af_deductible);
        net += c(e.af_net);
        imma += i128::from(e.immatriculation);
    }
    out.record(
        RecordType::new(Family::A, 3),
        &[
            W::Type,
            W::N(a),
            W::P(per),
            W::N(p.employees.len() as i128),
            W::N(children),
            W::N(pay),
            W::N(ded),
            W::N(net),
            W::N(imma),
            W::Filler,
        ],
    );
    if !out.errors.is_empty() {
        return Err(out.errors);
    }
    let bytes = finish(out, p.layout);
    match read_preetabli(bytes.as_slice()) {
        Ok(back) if &back == p => Ok(bytes),
        Ok(_) => Err(vec![not_identical()]),
        Err(e) => Err(e),
    }
}

fn not_identical() -> EbdsError {
    EbdsError {
        line: 0,
        record: None,
        field: "",
        found: String::new(),
        problem: Problem::Unreadable,
    }
}

/// The bytes of a declaration (main or complementary), or every reason it cannot be written.
/// With `params`, capped salaries must equal min(real, ceiling).
pub fn declaration_bytes(
    d: &Declaration,
    params: Option<&Parameters>,
) -> Result<Vec<u8>, Vec<EbdsError>> {
    let family = match d.form {
        Form::Main => Family::B,
        Form::Complementary(_) => Family::E,
    };
    let mut out = Out {
        bytes: Vec::with_capacity((d.lines.len() + d.entrants.len() + 7) * (RECORD_LEN + 2)),
        ending: d.layout.ending,
        line: 0,
        errors: Vec::new(),
    };
    let (a, per) = (i128::from(d.identity.affiliate), d.identity.period);
    let cat = d.form.category();
    nature(&mut out, family, d.transfer_id, &cat);
    identity(&mut out, family, &d.identity);
    let rt = |n| RecordType::new(family, n);
    // Lines (B02), or the one empty E02 line of a complementary declaration.
    let mut s = [0i128; 11];
    for l in &d.lines {
        let e = &l.employee;
        let vals = [
            1,
            i128::from(e.children),
            c(e.af_payable),
            c(e.af_deductible),
            c(e.af_net),
            i128::from(e.immatriculation),
            c(l.af_repayable),
            i128::from(l.days),
            c(l.gross),
            c(l.capped),
            i128::from(l.control_sum()),
        ];
        for (acc, v) in s.iter_mut().zip(vals) {
            *acc += v;
        }
        out.record(
            rt(2),
            &[
                W::Type,
                W::N(a),
                W::P(per),
                W::N(i128::from(e.immatriculation)),
                W::An(&e.name),
                W::N(i128::from(e.children)),
                W::N(c(e.af_payable)),
                W::N(c(e.af_deductible)),
                W::N(c(e.af_net)),
                W::N(c(l.af_repayable)),
                W::N(i128::from(l.days)),
                W::N(c(l.gross)),
                W::N(c(l.capped)),
                W::Sit(l.situation),
                W::N(i128::from(l.control_sum())),
                W::Filler,
            ],
        );
    }
    if family == Family::E {
        out.record(
            rt(2),
            &[
                W::Type,
                W::N(a),
                W::P(per),
                W::N(0),
                W::An(""),
                W::N(0),
                W::N(0),
                W::N(0),
                W::N(0),
                W::N(0),
                W::N(0),
                W::N(0),
                W::N(0),
                W::Sit(Situation::Normal),
                W::N(0),
                W::Filler,
            ],
        );
    }
    let mut recap3 = vec![W::Type, W::N(a), W::P(per)];
    recap3.extend(s.iter().map(|v| W::N(*v)));
    recap3.push(W::Filler);
    out.record(rt(3), &recap3);
    // Entrants (B04), or the one empty line when there are none.
    let mut t = [0i128; 6];
    for e in &d.entrants {
        let vals = [
            1,
            i128::from(e.immatriculation.unwrap_or(0)),
            i128::from(e.days),
            c(e.gross),
            c(e.capped),
            i128::from(e.control_sum()),
        ];
        for (acc, v) in t.iter_mut().zip(vals) {
            *acc += v;
        }
        out.record(
            rt(4),
            &[
                W::Type,
                W::N(a),
                W::P(per),
                W::N(i128::from(e.immatriculation.unwrap_or(0))),
                W::An(&e.name),
                W::An(&e.cin),
                W::N(i128::from(e.days)),
                W::N(c(e.gross)),
                W::N(c(e.capped)),
                W::N(i128::from(e.control_sum())),
                W::Filler,
            ],
        );
    }
    if d.entrants.is_empty() {
        out.record(
            rt(4),
            &[
                W::Type,
                W::N(a),
                W::P(per),
                W::Blank,
                W::An(""),
                W::An(""),
                W::N(0),
                W::N(0),
                W::N(0),
                W::N(0),
                W::Filler,
            ],
        );
    }
    let short = |out: &mut Out, n: u8, v: [i128; 6]| {
        let mut vals = vec![W::Type, W::N(a), W::P(per)];
        vals.extend(v.iter().map(|x| W::N(*x)));
        vals.push(W::Filler);
        out.record(rt(n), &vals);
    };
    short(&mut out, 5, t);
    let lines_short = [s[0], s[5], s[7], s[8], s[9], s[10]];
    let mut global = t;
    for (g, l) in global.iter_mut().zip(lines_short) {
        *g += l;
    }
    short(&mut out, 6, global);
    if !out.errors.is_empty() {
        return Err(out.errors);
    }
    let bytes = finish(out, d.layout);
    match read_declaration(bytes.as_slice(), params) {
        Ok(back) if &back == d => Ok(bytes),
        Ok(_) => Err(vec![not_identical()]),
        Err(e) => Err(e),
    }
}

/// Writes a préétabli.
pub fn write_preetabli(p: &Preetabli, mut w: impl Write) -> Result<(), WriteError> {
    let bytes = preetabli_bytes(p).map_err(WriteError::Invalid)?;
    w.write_all(&bytes)?;
    Ok(())
}

/// Writes a declaration.
pub fn write_declaration(
    d: &Declaration,
    params: Option<&Parameters>,
    mut w: impl Write,
) -> Result<(), WriteError> {
    let bytes = declaration_bytes(d, params).map_err(WriteError::Invalid)?;
    w.write_all(&bytes)?;
    Ok(())
}
