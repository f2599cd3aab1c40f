//! The reader: checks every rule of the format and reports every error at once, each with its
//! line, record, field and the value found. It reads line by line with a bounded buffer, so a
//! file with no line breaks or a huge file costs no more memory than its typed content; and it
//! returns either the whole typed file or the errors, never part of a file.

use crate::error::{EbdsError, MAX_ERRORS, Problem};
use crate::layout::{Family, Field, Kind, RECORD_LEN, RecordType, offsets};
use crate::model::*;
use crate::text::allowed;
use domain::{Centimes, Cin, Date, Parameters, Period};
use foldhash::{HashSet, HashSetExt};
use std::io::BufRead;

/// A file of any family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EbdsFile {
    Preetabli(Preetabli),
    Declaration(Declaration),
}

/// Reads a préétabli (A00–A03).
pub fn read_preetabli(r: impl BufRead) -> Result<Preetabli, Vec<EbdsError>> {
    match read_file(r, None, &[Family::A])? {
        EbdsFile::Preetabli(p) => Ok(p),
        EbdsFile::Declaration(_) => Err(vec![wrong_family_file(Family::A)]),
    }
}

/// Reads a declaration (B00–B06) or a complementary declaration (E00–E06). With `params`, a
/// capped salary must also equal min(real, ceiling of the period).
pub fn read_declaration(
    r: impl BufRead,
    params: Option<&Parameters>,
) -> Result<Declaration, Vec<EbdsError>> {
    match read_file(r, params, &[Family::B, Family::E])? {
        EbdsFile::Declaration(d) => Ok(d),
        EbdsFile::Preetabli(_) => Err(vec![wrong_family_file(Family::B)]),
    }
}

fn wrong_family_file(expected: Family) -> EbdsError {
    EbdsError {
        line: 1,
        record: None,
        field: "L_Type_Enreg",
        found: String::new(),
        problem: Problem::WrongFamily(expected.letter()),
    }
}

/// Reads any e-BDS file whose family is one of `families`.
pub fn read_file(
    r: impl BufRead,
    params: Option<&Parameters>,
    families: &[Family],
) -> Result<EbdsFile, Vec<EbdsError>> {
    let mut c = Checker::new(params, families);
    let mut lines = Lines::new(r);
    loop {
        match lines.next_line() {
            Ok(Some(raw)) => c.line(raw),
            Ok(None) => break,
            Err(()) => {
                // The line that could not be read is the one after the last one read.
                c.err(
                    lines.number + 1,
                    None,
                    "",
                    String::new(),
                    Problem::Unreadable,
                );
                c.cut_short = true;
                break;
            }
        }
    }
    c.finish(Layout {
        ending: lines.ending.unwrap_or_default(),
        final_newline: lines.final_newline,
    })
}

/// Splits the input into records, keeping at most a few hundred bytes of any line.
struct Lines<R> {
    r: R,
    buf: Vec<u8>,
    /// Length of the current line, even past what was kept.
    len: usize,
    number: u64,
    ending: Option<Ending>,
    ending_problem: bool,
    final_newline: bool,
}

const KEEP: usize = RECORD_LEN + 64;

impl<R: BufRead> Lines<R> {
    fn new(r: R) -> Self {
        Lines {
            r,
            buf: Vec::with_capacity(KEEP),
            len: 0,
            number: 0,
            ending: None,
            ending_problem: false,
            final_newline: true,
        }
    }

    /// The next line without its ending, or `None` at the end.
    fn next_line(&mut self) -> Result<Option<RawLine<'_>>, ()> {
        self.buf.clear();
        self.len = 0;
        let mut newline = false;
        loop {
            let chunk = match self.r.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            };
            if chunk.is_empty() {
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = KEEP.saturating_sub(self.buf.len()).min(take);
            self.buf.extend_from_slice(&chunk[..room]);
            self.len += take;
            self.r.consume(take);
            if done {
                newline = true;
                break;
            }
        }
        if self.len == 0 {
            return Ok(None);
        }
        self.number += 1;
        let mut len = self.len;
        let mut ending = None;
        if newline {
            len -= 1;
            self.buf.truncate(self.buf.len().min(len));
            ending = Some(Ending::Lf);
            if self.buf.last() == Some(&b'\r') && self.buf.len() == len {
                self.buf.pop();
                len -= 1;
                ending = Some(Ending::CrLf);
            }
        }
        self.final_newline = newline;
        self.ending_problem = false;
        if let Some(e) = ending {
            match self.ending {
                None => self.ending = Some(e),
                Some(first) if first != e => self.ending_problem = true,
                _ => {}
            }
        }
        Ok(Some(RawLine {
            number: self.number,
            mixed_ending: self.ending_problem,
            bytes: &self.buf,
            len,
        }))
    }
}

struct RawLine<'a> {
    number: u64,
    mixed_ending: bool,
    bytes: &'a [u8],
    /// The full length of the line without its ending.
    len: usize,
}

/// A parsed field value; text borrows the line it was read from.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Num(u64),
    /// An N field of spaces where a blank line is allowed.
    Blank,
    Text(&'a str),
    Date(Date),
    Period(Period),
    Situation(Situation),
    /// Broken (already reported) or not kept (type, filler).
    None,
}

impl Value<'_> {
    fn num(&self) -> Option<u64> {
        match self {
            Value::Num(n) => Some(*n),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Running totals of B02 (or A02) lines.
#[derive(Default, Clone, Copy)]
struct LineSums {
    count: u64,
    children: u64,
    af_payable: u64,
    af_deductible: u64,
    af_net: u64,
    imma: u64,
    af_repayable: u64,
    days: u64,
    gross: u64,
    capped: u64,
    control: u64,
}

#[derive(Default, Clone, Copy)]
struct ShortSums {
    count: u64,
    imma: u64,
    days: u64,
    gross: u64,
    capped: u64,
    control: u64,
}

impl ShortSums {
    fn plus(self, o: ShortSums) -> ShortSums {
        ShortSums {
            count: self.count.saturating_add(o.count),
            imma: self.imma.saturating_add(o.imma),
            days: self.days.saturating_add(o.days),
            gross: self.gross.saturating_add(o.gross),
            capped: self.capped.saturating_add(o.capped),
            control: self.control.saturating_add(o.control),
        }
    }
}

struct Checker<'p> {
    params: Option<&'p Parameters>,
    families: Vec<Family>,
    family: Option<Family>,
    /// Number of the last record type seen, if any.
    last: Option<u8>,
    errors: Vec<EbdsError>,
    more: u64,
    transfer_id: Option<u64>,
    form: Option<Form>,
    identity: Option<Identity>,
    header: Option<(u32, Period)>,
    employees: Vec<Employee>,
    lines: Vec<Line>,
    entrants: Vec<Entrant>,
    line_sums: LineSums,
    entrant_sums: ShortSums,
    seen_imma: HashSet<u32>,
    seen_cin: HashSet<String>,
    placeholder_at: Option<u64>,
    entrant_at: Option<u64>,
    last_line: u64,
    /// Some B02 (A02) line could not be counted: its recaps are not compared (the line's own
    /// error is the one to fix).
    lines_tainted: bool,
    /// The same for B04 lines.
    entrants_tainted: bool,
    /// The source failed before its end: no record is reported missing.
    cut_short: bool,
}

impl<'p> Checker<'p> {
    fn new(params: Option<&'p Parameters>, families: &[Family]) -> Self {
        Checker {
            params,
            families: families.to_vec(),
            family: None,
            last: None,
            errors: Vec::new(),
            more: 0,
            transfer_id: None,
            form: None,
            identity: None,
            header: None,
            employees: Vec::new(),
            lines: Vec::new(),
            entrants: Vec::new(),
            line_sums: LineSums::default(),
            entrant_sums: ShortSums::default(),
            seen_imma: HashSet::new(),
            seen_cin: HashSet::new(),
            placeholder_at: None,
            entrant_at: None,
            last_line: 0,
            lines_tainted: false,
            entrants_tainted: false,
            cut_short: false,
        }
    }

    fn err(
        &mut self,
        line: u64,
        record: Option<RecordType>,
        field: &'static str,
        found: String,
        problem: Problem,
    ) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(EbdsError {
                line,
                record,
                field,
                found,
                problem,
            });
        } else {
            self.more += 1;
        }
    }

    fn line(&mut self, raw: RawLine<'_>) {
        let (n, mixed_ending) = (raw.number, raw.mixed_ending);
        self.last_line = n;
        let shown = || String::from_utf8_lossy(raw.bytes).trim_end().to_string();
        if mixed_ending {
            self.err(n, None, "", String::new(), Problem::MixedLineEndings);
        }
        if raw.len == 0 {
            self.err(n, None, "", String::new(), Problem::EmptyLine);
            return;
        }
        let rt = raw.bytes.get(..3).and_then(RecordType::parse);
        let Some(rt) = rt else {
            let found = String::from_utf8_lossy(&raw.bytes[..raw.bytes.len().min(3)]).to_string();
            self.err(n, None, "L_Type_Enreg", found, Problem::UnknownRecord);
            self.lines_tainted = true;
            self.entrants_tainted = true;
            return;
        };
        if raw.len != RECORD_LEN {
            self.err(n, Some(rt), "", shown(), Problem::Length(raw.len));
            self.taint(rt);
            return;
        }
        if !self.order(n, rt) {
            return;
        }
        let values = self.fields(n, rt, raw.bytes);
        self.record(n, rt, &values[..rt.layout().len()]);
    }

    /// Checks the family and the order of records; false if the record belongs to another
    /// family (its content is then not checked further).
    fn order(&mut self, n: u64, rt: RecordType) -> bool {
        let family = *self.family.get_or_insert(rt.family);
        if !self.families.contains(&family) || rt.family != family {
            let expected = if self.families.contains(&family) {
                family
            } else {
                self.families[0]
            };
            self.err(
                n,
                Some(rt),
                "L_Type_Enreg",
                rt.to_string(),
                Problem::WrongFamily(expected.letter()),
            );
            self.lines_tainted = true;
            self.entrants_tainted = true;
            return false;
        }
        let num = rt.number;
        // B02 and B04/E04 repeat; a complementary declaration has exactly one E02 (the empty
        // line), so that it is written back as it came.
        let repeatable = (num == 2 && family != Family::E) || num == 4;
        match self.last {
            Some(last) if num < last || (num == last && !repeatable) => {
                let expected = self.expected_after(last);
                self.err(
                    n,
                    Some(rt),
                    "L_Type_Enreg",
                    rt.to_string(),
                    Problem::OutOfOrder(expected),
                );
                return true;
            }
            _ => {}
        }
        let from = self.last.map_or(0, |l| l + 1);
        for skipped in from..num {
            if skipped != 2 || family == Family::E {
                self.err(
                    n,
                    Some(rt),
                    "L_Type_Enreg",
                    rt.to_string(),
                    Problem::Missing(RecordType::new(family, skipped)),
                );
            }
        }
        self.last = Some(self.last.map_or(num, |l| l.max(num)));
        true
    }

    fn last_number(&self) -> u8 {
        match self.family.unwrap_or(self.families[0]) {
            Family::A => 3,
            _ => 6,
        }
    }

    fn expected_after(&self, last: u8) -> String {
        let family = self.family.unwrap_or(Family::B);
        let next = RecordType::new(family, (last + 1).min(self.last_number()));
        if (last == 2 && family != Family::E) || last == 4 {
            format!("{} / {next}", RecordType::new(family, last))
        } else if last >= self.last_number() {
            "—".into()
        } else {
            next.to_string()
        }
    }

    /// Checks every field's shape; returns the values in layout order (the first
    /// `rt.layout().len()` of the array: no allocation per record).
    fn fields<'a>(&mut self, n: u64, rt: RecordType, b: &'a [u8]) -> [Value<'a>; MAX_FIELDS] {
        let mut out = [Value::None; MAX_FIELDS];
        for ((start, field), slot) in offsets(rt.layout()).zip(&mut out) {
            let raw = &b[start..start + field.len];
            let v = self.field(n, rt, field, raw);
            if field.kind == Kind::N && matches!(v, Value::None) {
                self.taint(rt);
            }
            *slot = v;
        }
        out
    }

    fn taint(&mut self, rt: RecordType) {
        match rt.number {
            2 => self.lines_tainted = true,
            4 => self.entrants_tainted = true,
            _ => {}
        }
    }

    fn field<'a>(&mut self, n: u64, rt: RecordType, field: &Field, raw: &'a [u8]) -> Value<'a> {
        let shown = || String::from_utf8_lossy(raw).to_string();
        match field.kind {
            Kind::Type => Value::None,
            Kind::N => {
                if let Some(v) = number(raw) {
                    Value::Num(v)
                } else if spaces(raw) && field.name == "N_Num_Assure" && rt.family != Family::A {
                    Value::Blank
                } else {
                    self.err(n, Some(rt), field.name, shown(), Problem::NotDigits);
                    Value::None
                }
            }
            Kind::An => {
                if raw.iter().fold(true, |ok, b| ok & allowed(*b)) {
                    // Allowed bytes are ASCII: the text is the field without its trailing spaces.
                    Value::Text(std::str::from_utf8(trim_spaces(raw)).unwrap_or(""))
                } else {
                    self.err(n, Some(rt), field.name, shown(), Problem::NotAllowedChar);
                    Value::None
                }
            }
            Kind::D => match parse_date(raw) {
                Some(d) => Value::Date(d),
                None => {
                    self.err(n, Some(rt), field.name, shown(), Problem::BadDate);
                    Value::None
                }
            },
            Kind::P => match number(raw)
                .filter(|_| raw.len() == 6)
                .and_then(|v| Period::new((v / 100) as u16, (v % 100) as u8).ok())
            {
                Some(p) => Value::Period(p),
                None => {
                    self.err(n, Some(rt), field.name, shown(), Problem::BadPeriod);
                    Value::None
                }
            },
            Kind::Situation => match Situation::parse(raw) {
                Some(s) => Value::Situation(s),
                None => {
                    self.err(n, Some(rt), field.name, shown(), Problem::UnknownSituation);
                    Value::None
                }
            },
            Kind::Filler => {
                if spaces(raw) {
                    Value::None
                } else {
                    let t = shown().trim().to_string();
                    self.err(n, Some(rt), field.name, t, Problem::NotBlank);
                    Value::None
                }
            }
        }
    }

    /// The affiliate and period of every record after 01 must repeat the 01 record's.
    fn check_header(&mut self, n: u64, rt: RecordType, v: &[Value]) {
        let Some((affiliate, period)) = self.header else {
            return;
        };
        if let Some(a) = v[1].num()
            && a != u64::from(affiliate)
        {
            self.err(
                n,
                Some(rt),
                "N_Num_Affilie",
                format!("{a:07}"),
                Problem::DiffersFromHeader(format!("{affiliate:07}")),
            );
        }
        if let Value::Period(p) = v[2]
            && p != period
        {
            self.err(
                n,
                Some(rt),
                "L_Periode",
                p.to_string(),
                Problem::DiffersFromHeader(period.to_string()),
            );
        }
    }

    fn record(&mut self, n: u64, rt: RecordType, v: &[Value]) {
        if rt.number >= 2 {
            self.check_header(n, rt, v);
        }
        match (rt.family, rt.number) {
            (_, 0) => self.nature(n, rt, v),
            (_, 1) => self.identity(n, rt, v),
            (Family::A, 2) => {
                if let Some(e) = self.employee(n, rt, v) {
                    self.employees.push(e);
                }
            }
            (Family::A, _) => self.preetabli_recap(n, rt, v),
            (_, 2) => self.decl_line(n, rt, v),
            (_, 3) => self.line_recap(n, rt, v),
            (_, 4) => self.entrant(n, rt, v),
            (_, 5) => {
                let s = self.entrant_sums;
                self.short_recap(n, rt, v, s);
            }
            _ => {
                let s = self.line_short().plus(self.entrant_sums);
                self.short_recap(n, rt, v, s);
            }
        }
    }

    fn nature(&mut self, n: u64, rt: RecordType, v: &[Value]) {
        self.transfer_id = v[1].num();
        let cat = v[2].text().unwrap_or("").to_string();
        let form = match rt.family {
            Family::A => (cat == "A0").then_some(Form::Main),
            Family::B => (cat == "B0").then_some(Form::Main),
            Family::E => match cat.as_bytes() {
                [b'E', d @ b'1'..=b'9'] => Some(Form::Complementary(d - b'0')),
                _ => None,
            },
        };
        if form.is_none() && matches!(v[2], Value::Text(_)) {
            let expected = match rt.family {
                Family::A => "A0",
                Family::B => "B0",
                Family::E => "E1…E9",
            };
            self.err(
                n,
                Some(rt),
                "L_Cat",
                cat,
                Problem::BadCategory(expected.into()),
            );
        }
        self.form = form;
    }

    fn identity(&mut self, _n: u64, _rt: RecordType, v: &[Value]) {
        let text = |i: usize| v[i].text().unwrap_or("").to_string();
        let (Some(a), Value::Period(p)) = (v[1].num(), &v[2]) else {
            return;
        };
        self.header = Some((a as u32, *p));
        let (Value::Date(issued), Value::Date(due)) = (&v[9], &v[10]) else {
            return;
        };
        self.identity = Some(Identity {
            affiliate: a as u32,
            period: *p,
            name: text(3),
            activity: text(4),
            address: text(5),
            city: text(6),
            postcode: text(7),
            agency: text(8),
            issued: *issued,
            due: *due,
        });
    }

    /// The employee part shared by A02 and B02 (fields 3–8).
    fn employee(&mut self, n: u64, rt: RecordType, v: &[Value]) -> Option<Employee> {
        let imma = match v[3] {
            Value::Num(0) | Value::Blank => {
                self.err(
                    n,
                    Some(rt),
                    "N_Num_Assure",
                    text_of(&v[3]),
                    Problem::ImmatriculationRequired,
                );
                None
            }
            Value::Num(i) => {
                if !self.seen_imma.insert(i as u32) {
                    self.err(
                        n,
                        Some(rt),
                        "N_Num_Assure",
                        format!("{i:09}"),
                        Problem::DuplicateEmployee,
                    );
                }
                Some(i as u32)
            }
            _ => None,
        };
        if let Value::Text(t) = &v[4]
            && t.trim().is_empty()
        {
            self.err(
                n,
                Some(rt),
                "L_Nom_Prenom",
                String::new(),
                Problem::NameRequired,
            );
        }
        let (children, pay, ded, net) = (v[5].num(), v[6].num(), v[7].num(), v[8].num());
        let s = &mut self.line_sums;
        s.count += 1;
        s.imma = s.imma.saturating_add(u64::from(imma.unwrap_or(0)));
        s.children = s.children.saturating_add(children.unwrap_or(0));
        s.af_payable = s.af_payable.saturating_add(pay.unwrap_or(0));
        s.af_deductible = s.af_deductible.saturating_add(ded.unwrap_or(0));
        s.af_net = s.af_net.saturating_add(net.unwrap_or(0));
        Some(Employee {
            immatriculation: imma?,
            name: v[4].text()?.to_string(),
            children: children? as u8,
            af_payable: Centimes(pay? as i64),
            af_deductible: Centimes(ded? as i64),
            af_net: Centimes(net? as i64),
        })
    }

    fn compare(&mut self, n: u64, rt: RecordType, v: &[Value], idx: usize, expected: u64) {
        let tainted = match rt.number {
            3 => self.lines_tainted,
            5 => self.entrants_tainted,
            _ => self.lines_tainted || self.entrants_tainted,
        };
        if tainted {
            return;
        }
        if let Some(found) = v[idx].num()
            && found != expected
        {
            let field = rt.layout()[idx];
            self.err(
                n,
                Some(rt),
                field.name,
                format!("{found:0w$}", w = field.len),
                Problem::Total(expected),
            );
        }
    }

    /// Compares the recap's fields, from the 4th on, with what the lines add up to.
    fn compare_recap(&mut self, n: u64, rt: RecordType, v: &[Value], wants: &[u64]) {
        for (i, want) in wants.iter().enumerate() {
            self.compare(n, rt, v, 3 + i, *want);
        }
    }

    fn preetabli_recap(&mut self, n: u64, rt: RecordType, v: &[Value]) {
        let s = self.line_sums;
        let wants = [
            s.count,
            s.children,
            s.af_payable,
            s.af_deductible,
            s.af_net,
            s.imma,
        ];
        self.compare_recap(n, rt, v, &wants);
    }

    /// min(gross, ceiling) by the dated table, if the period has a ceiling.
    fn capped(&self, gross: u64) -> Option<u64> {
        let (_, period) = self.header?;
        let gross = Centimes(i64::try_from(gross).unwrap_or(i64::MAX));
        let capped = self.params?.capped_at(period, gross)?;
        Some(capped.0.max(0) as u64)
    }

    /// Days, salaries and their rules, shared by B02 and B04 lines.
    fn pay(
        &mut self,
        n: u64,
        rt: RecordType,
        (days, gross, capped): (&Value, &Value, &Value),
        names: (&'static str, &'static str, &'static str),
    ) {
        if let Some(d) = days.num()
            && d > 26
        {
            self.err(n, Some(rt), names.0, format!("{d:02}"), Problem::DaysRange);
        }
        let (Some(g), Some(c)) = (gross.num(), capped.num()) else {
            return;
        };
        match self.capped(g) {
            Some(want) if c != want => {
                self.err(
                    n,
                    Some(rt),
                    names.2,
                    format!("{c:09}"),
                    Problem::CappedNotCeiling(want as i64),
                );
            }
            Some(_) => {}
            None if c > g => {
                self.err(
                    n,
                    Some(rt),
                    names.2,
                    format!("{c:09}"),
                    Problem::CappedAboveReal,
                );
            }
            None => {}
        }
    }

    fn decl_line(&mut self, n: u64, rt: RecordType, v: &[Value]) {
        let placeholder = match rt.family {
            Family::E => matches!(v[3], Value::Num(0)),
            _ => matches!(v[3], Value::Num(0) | Value::Blank),
        } && v[4].text() == Some("")
            && [5, 6, 7, 8, 9, 10, 11, 12, 14]
                .iter()
                .all(|i| v[*i].num() == Some(0))
            && matches!(v[13], Value::Situation(Situation::Normal));
        if rt.family == Family::E {
            if !placeholder {
                self.err(
                    n,
                    Some(rt),
                    "N_Num_Assure",
                    text_of(&v[3]),
                    Problem::ComplementaryDeclaresEntrantsOnly,
                );
            }
            return;
        }
        let employee = self.employee(n, rt, v);
        let names = ("N_Jours_Declares", "N_Salaire_Reel", "N_Salaire_Plaf");
        self.pay(n, rt, (&v[10], &v[11], &v[12]), names);
        let situation = match v[13] {
            Value::Situation(s) => Some(s),
            _ => None,
        };
        let (repay, days, gross, capped) = (v[9].num(), v[10].num(), v[11].num(), v[12].num());
        if let Some(s) = situation
            && s.unpaid()
            && (days != Some(0) || gross != Some(0) || capped != Some(0))
        {
            self.err(
                n,
                Some(rt),
                "L_Situation",
                s.code().to_string(),
                Problem::NoPaySituation,
            );
        }
        let s = &mut self.line_sums;
        s.af_repayable = s.af_repayable.saturating_add(repay.unwrap_or(0));
        s.days = s.days.saturating_add(days.unwrap_or(0));
        s.gross = s.gross.saturating_add(gross.unwrap_or(0));
        s.capped = s.capped.saturating_add(capped.unwrap_or(0));
        let line = (|| {
            Some(Line {
                employee: employee?,
                af_repayable: Centimes(repay? as i64),
                days: days? as u8,
                gross: Centimes(gross? as i64),
                capped: Centimes(capped? as i64),
                situation: situation?,
            })
        })();
        let found = v[14].num();
        let expected = line.as_ref().map(Line::control_sum).or_else(|| {
            // Still count what can be counted so the recap check stays meaningful.
            v[3].num()?
                .checked_add(repay?)?
                .checked_add(days?)?
                .checked_add(gross?)?
                .checked_add(capped?)?
                .checked_add(situation.map_or(0, |s| s.rank()))
        });
        if let (Some(f), Some(e)) = (found, expected) {
            self.line_sums.control = self.line_sums.control.saturating_add(f);
            if f != e {
                self.err(
                    n,
                    Some(rt),
                    "S_Ctr",
                    format!("{f:019}"),
                    Problem::ControlSum(e),
                );
            }
        }
        if let Some(l) = line {
            self.lines.push(l);
        }
    }

    fn line_recap(&mut self, n: u64, rt: RecordType, v: &[Value]) {
        let s = self.line_sums;
        let wants = [
            s.count,
            s.children,
            s.af_payable,
            s.af_deductible,
            s.af_net,
            s.imma,
            s.af_repayable,
            s.days,
            s.gross,
            s.capped,
            s.control,
        ];
        self.compare_recap(n, rt, v, &wants);
    }

    fn line_short(&self) -> ShortSums {
        let s = self.line_sums;
        ShortSums {
            count: s.count,
            imma: s.imma,
            days: s.days,
            gross: s.gross,
            capped: s.capped,
            control: s.control,
        }
    }

    fn entrant(&mut self, n: u64, rt: RecordType, v: &[Value]) {
        if matches!(v[3], Value::Blank) {
            let empty = v[4].text() == Some("")
                && v[5].text() == Some("")
                && [6, 7, 8, 9].iter().all(|i| v[*i].num() == Some(0));
            if !empty {
                self.err(
                    n,
                    Some(rt),
                    "N_Num_Assure",
                    text_of(&v[3]),
                    Problem::NotDigits,
                );
            }
            if self.placeholder_at.is_some() || self.entrant_at.is_some() {
                self.err(
                    n,
                    Some(rt),
                    "N_Num_Assure",
                    String::new(),
                    Problem::PlaceholderNotAlone,
                );
            }
            self.placeholder_at = Some(n);
            return;
        }
        if self.placeholder_at.is_some() && self.entrant_at.is_none() {
            self.err(
                n,
                Some(rt),
                "N_Num_Assure",
                text_of(&v[3]),
                Problem::PlaceholderNotAlone,
            );
        }
        self.entrant_at = Some(n);
        let imma = v[3].num();
        if let Some(i) = imma
            && i != 0
            && !self.seen_imma.insert(i as u32)
        {
            self.err(
                n,
                Some(rt),
                "N_Num_Assure",
                format!("{i:09}"),
                Problem::DuplicateEmployee,
            );
        }
        let cin = v[5].text().map(str::to_string);
        match cin.as_deref() {
            Some("") if imma == Some(0) => {
                self.err(
                    n,
                    Some(rt),
                    "L_Num_CIN",
                    String::new(),
                    Problem::CinRequired,
                );
            }
            Some("") | None => {}
            Some(c) => {
                if Cin::parse(c).map(|p| p.as_str() == c) != Ok(true) {
                    self.err(n, Some(rt), "L_Num_CIN", c.to_string(), Problem::CinShape);
                } else if !self.seen_cin.insert(c.to_string()) {
                    self.err(
                        n,
                        Some(rt),
                        "L_Num_CIN",
                        c.to_string(),
                        Problem::DuplicateEmployee,
                    );
                }
            }
        }
        if v[4].text() == Some("") {
            self.err(
                n,
                Some(rt),
                "L_Nom_Prenom",
                String::new(),
                Problem::NameRequired,
            );
        }
        let names = ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf");
        self.pay(n, rt, (&v[6], &v[7], &v[8]), names);
        let (days, gross, capped) = (v[6].num(), v[7].num(), v[8].num());
        let s = &mut self.entrant_sums;
        s.count += 1;
        s.imma = s.imma.saturating_add(imma.unwrap_or(0));
        s.days = s.days.saturating_add(days.unwrap_or(0));
        s.gross = s.gross.saturating_add(gross.unwrap_or(0));
        s.capped = s.capped.saturating_add(capped.unwrap_or(0));
        let expected = (|| {
            imma?
                .checked_add(days?)?
                .checked_add(gross?)?
                .checked_add(capped?)
        })();
        if let Some(f) = v[9].num() {
            s.control = s.control.saturating_add(f);
            if let Some(e) = expected
                && f != e
            {
                self.err(
                    n,
                    Some(rt),
                    "S_Ctr",
                    format!("{f:019}"),
                    Problem::ControlSum(e),
                );
            }
        }
        let entrant = (|| {
            Some(Entrant {
                immatriculation: imma.filter(|i| *i != 0).map(|i| i as u32),
                name: v[4].text()?.to_string(),
                cin: cin?,
                days: days? as u8,
                gross: Centimes(gross? as i64),
                capped: Centimes(capped? as i64),
            })
        })();
        if let Some(e) = entrant {
            self.entrants.push(e);
        }
    }

    fn short_recap(&mut self, n: u64, rt: RecordType, v: &[Value], s: ShortSums) {
        let wants = [s.count, s.imma, s.days, s.gross, s.capped, s.control];
        self.compare_recap(n, rt, v, &wants);
    }

    fn finish(mut self, layout: Layout) -> Result<EbdsFile, Vec<EbdsError>> {
        let family = self.family.unwrap_or(self.families[0]);
        let from = self.last.map_or(0, |l| l + 1);
        let at = self.last_line + 1;
        // A file cut short by its source: which records the rest held is not known.
        let cut_short = self.cut_short;
        for missing in (from..=self.last_number()).filter(|_| !cut_short) {
            if missing != 2 || family == Family::E {
                self.err(
                    at,
                    None,
                    "",
                    String::new(),
                    Problem::Missing(RecordType::new(family, missing)),
                );
            }
        }
        if self.more > 0 {
            let more = self.more;
            self.errors.push(EbdsError {
                line: 0,
                record: None,
                field: "",
                found: String::new(),
                problem: Problem::TooManyErrors(more),
            });
        }
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let broken = || {
            vec![EbdsError {
                line: 0,
                record: None,
                field: "",
                found: String::new(),
                problem: Problem::Unreadable,
            }]
        };
        let (Some(transfer_id), Some(identity), Some(form)) =
            (self.transfer_id, self.identity, self.form)
        else {
            return Err(broken());
        };
        Ok(match family {
            Family::A => EbdsFile::Preetabli(Preetabli {
                transfer_id,
                identity,
                employees: self.employees,
                layout,
            }),
            _ => EbdsFile::Declaration(Declaration {
                form,
                transfer_id,
                identity,
                lines: self.lines,
                entrants: self.entrants,
                layout,
            }),
        })
    }
}

/// The most fields a record has (B02 lines: 16), checked when compiling against the layout of
/// every record type.
const MAX_FIELDS: usize = 16;
const _: () = {
    let families = [Family::A, Family::B, Family::E];
    let mut f = 0;
    while f < families.len() {
        let mut number = 0;
        while number <= 6 {
            assert!(RecordType::new(families[f], number).layout().len() <= MAX_FIELDS);
            number += 1;
        }
        f += 1;
    }
};

/// The value of an N field, if every byte is a digit (at most 19: no overflow). One pass
/// without an early exit, which the compiler turns into vector instructions; so is
/// [`spaces`]. Most of a record is numbers and fillers, and most of reading is these loops.
fn number(raw: &[u8]) -> Option<u64> {
    let (digits, value) = raw.iter().fold((true, 0u64), |(ok, v), d| {
        let digit = d.wrapping_sub(b'0');
        (
            ok & (digit < 10),
            v.wrapping_mul(10).wrapping_add(u64::from(digit)),
        )
    });
    digits.then_some(value)
}

/// Whether a field is all spaces.
fn spaces(raw: &[u8]) -> bool {
    raw.iter().fold(true, |ok, b| ok & (*b == b' '))
}

/// `raw` without its trailing spaces, skipped eight at a time (a name fills a third of its
/// field, on average).
fn trim_spaces(raw: &[u8]) -> &[u8] {
    let mut end = raw.len();
    while end >= 8 && raw[end - 8..end] == [b' '; 8] {
        end -= 8;
    }
    while end > 0 && raw[end - 1] == b' ' {
        end -= 1;
    }
    &raw[..end]
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Num(n) => format!("{n:09}"),
        Value::Blank => " ".repeat(9),
        Value::Text(t) => (*t).to_string(),
        _ => String::new(),
    }
}

fn parse_date(raw: &[u8]) -> Option<Date> {
    let v = number(raw).filter(|_| raw.len() == 8)?;
    Date::new((v / 10_000) as i32, (v / 100 % 100) as u8, (v % 100) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised field checks agree with the plain definitions on every short field
    /// made of the bytes that matter (digits, their neighbours, space, letters).
    #[test]
    fn field_checks_agree_with_their_definitions() {
        let alphabet = b"0189/: AZ";
        let mut fields: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=4 {
            let mut next = Vec::new();
            for f in fields.iter().filter(|f| f.len() == len - 1) {
                for b in alphabet {
                    let mut g = f.clone();
                    g.push(*b);
                    next.push(g);
                }
            }
            fields.extend(next);
        }
        for f in &fields {
            let digits = f.iter().all(u8::is_ascii_digit);
            let value = f
                .iter()
                .fold(0u64, |a, d| a * 10 + u64::from(d.wrapping_sub(b'0')));
            assert_eq!(number(f), digits.then_some(value), "{f:?}");
            assert_eq!(spaces(f), f.iter().all(|b| *b == b' '), "{f:?}");
        }
        assert_eq!(
            number(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
    }

    #[test]
    fn trailing_spaces_are_trimmed_at_any_length() {
        for text in ["", "A", "AB CD", "SALARIE DE TEST UN"] {
            for pad in 0..20 {
                let raw = format!("{text}{}", " ".repeat(pad));
                assert_eq!(trim_spaces(raw.as_bytes()), text.as_bytes(), "{raw:?}");
                let inner = format!(" {raw}");
                assert_eq!(
                    trim_spaces(inner.as_bytes()),
                    inner.trim_end_matches(' ').as_bytes()
                );
            }
        }
    }
}
