//! Declarations: préétablis issued from the registry, e-BDS declarations imported and checked
//! against them, contributions computed from the dated rate table, each accepted declaration
//! posted to the double-entry ledger, payments, statements, careers, and every file written
//! back byte for byte. Design: docs/declarations.md.

use crate::gate::{Asking, Audit};
use crate::{App, AppError, CIN_INDEX, IMMATRICULATION_INDEX, Principal, Registrar, person_column};
use crate::{Clash, Missing};
use domain::ledger::{self, Account, BranchShares, EntryCode, Journal, LedgerError, Posting};
use domain::{
    Centimes, Cin, Date, DenyReason, Lang, Period, PersonField, Purpose, Role, compute_line,
    months_late,
};
use ebds::{
    Declaration, EbdsError, Employee, Ending, Entrant, Form, Identity, Layout, Line, Preetabli,
    Problem, RecordType, Situation,
};
use serde::Serialize;
// The import's sets and maps hash with foldhash: SipHash was 3 % of an import's CPU. Its seed
// is random per process, so colliding keys cannot be chosen in advance by whoever writes a file.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::{BTreeMap, VecDeque};
use store::{
    BlindColumn, DeclarationRow, EmployerRef, EmployerRow, EmploymentRow, ImportBatch,
    LedgerEntryRow, PaymentRow, PersonCipher, PersonRow, PreetabliLineRow, PreetabliRow,
};
use vault::Column;

pub(crate) const PREETABLI_HEADER: Column = Column {
    table: "preetablis",
    column: "header",
};
/// The employees of a préétabli issued before migration 0015, one ciphertext each.
pub(crate) const PREETABLI_LINE: Column = Column {
    table: "preetabli_lines",
    column: "data",
};
/// A préétabli's employees, sealed in one value ([`employees_payload`]).
pub(crate) const PREETABLI_EMPLOYEES: Column = Column {
    table: "preetablis",
    column: "employees",
};
pub(crate) const DECLARATION_HEADER: Column = Column {
    table: "declarations",
    column: "header",
};
/// The sealed part of a block of declaration lines ([`store::blocks`]), bound to the
/// declaration's id and to the block's directory.
pub(crate) const DECLARATION_LINE_BLOCK: Column = Column {
    table: "declaration_line_blocks",
    column: "data",
};
/// The errors of a rejected file, kept for its employer.
pub(crate) const DECLARATION_REJECTION: Column = Column {
    table: "declaration_rejections",
    column: "errors",
};
/// The rejections kept for each employer.
const REJECTIONS_KEPT: i64 = 20;
/// The errors kept of each rejected file (its count says how many it had).
const REJECTION_ERRORS_KEPT: usize = 1_000;
/// Blind index of a declaration file's bytes.
pub(crate) const DECLARATION_DIGEST: Column = Column {
    table: "declarations",
    column: "digest",
};

/// The person fields a préétabli shows (A02).
const PREETABLI_FIELDS: [PersonField; 4] = [
    PersonField::Immatriculation,
    PersonField::LastName,
    PersonField::FirstName,
    PersonField::Children,
];

/// Who sends or reads declarations.
#[derive(Debug, Clone, Copy)]
pub enum Declarant {
    /// The operator at the command line (batch imports).
    Operator,
    /// An agent of the fund.
    Agent(i64),
    /// A user of an employer: its own declarations only.
    Employer { principal_id: i64, employer_id: i64 },
}

impl Declarant {
    pub fn of(p: &Principal) -> Result<Declarant, AppError> {
        if p.locked {
            return Err(AppError::Denied(DenyReason::Locked));
        }
        match (p.role, p.employer_id) {
            (Role::EmployerUser, Some(e)) => Ok(Declarant::Employer {
                principal_id: p.id,
                employer_id: e,
            }),
            (Role::Agent, _) => Ok(Declarant::Agent(p.id)),
            _ => Err(AppError::Denied(DenyReason::RoleHasNoAccess)),
        }
    }

    fn registrar(self) -> Registrar {
        match self {
            Declarant::Operator => Registrar::operator(),
            Declarant::Agent(id) => Registrar {
                principal_id: Some(id),
                role: "agent",
            },
            Declarant::Employer { principal_id, .. } => Registrar {
                principal_id: Some(principal_id),
                role: "employer_user",
            },
        }
    }

    /// Whether the declarant may send declarations for the employer and read their content
    /// (names, numbers, salaries): the operator, and the employer's own users. An agent reads
    /// a person's career within a case, not an employer's files.
    fn may_see(self, employer_id: i64) -> bool {
        match self {
            Declarant::Employer {
                employer_id: own, ..
            } => own == employer_id,
            Declarant::Operator => true,
            Declarant::Agent(_) => false,
        }
    }

    /// Whether the declarant may read the employer's totals (receipts, statement): the same,
    /// and agents.
    fn may_see_totals(self, employer_id: i64) -> bool {
        matches!(self, Declarant::Agent(_)) || self.may_see(employer_id)
    }
}

/// A file to import.
#[derive(Clone)]
pub struct ImportFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// One error of a file, for people: where, what was found, and the rule in their language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorView {
    pub line: u64,
    pub record: String,
    pub field: String,
    pub found: String,
    /// The rule broken (named `rule`, as in the API's error details).
    #[serde(rename = "rule")]
    pub code: String,
    pub message: String,
}

impl ErrorView {
    fn new(e: &EbdsError, lang: Lang) -> ErrorView {
        ErrorView {
            line: e.line,
            record: e.record.map(|r| r.to_string()).unwrap_or_default(),
            field: e.field.to_string(),
            found: e.found.clone(),
            code: e.problem.code().to_string(),
            message: e.problem.describe(lang),
        }
    }
}

/// A file an employer's user sent that was rejected, and why (the latest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionView {
    #[serde(serialize_with = "crate::gate::id_string::serialize")]
    pub rejection_id: i64,
    pub received_at: i64,
    /// How many errors the file had; `errors` lists them, up to the first 1 000.
    pub error_count: i64,
    pub errors: Vec<ErrorView>,
}

/// An error of a rejected file as it is sealed: its French view, and the rule in the other
/// languages, so that it is read again in whichever the reader asks.
#[derive(Serialize, serde::Deserialize)]
struct SealedError {
    #[serde(flatten)]
    fr: ErrorView,
    ar: String,
    en: String,
}

impl SealedError {
    fn new(e: &EbdsError) -> SealedError {
        SealedError {
            fr: ErrorView::new(e, Lang::Fr),
            ar: e.problem.describe(Lang::Ar),
            en: e.problem.describe(Lang::En),
        }
    }

    fn view(self, lang: Lang) -> ErrorView {
        let mut v = self.fr;
        match lang {
            Lang::Ar => v.message = self.ar,
            Lang::En => v.message = self.en,
            _ => {}
        }
        v
    }
}

/// An accepted declaration's totals (its receipt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclarationSummary {
    #[serde(serialize_with = "crate::gate::id_string::serialize")]
    pub declaration_id: i64,
    pub affiliate_number: String,
    pub period: Period,
    /// 0 for the main declaration, 1 to 9 for complementary ones.
    pub form: i64,
    pub lines: i64,
    pub entrants: i64,
    pub days: i64,
    pub gross: Centimes,
    pub capped: Centimes,
    pub employer_share: Centimes,
    pub employee_share: Centimes,
    pub total: Centimes,
    /// The control sums its recaps state: in the answer to an upload and in a receipt
    /// ([`App::declaration_receipt`]); `None` in a list of receipts.
    pub control_sums: Option<ControlSums>,
    pub received_at: i64,
    /// The declaration this one replaced, when it is a rectification.
    pub rectifies: Option<String>,
    /// The rectification that replaced this one: it no longer counts, and is kept as it was.
    pub rectified_by: Option<String>,
}

/// A declaration's control sums, as its recaps state them (zero-padded like the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlSums {
    /// B03 `N_T_Ctr`: Σ of the known employees' `S_Ctr`.
    pub employees: String,
    /// B05 `N_T_Ctr`: Σ of the entrants' `S_Ctr`.
    pub entrants: String,
    /// B06 `N_T_Ctr`: both.
    pub total: String,
    /// B06 `N_T_Num_Imma`: Σ of the immatriculation numbers.
    pub immatriculations: String,
}

impl ControlSums {
    pub fn of(t: &ebds::Totals) -> ControlSums {
        ControlSums {
            employees: format!("{:019}", t.lines_control),
            entrants: format!("{:019}", t.entrants_control),
            total: format!("{:019}", t.control),
            immatriculations: format!("{:015}", t.immatriculations),
        }
    }
}

/// What became of one imported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ImportOutcome {
    Accepted(DeclarationSummary),
    /// The same file was already accepted: nothing was done.
    Duplicate(DeclarationSummary),
    Rejected {
        errors: Vec<ErrorView>,
    },
}

impl ImportOutcome {
    pub fn is_accepted(&self) -> bool {
        matches!(self, ImportOutcome::Accepted(_))
    }
}

// ---- payloads: what the encrypted columns hold (fields separated by U+001F, which no e-BDS
// field may contain) ----

const SEP: char = '\u{1f}';

fn join(parts: &[String]) -> Vec<u8> {
    parts.join(&SEP.to_string()).into_bytes()
}

fn split(b: &[u8]) -> Result<Vec<String>, AppError> {
    let s = std::str::from_utf8(b).map_err(|_| store::StoreError::Corrupt("payload"))?;
    Ok(s.split(SEP).map(str::to_string).collect())
}

/// A ledger rule that refused: an amount that does not fit, or stored shares that do not read.
fn ledger_error(e: LedgerError) -> AppError {
    match e {
        LedgerError::Overflow => AppError::Invalid(vec![e.into()]),
        LedgerError::SharesMissing | LedgerError::SharesCorrupt => {
            AppError::Internal("branch shares")
        }
    }
}

fn overflow() -> AppError {
    ledger_error(LedgerError::Overflow)
}

fn corrupt() -> AppError {
    store::StoreError::Corrupt("declaration payload").into()
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, AppError> {
    s.parse().map_err(|_| corrupt())
}

fn date8(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year, d.month, d.day)
}

fn parse_date8(s: &str) -> Result<Date, AppError> {
    let n: u32 = num(s)?;
    Date::new((n / 10_000) as i32, (n / 100 % 100) as u8, (n % 100) as u8).ok_or_else(corrupt)
}

/// Transfer id, form, identity and layout of a file.
fn header_payload(transfer: u64, form: i64, i: &Identity, layout: Layout) -> Vec<u8> {
    join(&[
        transfer.to_string(),
        form.to_string(),
        i.affiliate.to_string(),
        i.period.to_string(),
        i.name.clone(),
        i.activity.clone(),
        i.address.clone(),
        i.city.clone(),
        i.postcode.clone(),
        i.agency.clone(),
        date8(i.issued),
        date8(i.due),
        match layout.ending {
            Ending::Lf => "lf".into(),
            Ending::CrLf => "crlf".into(),
        },
        u8::from(layout.final_newline).to_string(),
    ])
}

fn parse_header(b: &[u8]) -> Result<(u64, i64, Identity, Layout), AppError> {
    let f = split(b)?;
    if f.len() != 14 {
        return Err(corrupt());
    }
    let identity = Identity {
        affiliate: num(&f[2])?,
        period: Period::parse(&f[3]).map_err(|_| corrupt())?,
        name: f[4].clone(),
        activity: f[5].clone(),
        address: f[6].clone(),
        city: f[7].clone(),
        postcode: f[8].clone(),
        agency: f[9].clone(),
        issued: parse_date8(&f[10])?,
        due: parse_date8(&f[11])?,
    };
    let layout = Layout {
        ending: if f[12] == "crlf" {
            Ending::CrLf
        } else {
            Ending::Lf
        },
        final_newline: f[13] == "1",
    };
    Ok((num(&f[0])?, num(&f[1])?, identity, layout))
}

/// A préétabli's employees as sealed in `preetablis.employees`, in the order issued (by
/// immatriculation); integers little-endian:
///
/// ```text
/// version: u8 = 1
/// n: u32
/// n × (person: i64, immatriculation: u32, children: u8, af_payable: i64,
///      af_deductible: i64, af_net: i64, name length: u16, name: bytes)
/// ```
fn employees_payload(employees: &[(i64, Employee)]) -> Result<Vec<u8>, AppError> {
    let names: usize = employees.iter().map(|(_, e)| e.name.len()).sum();
    let mut b = Vec::with_capacity(5 + employees.len() * 39 + names);
    b.push(1);
    b.extend_from_slice(&(employees.len() as u32).to_le_bytes());
    for (person, e) in employees {
        b.extend_from_slice(&person.to_le_bytes());
        b.extend_from_slice(&e.immatriculation.to_le_bytes());
        b.push(e.children);
        for amount in [e.af_payable, e.af_deductible, e.af_net] {
            b.extend_from_slice(&amount.0.to_le_bytes());
        }
        // Names are fitted to 60 characters before they get here.
        let len = u16::try_from(e.name.len()).map_err(|_| AppError::Internal("name length"))?;
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(e.name.as_bytes());
    }
    Ok(b)
}

/// The reverse of [`employees_payload`]; anything else is corrupt.
fn parse_employees(b: &[u8]) -> Result<Vec<(i64, Employee)>, AppError> {
    struct Cursor<'a>(&'a [u8]);
    impl<'a> Cursor<'a> {
        fn take<const N: usize>(&mut self) -> Result<[u8; N], AppError> {
            let (head, rest) = self.0.split_first_chunk::<N>().ok_or_else(corrupt)?;
            self.0 = rest;
            Ok(*head)
        }
        fn bytes(&mut self, n: usize) -> Result<&'a [u8], AppError> {
            let (head, rest) = self.0.split_at_checked(n).ok_or_else(corrupt)?;
            self.0 = rest;
            Ok(head)
        }
        fn i64(&mut self) -> Result<i64, AppError> {
            Ok(i64::from_le_bytes(self.take()?))
        }
    }
    let mut c = Cursor(b);
    if c.take::<1>()? != [1] {
        return Err(corrupt());
    }
    let n = u32::from_le_bytes(c.take()?) as usize;
    let mut out = Vec::with_capacity(n.min(b.len() / 39));
    for _ in 0..n {
        let person = c.i64()?;
        let immatriculation = u32::from_le_bytes(c.take()?);
        let [children] = c.take()?;
        let (af_payable, af_deductible, af_net) = (c.i64()?, c.i64()?, c.i64()?);
        let len = usize::from(u16::from_le_bytes(c.take()?));
        let name = std::str::from_utf8(c.bytes(len)?).map_err(|_| corrupt())?;
        out.push((
            person,
            Employee {
                immatriculation,
                name: name.to_string(),
                children,
                af_payable: Centimes(af_payable),
                af_deductible: Centimes(af_deductible),
                af_net: Centimes(af_net),
            },
        ));
    }
    if !c.0.is_empty() {
        return Err(corrupt());
    }
    Ok(out)
}

fn parse_employee(f: &[String]) -> Result<Employee, AppError> {
    if f.len() < 6 {
        return Err(corrupt());
    }
    Ok(Employee {
        immatriculation: num(&f[0])?,
        name: f[1].clone(),
        children: num(&f[2])?,
        af_payable: Centimes(num(&f[3])?),
        af_deductible: Centimes(num(&f[4])?),
        af_net: Centimes(num(&f[5])?),
    })
}

/// A declared line as stored: the line or entrant, and its contributions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredLine {
    Known(Line),
    Entrant(Entrant),
}

/// A line to store, borrowed from its declaration (written without copying it).
#[derive(Debug, Clone, Copy)]
enum LineToStore<'a> {
    Known(&'a Line),
    Entrant(&'a Entrant),
}

impl StoredLine {
    #[cfg(test)]
    fn to_store(&self) -> LineToStore<'_> {
        match self {
            StoredLine::Known(l) => LineToStore::Known(l),
            StoredLine::Entrant(e) => LineToStore::Entrant(e),
        }
    }
}

/// Appends a line's payload to `b`: its fields joined by SEP, as `join` of their `Display`
/// would, written straight into the buffer (four million lines a month; numbers without the
/// formatting machinery).
fn line_payload(b: &mut Vec<u8>, l: LineToStore<'_>, employer: Centimes, employee: Centimes) {
    let start = b.len();
    let sep = |b: &mut Vec<u8>| {
        if b.len() > start {
            let mut sep = [0u8; 4];
            b.extend_from_slice(SEP.encode_utf8(&mut sep).as_bytes());
        }
    };
    let text = |b: &mut Vec<u8>, v: &str| {
        sep(b);
        b.extend_from_slice(v.as_bytes());
    };
    let int = |b: &mut Vec<u8>, v: i64| {
        sep(b);
        push_decimal(b, v);
    };
    match l {
        LineToStore::Known(l) => {
            let e = &l.employee;
            text(b, "B");
            int(b, e.immatriculation.into());
            text(b, &e.name);
            int(b, e.children.into());
            int(b, e.af_payable.0);
            int(b, e.af_deductible.0);
            int(b, e.af_net.0);
            int(b, l.af_repayable.0);
            int(b, l.days.into());
            int(b, l.gross.0);
            int(b, l.capped.0);
            text(b, l.situation.code().trim());
        }
        LineToStore::Entrant(e) => {
            text(b, "E");
            int(b, e.immatriculation.unwrap_or(0).into());
            text(b, &e.name);
            text(b, &e.cin);
            int(b, e.days.into());
            int(b, e.gross.0);
            int(b, e.capped.0);
        }
    }
    int(b, employer.0);
    int(b, employee.0);
}

/// `v` in decimal, as `Display` writes it. The digits are written in place, behind a
/// fixed-size extension the compiler copies inline (a copy of the digits' own length was a call
/// to `memcpy` for each of the 44 million numbers of a month's lines).
fn push_decimal(b: &mut Vec<u8>, v: i64) {
    if v < 0 {
        b.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let start = b.len();
    b.extend_from_slice(&[b'0'; 20]);
    b.truncate(start + digits);
    for d in b[start..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn parse_line(b: &[u8]) -> Result<(StoredLine, Centimes, Centimes), AppError> {
    let f = split(b)?;
    let n = f.len();
    if n < 3 {
        return Err(corrupt());
    }
    let shares = (Centimes(num(&f[n - 2])?), Centimes(num(&f[n - 1])?));
    let line = match (f[0].as_str(), n) {
        ("B", 14) => {
            let code = format!("{:<2}", f[11]);
            StoredLine::Known(Line {
                employee: parse_employee(&f[1..7])?,
                af_repayable: Centimes(num(&f[7])?),
                days: num(&f[8])?,
                gross: Centimes(num(&f[9])?),
                capped: Centimes(num(&f[10])?),
                situation: Situation::parse(code.as_bytes()).ok_or_else(corrupt)?,
            })
        }
        ("E", 9) => {
            let imma: u32 = num(&f[1])?;
            StoredLine::Entrant(Entrant {
                immatriculation: (imma != 0).then_some(imma),
                name: f[2].clone(),
                cin: f[3].clone(),
                days: num(&f[4])?,
                gross: Centimes(num(&f[5])?),
                capped: Centimes(num(&f[6])?),
            })
        }
        _ => return Err(corrupt()),
    };
    Ok((line, shares.0, shares.1))
}

fn period_of(n: i64) -> Result<Period, AppError> {
    Period::from_number(n).ok_or_else(corrupt)
}

fn err(
    line: u64,
    record: Option<RecordType>,
    field: &'static str,
    found: String,
    problem: Problem,
) -> EbdsError {
    EbdsError {
        line,
        record,
        field,
        found,
        problem,
    }
}

/// An allocation's ledger entry: the whole fund's (no employer), keyed by its own id.
fn allocation_entry(id: i64, period: i64, at: i64, postings: Vec<Posting>) -> LedgerEntryRow {
    LedgerEntryRow {
        id,
        key: EntryCode::Allocation.key(id),
        code: EntryCode::Allocation,
        employer_id: None,
        period,
        at,
        postings,
    }
}

/// A checked declaration ready to be written.
struct Accepted {
    employer: EmployerRef,
    preetabli_id: Option<i64>,
    decl: Declaration,
    digest: Vec<u8>,
    /// Person of each B02 line, then of each entrant (index into `new_persons` when negative).
    persons: Vec<PersonRef>,
}

#[derive(Clone, Copy)]
enum PersonRef {
    Known(i64),
    New(usize),
}

/// A préétabli's employees by immatriculation: their person and A02 content.
type KnownEmployees = HashMap<u32, (i64, Employee)>;

/// What the registry says, loaded once for a batch of files.
#[derive(Default)]
struct Context {
    employers: HashMap<u32, EmployerRef>,
    preetablis: HashMap<(i64, i64), (PreetabliRow, KnownEmployees)>,
    accepted: HashSet<(i64, i64, i64)>,
    /// The accepted declarations of the batch's employers and periods, by (employer, period,
    /// form): a file equal to one of them (same keyed digest) is a duplicate.
    accepted_rows: HashMap<(i64, i64, i64), DeclarationRow>,
    by_imma: HashMap<u32, i64>,
    by_cin: HashMap<String, i64>,
    employed: HashSet<(i64, i64)>,
    /// Who was already declared: accepted before, or earlier in the import.
    declared: Declared,
}

impl Context {
    /// The accepted declaration this file is, byte for byte, if the declarant may see it.
    /// Found by what the file declares (employer, period, form) and compared by keyed digest,
    /// so no index of digests is needed. This assumes the same bytes read the same way as when
    /// they were accepted (a period's parameters are added to, not edited); a file accepted
    /// before that no longer reads gets its errors instead of "duplicate", and nothing is
    /// written either way.
    fn already_accepted(&self, who: Declarant, p: &ParsedFile) -> Option<&DeclarationRow> {
        let d = p.result.as_ref().ok()?;
        let employer = self.employers.get(&d.identity.affiliate)?;
        let key = (employer.id, d.identity.period.number(), form_number(d.form));
        self.accepted_rows
            .get(&key)
            .filter(|row| row.digest == p.digest && who.may_see(row.employer_id))
    }
}

/// Files imported per transaction by [`App::import_declarations`].
pub const IMPORT_BATCH_FILES: usize = 10_000;
/// Bytes of files per transaction: a batch closes with the file that reaches this many. A
/// batch of the largest employers' files is then no longer than one of small ones, so the
/// pipeline fills and drains quickly and memory is bounded by the bytes, not the files.
pub const IMPORT_BATCH_BYTES: u64 = 32 << 20;

/// Where an import's batches end, seen one file at a time: a batch closes with the file that
/// makes it [`IMPORT_BATCH_FILES`] files or [`IMPORT_BATCH_BYTES`] bytes.
#[derive(Debug, Default)]
pub struct BatchCut {
    files: usize,
    bytes: u64,
}

impl BatchCut {
    /// Counts a file of `size` bytes into the open batch; true if the batch closes with it
    /// (the next file opens another).
    pub fn add(&mut self, size: u64) -> bool {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(size);
        let full = self.files >= IMPORT_BATCH_FILES || self.bytes >= IMPORT_BATCH_BYTES;
        if full {
            *self = BatchCut::default();
        }
        full
    }
}

/// The batches of an import of files of these sizes, in order ([`BatchCut`]).
pub fn import_batches(sizes: &[u64]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut cut = BatchCut::default();
    let mut start = 0;
    for (i, size) in sizes.iter().enumerate() {
        if cut.add(*size) {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

impl App {
    // ---- préétablis ------------------------------------------------------------------------

    /// Issues the préétabli of `period` to each employer (every employer when `employers` is
    /// empty) that has none yet: its known employees are the persons employed on the first day
    /// of the period, with their children and the family allowances of the dated table.
    /// Returns how many were issued.
    pub async fn issue_preetablis(
        &self,
        reg: Registrar,
        period: Period,
        employers: &[i64],
        request_id: &str,
    ) -> Result<usize, AppError> {
        let ids = if employers.is_empty() {
            self.inner.store.employer_ids().await?
        } else {
            employers.to_vec()
        };
        let pn = period.number();
        let af = self
            .params()
            .family_allowance_at(period)
            .cloned()
            .ok_or(AppError::Invalid(vec![domain::ValidationError::new(
                Period::FIELD,
                domain::Rule::NoParameters,
            )]))?;
        let mut issued = 0;
        for chunk in ids.chunks(1_000) {
            let existing: HashSet<i64> = self
                .inner
                .store
                .preetablis(chunk, pn)
                .await?
                .into_iter()
                .map(|p| p.employer_id)
                .collect();
            let todo: Vec<i64> = chunk
                .iter()
                .copied()
                .filter(|e| !existing.contains(e))
                .collect();
            if todo.is_empty() {
                continue;
            }
            // In the order of affiliation numbers: the préétablis of employers whose files sort
            // together are neighbours, which an import reads in one range.
            let mut employers = self.inner.store.employers_where(false, &todo).await?;
            employers.sort_by_key(|e| e.affiliate_number);
            let staff = self
                .inner
                .store
                .employees_on(&todo, &period.first_day().to_string())
                .await?;
            let person_ids: Vec<i64> = staff.iter().map(|(_, p)| *p).collect();
            let ciphers: HashMap<i64, PersonCipher> = self
                .inner
                .store
                .persons_by_id(&person_ids)
                .await?
                .into_iter()
                .collect();
            // The names, numbers and children about to be read are in the audit log first.
            Audit::registry(reg, "issue_preetablis", employers.len())
                .fields(&PREETABLI_FIELDS)
                .detail(format!("period={period} employees={}", staff.len()))
                .write(self, request_id)
                .await?;
            let first_pre = self
                .inner
                .store
                .allocate("preetabli", employers.len() as i64)
                .await?;
            let mut by_employer: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (e, p) in &staff {
                by_employer.entry(*e).or_default().push(*p);
            }
            let now = self.now();
            let mut rows = Vec::with_capacity(employers.len());
            for (k, e) in employers.iter().enumerate() {
                let id = first_pre + k as i64;
                let mut employees = Vec::new();
                for pid in by_employer.get(&e.id).map(Vec::as_slice).unwrap_or(&[]) {
                    let c = ciphers
                        .get(pid)
                        .ok_or(store::StoreError::Corrupt("person"))?;
                    let text = |f: PersonField| -> Result<String, AppError> {
                        self.system_text(*pid, c, f)?
                            .ok_or_else(|| store::StoreError::Corrupt("person field").into())
                    };
                    let children: u8 = text(PersonField::Children)?.parse().unwrap_or(0);
                    let amount = af.for_children(children);
                    let name = format!(
                        "{} {}",
                        text(PersonField::LastName)?,
                        text(PersonField::FirstName)?
                    );
                    employees.push((
                        *pid,
                        Employee {
                            immatriculation: num(&text(PersonField::Immatriculation)?)?,
                            name: ebds::fit(&name, 60),
                            children,
                            af_payable: amount,
                            af_deductible: Centimes(0),
                            af_net: amount,
                        },
                    ));
                }
                employees.sort_by_key(|(_, e)| e.immatriculation);
                let identity = self.identity_of(e, period, now.date())?;
                let transfer = transfer_id(period, id);
                rows.push(PreetabliRow {
                    id,
                    employer_id: e.id,
                    period: pn,
                    transfer_id: transfer as i64,
                    first_line: 0,
                    lines: employees.len() as i64,
                    header: self.keyring().encrypt(
                        PREETABLI_HEADER,
                        id,
                        &header_payload(transfer, 0, &identity, Layout::default()),
                    )?,
                    issued_at: now.0,
                    employees: Some(self.keyring().encrypt(
                        PREETABLI_EMPLOYEES,
                        id,
                        &employees_payload(&employees)?,
                    )?),
                });
            }
            self.inner.store.insert_preetablis(&rows).await?;
            issued += rows.len();
        }
        Ok(issued)
    }

    fn identity_of(
        &self,
        e: &EmployerRow,
        period: Period,
        today: Date,
    ) -> Result<Identity, AppError> {
        Ok(Identity {
            affiliate: u32::try_from(e.affiliate_number).map_err(|_| corrupt())?,
            period,
            name: ebds::fit(&e.name, 40),
            activity: ebds::fit(&e.activity, 40),
            address: String::new(),
            city: ebds::fit(&e.city, 20),
            postcode: String::new(),
            agency: String::new(),
            issued: today,
            due: period.due_date(),
        })
    }

    /// The préétabli file (`AFFEBDS`) of an employer for a period, as issued.
    pub async fn preetabli_file(
        &self,
        who: Declarant,
        affiliate_number: u32,
        period: Period,
        request_id: &str,
    ) -> Result<Vec<u8>, AppError> {
        let employer = self
            .employer_for(who, affiliate_number, true, request_id)
            .await?;
        let pre = self
            .inner
            .store
            .preetablis(&[employer.id], period.number())
            .await?
            .pop()
            .ok_or(AppError::NotFound(Missing::Preetabli))?;
        // The names, numbers and children about to be read are in the audit log first.
        Audit::registry(who.registrar(), "download_preetabli", pre.lines as usize)
            .fields(&PREETABLI_FIELDS)
            .detail(format!("affiliate={affiliate_number:07} period={period}"))
            .write(self, request_id)
            .await?;
        let mut employees = self.employees_of(std::slice::from_ref(&pre)).await?;
        self.preetabli_of(&pre, employees.remove(&pre.id).unwrap_or_default())
    }

    /// Every préétabli of a period (operator), in affiliation order, `chunk` employers at a
    /// time: `each` receives the affiliation number and the file. One audit event for the run.
    pub async fn each_preetabli(
        &self,
        reg: Registrar,
        period: Period,
        mut each: impl FnMut(u32, Vec<u8>) -> Result<(), AppError>,
        request_id: &str,
    ) -> Result<usize, AppError> {
        let ids = self.inner.store.employer_ids().await?;
        Audit::registry(reg, "export_preetablis", ids.len())
            .fields(&PREETABLI_FIELDS)
            .detail(format!("period={period}"))
            .write(self, request_id)
            .await?;
        let mut written = 0;
        for chunk in ids.chunks(1_000) {
            let numbers: HashMap<i64, i64> = self
                .inner
                .store
                .employers_where(false, chunk)
                .await?
                .into_iter()
                .map(|e| (e.id, e.affiliate_number))
                .collect();
            let mut pres = self.inner.store.preetablis(chunk, period.number()).await?;
            pres.sort_by_key(|p| numbers.get(&p.employer_id).copied().unwrap_or(0));
            let mut employees = self.employees_of(&pres).await?;
            for p in &pres {
                let bytes = self.preetabli_of(p, employees.remove(&p.id).unwrap_or_default())?;
                let number = numbers.get(&p.employer_id).copied().unwrap_or(0);
                each(u32::try_from(number).unwrap_or(0), bytes)?;
                written += 1;
            }
        }
        Ok(written)
    }

    fn preetabli_of(
        &self,
        pre: &PreetabliRow,
        employees: Vec<(i64, Employee)>,
    ) -> Result<Vec<u8>, AppError> {
        let (transfer_id, _, identity, layout) = parse_header(&self.keyring().decrypt(
            PREETABLI_HEADER,
            pre.id,
            &pre.header,
        )?)?;
        ebds::preetabli_bytes(&Preetabli {
            transfer_id,
            identity,
            employees: employees.into_iter().map(|(_, e)| e).collect(),
            layout,
        })
        .map_err(|_| AppError::Internal("préétabli not writable"))
    }

    /// The employer with this number, if the declarant may act for it (`content`: read its
    /// files; otherwise its totals). A refusal gets the same answer as an unknown number, and is
    /// audited.
    async fn employer_for(
        &self,
        who: Declarant,
        affiliate_number: u32,
        content: bool,
        request_id: &str,
    ) -> Result<EmployerRow, AppError> {
        let found = self
            .inner
            .store
            .employers_where(true, &[i64::from(affiliate_number)])
            .await?
            .pop()
            .filter(|e| {
                if content {
                    who.may_see(e.id)
                } else {
                    who.may_see_totals(e.id)
                }
            });
        match found {
            // A decoy employer's statement, préétabli or declarations: whoever asks is locked.
            Some(e) if self.is_decoy_employer(e.id) => {
                let sender = self.declarant_principal(who).await?;
                self.decoy_touched(sender.as_ref(), "employer data", request_id)
                    .await?;
                Err(AppError::Denied(DenyReason::Honeytoken))
            }
            Some(e) => Ok(e),
            None => {
                Audit::registry(who.registrar(), "employer_access", 0)
                    .outcome("deny:not_found_or_not_own")
                    .write(self, request_id)
                    .await?;
                Err(AppError::NotFound(Missing::Employer))
            }
        }
    }

    // ---- import ------------------------------------------------------------------------------

    /// Imports declaration files (main or complementary), in batches of
    /// [`import_batches`], one transaction each. Each file is accepted whole or rejected
    /// whole with all its errors; a file already accepted is a duplicate and changes nothing.
    pub async fn import_declarations(
        &self,
        who: Declarant,
        files: Vec<ImportFile>,
        lang: Lang,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        let mut out = Vec::with_capacity(files.len());
        let sizes: Vec<u64> = files.iter().map(|f| f.bytes.len() as u64).collect();
        let mut files = files.into_iter();
        for batch in import_batches(&sizes) {
            let parsed = self
                .parse_files(files.by_ref().take(batch.len()).collect())
                .await?;
            out.extend(self.import_parsed(who, parsed, lang, request_id).await?);
        }
        Ok(out)
    }

    /// Reads and checks files against the format (CPU work, off the async threads).
    pub async fn parse_files(&self, files: Vec<ImportFile>) -> Result<Vec<ParsedFile>, AppError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|f| app.parse_file(f))
                .collect::<Result<Vec<_>, AppError>>()
        })
        .await
        .map_err(|_| AppError::Internal("parse task"))?
    }

    fn parse_file(&self, f: ImportFile) -> Result<ParsedFile, AppError> {
        let digest = self
            .keyring()
            .blind_index(DECLARATION_DIGEST, &f.bytes)?
            .to_vec();
        let result = ebds::read_declaration(f.bytes.as_slice(), Some(self.params()));
        Ok(ParsedFile {
            name: f.name,
            digest,
            result,
        })
    }

    /// Checks parsed files against the registry and records them (one transaction).
    pub async fn import_parsed(
        &self,
        who: Declarant,
        parsed: Vec<ParsedFile>,
        lang: Lang,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        let mut ids = IdPool::exact();
        let prepared = self
            .prepare_import(who, parsed, lang, &Unwritten::default(), &mut ids)
            .await?;
        self.commit_import(who, prepared, request_id).await
    }

    /// Checks a batch against the registry and encrypts what it will write, without writing.
    /// `unwritten` is what the batches before it that may not be committed yet accepted: forms,
    /// files, new persons, employments; the batch is checked against them too.
    pub async fn prepare_import(
        &self,
        who: Declarant,
        parsed: Vec<ParsedFile>,
        lang: Lang,
        unwritten: &Unwritten,
        ids: &mut IdPool,
    ) -> Result<PreparedImport, AppError> {
        if matches!(who, Declarant::Agent(_)) {
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        }
        let started = std::time::Instant::now();
        let mut ctx = self.context(&parsed).await?;
        self.refuse_decoys(who, &ctx, "import").await?;
        for previous in &unwritten.0 {
            ctx.accepted.extend(previous.accepted.iter().copied());
            ctx.employed.extend(previous.employed.iter().copied());
            ctx.declared.extend(&previous.declared);
            for (k, v) in &previous.by_cin {
                ctx.by_cin.entry(k.clone()).or_insert(*v);
            }
        }
        let numbers: HashMap<i64, i64> = ctx
            .employers
            .values()
            .map(|e| (e.id, e.affiliate_number))
            .collect();
        let loaded = started.elapsed();
        let mut outcomes: Vec<Option<ImportOutcome>> = vec![None; parsed.len()];
        let mut rejections = Vec::new();
        let mut accepted: Vec<(usize, Accepted)> = Vec::new();
        // Files that repeat one accepted in this batch: (outcome slot, index in `accepted`).
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut in_batch: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut new_persons: Vec<(String, String)> = Vec::new();
        let mut new_by_cin: HashMap<String, usize> = HashMap::new();
        for (i, p) in parsed.into_iter().enumerate() {
            if let Some(d) = ctx.already_accepted(who, &p) {
                let affiliate = numbers.get(&d.employer_id).copied().unwrap_or(0);
                outcomes[i] = Some(ImportOutcome::Duplicate(duplicate(d, affiliate, &p)?));
                continue;
            }
            if let Some(s) = unwritten.0.iter().find_map(|f| f.digests.get(&p.digest)) {
                outcomes[i] = Some(ImportOutcome::Duplicate(s.clone()));
                continue;
            }
            if let Some(k) = in_batch.get(&p.digest) {
                repeats.push((i, *k));
                continue;
            }
            let decl = match p.result {
                Ok(d) => d,
                Err(errors) => {
                    outcomes[i] = Some(rejected(&errors, lang));
                    rejections.push(errors);
                    continue;
                }
            };
            match self.check(who, &decl, &mut ctx, &mut new_persons, &mut new_by_cin) {
                Ok((employer, preetabli_id, persons)) => {
                    ctx.accepted.insert((
                        employer.id,
                        decl.identity.period.number(),
                        form_number(decl.form),
                    ));
                    in_batch.insert(p.digest.clone(), accepted.len());
                    accepted.push((
                        i,
                        Accepted {
                            employer,
                            preetabli_id,
                            decl,
                            digest: p.digest,
                            persons,
                        },
                    ));
                }
                Err(errors) => {
                    outcomes[i] = Some(rejected(&errors, lang));
                    rejections.push(errors);
                }
            }
        }
        let checked = started.elapsed();
        let mut in_flight = InFlight::default();
        let (batch, summaries) = self
            .build_accepted(&accepted, &new_persons, &ctx, ids, &mut in_flight)
            .await?;
        for ((i, a), s) in accepted.iter().zip(&summaries) {
            outcomes[*i] = Some(ImportOutcome::Accepted(s.clone()));
            in_flight.digests.insert(a.digest.clone(), s.clone());
            in_flight.accepted.insert((
                a.employer.id,
                a.decl.identity.period.number(),
                form_number(a.decl.form),
            ));
        }
        for (i, k) in repeats {
            let s = summaries.get(k).ok_or(AppError::Internal("repeat"))?;
            outcomes[i] = Some(ImportOutcome::Duplicate(s.clone()));
        }
        tracing::debug!(
            files = outcomes.len(),
            context_ms = loaded.as_millis() as u64,
            check_ms = (checked - loaded).as_millis() as u64,
            build_ms = (started.elapsed() - checked).as_millis() as u64,
            "import prepared"
        );
        Ok(PreparedImport {
            outcomes,
            rejections,
            batch,
            in_flight,
        })
    }

    /// Writes a prepared batch in one transaction, then audits it.
    pub async fn commit_import(
        &self,
        who: Declarant,
        prepared: PreparedImport,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        self.commit(
            who,
            prepared,
            "import_declarations",
            String::new(),
            request_id,
        )
        .await
    }

    async fn commit(
        &self,
        who: Declarant,
        prepared: PreparedImport,
        action: &'static str,
        detail: String,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        let started = std::time::Instant::now();
        let mut prepared = prepared;
        let persons = &mut prepared.batch.persons;
        if !persons.is_empty() {
            let first = self
                .inner
                .store
                .allocate("immatriculation", persons.len() as i64)
                .await?;
            let ring = &self.keyring();
            for (k, p) in persons.iter_mut().enumerate() {
                let number = domain::Immatriculation::from_number(
                    u32::try_from(first + k as i64).unwrap_or(u32::MAX),
                )?
                .to_string();
                p.cipher.set(
                    PersonField::Immatriculation,
                    ring.encrypt(
                        person_column(PersonField::Immatriculation),
                        p.id,
                        number.as_bytes(),
                    )?,
                );
                p.immatriculation_bidx = ring
                    .blind_index(IMMATRICULATION_INDEX, number.as_bytes())?
                    .to_vec();
            }
        }
        self.inner
            .store
            .insert_import(&prepared.batch)
            .await
            .map_err(|e| match e {
                store::StoreError::Conflict("rectified") => AppError::Conflict(Clash::Rectified),
                store::StoreError::Conflict(_) => AppError::Conflict(Clash::Declaration),
                e => AppError::Store(e),
            })?;
        tracing::debug!(
            lines = prepared.lines(),
            insert_ms = started.elapsed().as_millis() as u64,
            "import committed"
        );
        let outcomes = prepared.outcomes;
        let (a, r, d) = outcomes.iter().fold((0, 0, 0), |(a, r, d), o| match o {
            Some(ImportOutcome::Accepted(_)) => (a + 1, r, d),
            Some(ImportOutcome::Rejected { .. }) => (a, r + 1, d),
            _ => (a, r, d + 1),
        });
        Audit::registry(who.registrar(), action, a)
            .detail(format!("accepted={a} rejected={r} duplicate={d}{detail}"))
            .write(self, request_id)
            .await?;
        for errors in &prepared.rejections {
            self.keep_rejection(who, errors).await;
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or(AppError::Internal("import outcome")))
            .collect()
    }

    /// Replaces an accepted declaration, whole, with a corrected file for the same employer,
    /// period and form (a main declaration by a `B` file, complementary declaration `n` by an
    /// `En` file). The file passes every rule an import does, as if the declaration it replaces
    /// had not been sent (persons declared in the period's other declarations still count).
    /// On acceptance, in one transaction: the new declaration and its lines are written, naming
    /// what they rectify; the original becomes `rectified` and keeps every byte and line (it can
    /// still be read and written back); the ledger reverses the original's entry (`reversal`)
    /// and posts the new one, so the period owes the corrected amount, and the branches give
    /// back what the original's transaction allocated to them ([`taking_back`]) and are
    /// allocated the new one's shares. Careers show the
    /// rectified lines. The same file as the original changes nothing (a duplicate); a
    /// declaration already rectified is a conflict (rectify its rectification).
    pub async fn rectify_declaration(
        &self,
        who: Declarant,
        declaration_id: i64,
        file: ImportFile,
        lang: Lang,
        request_id: &str,
    ) -> Result<ImportOutcome, AppError> {
        let audit = |outcome: &str| {
            Audit::registry(who.registrar(), "rectify_declaration", 0)
                .outcome(outcome)
                .detail(format!("declaration={declaration_id}"))
        };
        if matches!(who, Declarant::Agent(_)) {
            audit("deny:role").write(self, request_id).await?;
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        }
        let store = &self.inner.store;
        let target = self
            .declaration_row(who, declaration_id, request_id)
            .await?;
        let parsed = self
            .parse_files(vec![file])
            .await?
            .pop()
            .ok_or(AppError::Internal("parse"))?;
        let mut ctx = self.context(std::slice::from_ref(&parsed)).await?;
        self.refuse_decoys(who, &ctx, request_id).await?;
        // A file already accepted changes nothing, also when it is this very rectification
        // sent again (a retry after a lost answer).
        if let Some(d) = ctx.already_accepted(who, &parsed) {
            audit("duplicate").write(self, request_id).await?;
            let affiliate = self.affiliate_of(d.employer_id).await?;
            return Ok(ImportOutcome::Duplicate(duplicate(d, affiliate, &parsed)?));
        }
        if target.status != "accepted" {
            audit("conflict:rectified").write(self, request_id).await?;
            return Err(AppError::Conflict(Clash::Rectified));
        }
        let decl = match parsed.result {
            Ok(d) => d,
            Err(errors) => {
                return self
                    .rectification_rejected(who, &target, &errors, lang, request_id)
                    .await;
            }
        };
        let family = match decl.form {
            Form::Main => ebds::Family::B,
            Form::Complementary(_) => ebds::Family::E,
        };
        // The first of affiliate, period and form that differs from the declaration rectified.
        let differs = if ctx
            .employers
            .get(&decl.identity.affiliate)
            .is_none_or(|e| e.id != target.employer_id)
        {
            Some((
                2,
                1,
                "N_Num_Affilie",
                format!("{:07}", decl.identity.affiliate),
            ))
        } else if decl.identity.period.number() != target.period {
            Some((2, 1, "L_Periode", decl.identity.period.number().to_string()))
        } else if form_number(decl.form) != target.form {
            Some((1, 0, "L_Cat", decl.form.category()))
        } else {
            None
        };
        if let Some((line, record, field, found)) = differs {
            let affiliate = self.affiliate_of(target.employer_id).await?;
            let expected = format!(
                "{affiliate:07} {} {}",
                target.period,
                form_of(target.form).category()
            );
            let errors = vec![err(
                line,
                Some(RecordType::new(family, record)),
                field,
                found,
                Problem::RectifiesAnother(expected),
            )];
            return self
                .rectification_rejected(who, &target, &errors, lang, request_id)
                .await;
        }
        // Checked as if the declaration it replaces had not been sent: its form is free again
        // and its persons may be declared; the period's other declarations still count.
        ctx.accepted
            .remove(&(target.employer_id, target.period, target.form));
        let replaced: HashSet<i64> = store
            .declaration_persons(target.id)
            .await?
            .into_iter()
            .collect();
        for (e, p) in store
            .declared_persons(&[target.employer_id], target.period)
            .await?
        {
            ctx.declared.add(e, target.period, [p]);
        }
        ctx.declared
            .forget(target.employer_id, target.period, &replaced);
        let mut new_persons = Vec::new();
        let mut new_by_cin = HashMap::new();
        let (employer, preetabli_id, persons) =
            match self.check(who, &decl, &mut ctx, &mut new_persons, &mut new_by_cin) {
                Ok(x) => x,
                Err(errors) => {
                    return self
                        .rectification_rejected(who, &target, &errors, lang, request_id)
                        .await;
                }
            };
        let accepted = vec![(
            0,
            Accepted {
                employer,
                preetabli_id,
                decl,
                digest: parsed.digest,
                persons,
            },
        )];
        let mut ids = IdPool::exact();
        let mut in_flight = InFlight::default();
        let (mut batch, summaries) = self
            .build_accepted(&accepted, &new_persons, &ctx, &mut ids, &mut in_flight)
            .await?;
        let new = batch
            .declarations
            .first_mut()
            .ok_or(AppError::Internal("rectification"))?;
        new.rectifies = Some(target.id);
        let new_id = new.id;
        batch.rectified = Some(target.id);
        let reversed = store
            .entry_postings(&EntryCode::Declaration.key(target.id))
            .await?
            .into_iter()
            .map(Posting::reversed)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ledger_error)?;
        let deallocation = ledger::taking_back(&reversed, target.branch_shares.as_deref())
            .map_err(ledger_error)?;
        let reversal = ids.take(store, "ledger_entry", 1).await?;
        batch.entries.push(LedgerEntryRow {
            id: reversal,
            key: EntryCode::Reversal.key(target.id),
            code: EntryCode::Reversal,
            employer_id: Some(target.employer_id),
            period: target.period,
            at: self.now().0,
            postings: reversed,
        });
        if let Some(postings) = deallocation {
            let id = ids.take(store, "ledger_entry", 1).await?;
            batch
                .entries
                .push(allocation_entry(id, target.period, self.now().0, postings));
        }
        let outcomes = summaries
            .into_iter()
            .map(|mut s| {
                s.rectifies = Some(target.id.to_string());
                Some(ImportOutcome::Accepted(s))
            })
            .collect();
        let prepared = PreparedImport {
            outcomes,
            rejections: Vec::new(),
            batch,
            in_flight,
        };
        let detail = format!(" declaration={} rectification={new_id}", target.id);
        self.commit(who, prepared, "rectify_declaration", detail, request_id)
            .await?
            .pop()
            .ok_or(AppError::Internal("rectification outcome"))
    }

    /// An employer's affiliate number (0 if it is unknown).
    async fn affiliate_of(&self, employer_id: i64) -> Result<i64, AppError> {
        Ok(self
            .inner
            .store
            .employers_where(false, &[employer_id])
            .await?
            .first()
            .map_or(0, |e| e.affiliate_number))
    }

    /// A rejected rectification: audited, its errors kept for the employer, nothing else
    /// written.
    async fn rectification_rejected(
        &self,
        who: Declarant,
        target: &DeclarationRow,
        errors: &[EbdsError],
        lang: Lang,
        request_id: &str,
    ) -> Result<ImportOutcome, AppError> {
        Audit::registry(who.registrar(), "rectify_declaration", 0)
            .outcome("rejected")
            .detail(format!(
                "declaration={} errors={}",
                target.id,
                error_count(errors)
            ))
            .write(self, request_id)
            .await?;
        self.keep_rejection(who, errors).await;
        Ok(rejected(errors, lang))
    }

    /// Keeps a rejected file's errors, sealed, for the employer whose user sent it: the
    /// [`REJECTIONS_KEPT`] latest of each employer. The operator's batch imports print theirs
    /// (and agents send no files). Keeping them is not part of the answer: if it fails, the
    /// sender still gets every error, and the failure is logged.
    async fn keep_rejection(&self, who: Declarant, errors: &[EbdsError]) {
        let Declarant::Employer { employer_id, .. } = who else {
            return;
        };
        if let Err(e) = self.try_keep_rejection(employer_id, errors).await {
            tracing::warn!(error = %e, "a rejection was not kept");
        }
    }

    async fn try_keep_rejection(
        &self,
        employer_id: i64,
        errors: &[EbdsError],
    ) -> Result<(), AppError> {
        let sealed: Vec<SealedError> = errors
            .iter()
            .filter(|e| !matches!(e.problem, Problem::TooManyErrors(_)))
            .take(REJECTION_ERRORS_KEPT)
            .map(SealedError::new)
            .collect();
        let plain = serde_json::to_vec(&sealed).map_err(|_| AppError::Internal("rejection"))?;
        let id = self
            .inner
            .store
            .allocate("declaration_rejection", 1)
            .await?;
        let row = store::RejectionRow {
            id,
            employer_id,
            received_at: self.now().0,
            error_count: error_count(errors),
            errors: self.keyring().encrypt(DECLARATION_REJECTION, id, &plain)?,
        };
        self.inner
            .store
            .insert_rejection(&row, REJECTIONS_KEPT)
            .await?;
        Ok(())
    }

    /// The files the employer's users sent that were rejected, the latest first, each with its
    /// errors in `lang`: for the employer's own users (the errors quote names and numbers), and
    /// the operator.
    pub async fn declaration_rejections(
        &self,
        who: Declarant,
        affiliate_number: u32,
        lang: Lang,
        request_id: &str,
    ) -> Result<Vec<RejectionView>, AppError> {
        let e = self
            .employer_for(who, affiliate_number, true, request_id)
            .await?;
        let rows = self.inner.store.employer_rejections(e.id).await?;
        Audit::registry(who.registrar(), "read_declaration_rejections", rows.len())
            .detail(format!("employer={}", e.id))
            .write(self, request_id)
            .await?;
        rows.into_iter()
            .map(|r| {
                let plain = self
                    .keyring()
                    .decrypt(DECLARATION_REJECTION, r.id, &r.errors)?;
                let sealed: Vec<SealedError> = serde_json::from_slice(&plain)
                    .map_err(|_| store::StoreError::Corrupt("rejection"))?;
                Ok(RejectionView {
                    rejection_id: r.id,
                    received_at: r.received_at,
                    error_count: r.error_count,
                    errors: sealed.into_iter().map(|e| e.view(lang)).collect(),
                })
            })
            .collect()
    }

    /// Loads what the files refer to: employers, préétablis and their employees, the forms already
    /// accepted, the persons named by number or CIN, current employments.
    async fn context(&self, parsed: &[ParsedFile]) -> Result<Context, AppError> {
        let store = &self.inner.store;
        let ring = &self.keyring();
        let decls: Vec<&Declaration> = parsed
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .collect();
        let mut ctx = Context::default();
        // Affiliation numbers by period (an import is usually one period).
        let mut by_period: BTreeMap<i64, HashSet<i64>> = BTreeMap::new();
        for d in &decls {
            by_period
                .entry(d.identity.period.number())
                .or_default()
                .insert(i64::from(d.identity.affiliate));
        }
        for (period, numbers) in &by_period {
            let numbers: Vec<i64> = numbers.iter().copied().collect();
            let mut ids = Vec::with_capacity(numbers.len());
            let mut pres = Vec::with_capacity(numbers.len());
            for (e, pre) in store.declarants(&numbers, *period).await? {
                ctx.employers.insert(e.affiliate_number as u32, e);
                ids.push(e.id);
                pres.extend(pre);
            }
            let mut employees = self.employees_of(&pres).await?;
            for pre in pres {
                let known: KnownEmployees = employees
                    .remove(&pre.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(person, e)| (e.immatriculation, (person, e)))
                    .collect();
                ctx.preetablis
                    .insert((pre.employer_id, *period), (pre, known));
            }
            for d in store.accepted_declarations(&ids, *period).await? {
                ctx.accepted.insert((d.employer_id, d.period, d.form));
                ctx.accepted_rows
                    .insert((d.employer_id, d.period, d.form), d);
            }
            // Who was declared already: only for employers sending complementary declarations.
            let complementing: Vec<i64> = decls
                .iter()
                .filter(|d| d.form != Form::Main && d.identity.period.number() == *period)
                .filter_map(|d| ctx.employers.get(&d.identity.affiliate).map(|e| e.id))
                .collect();
            for (e, p) in store.declared_persons(&complementing, *period).await? {
                ctx.declared.add(e, *period, [p]);
            }
        }
        let mut imma_keys = HashMap::new();
        let mut cin_keys = HashMap::new();
        for d in &decls {
            // A B02 line for someone not on the préétabli is an error the sender is told; its
            // number is still looked up, so that naming a decoy this way raises the alert too.
            let known = ctx
                .employers
                .get(&d.identity.affiliate)
                .and_then(|e| ctx.preetablis.get(&(e.id, d.identity.period.number())));
            for l in &d.lines {
                let i = l.employee.immatriculation;
                if !known.is_some_and(|(_, k)| k.contains_key(&i)) {
                    let k =
                        ring.blind_index(IMMATRICULATION_INDEX, format!("{i:09}").as_bytes())?;
                    imma_keys.insert(k.to_vec(), i);
                }
            }
            for e in &d.entrants {
                match e.immatriculation {
                    Some(i) => {
                        let k =
                            ring.blind_index(IMMATRICULATION_INDEX, format!("{i:09}").as_bytes())?;
                        imma_keys.insert(k.to_vec(), i);
                    }
                    None => {
                        let k = ring.blind_index(CIN_INDEX, e.cin.as_bytes())?;
                        cin_keys.insert(k.to_vec(), e.cin.clone());
                    }
                }
            }
        }
        let keys: Vec<Vec<u8>> = imma_keys.keys().cloned().collect();
        for (k, id) in store
            .person_ids_by_index(BlindColumn::Immatriculation, &keys)
            .await?
        {
            if let Some(i) = imma_keys.get(&k) {
                ctx.by_imma.insert(*i, id);
            }
        }
        let keys: Vec<Vec<u8>> = cin_keys.keys().cloned().collect();
        for (k, id) in store.person_ids_by_index(BlindColumn::Cin, &keys).await? {
            if let Some(c) = cin_keys.get(&k) {
                ctx.by_cin.insert(c.clone(), id);
            }
        }
        // Which entrants already in the registry are employed by their declarant already (the
        // others get an employment when their file is accepted).
        for period in by_period.keys() {
            let pairs: Vec<(i64, i64)> = decls
                .iter()
                .filter(|d| d.identity.period.number() == *period)
                .filter_map(|d| {
                    let employer = ctx.employers.get(&d.identity.affiliate)?.id;
                    Some(d.entrants.iter().map(move |e| (employer, e)))
                })
                .flatten()
                .filter_map(|(employer, e)| {
                    let person = match e.immatriculation {
                        Some(i) => ctx.by_imma.get(&i),
                        None => ctx.by_cin.get(&e.cin),
                    };
                    person.map(|p| (employer, *p))
                })
                .collect();
            let date = period_of(*period)?.first_day().to_string();
            for pair in store.employed_among(&pairs, &date).await? {
                ctx.employed.insert(pair);
            }
        }
        Ok(ctx)
    }

    /// Files naming a decoy (as their employer, or as a person they declare by CIN or number):
    /// nothing of them is taken, the sender is locked and an alert raised.
    async fn refuse_decoys(
        &self,
        who: Declarant,
        ctx: &Context,
        request_id: &str,
    ) -> Result<(), AppError> {
        let decoy = !self.inner.honeytokens.is_empty()
            && (ctx.employers.values().any(|e| self.is_decoy_employer(e.id))
                || ctx
                    .by_cin
                    .values()
                    .chain(ctx.by_imma.values())
                    .any(|p| self.is_decoy_person(*p)));
        if !decoy {
            return Ok(());
        }
        let sender = self.declarant_principal(who).await?;
        self.decoy_touched(sender.as_ref(), "e-BDS", request_id)
            .await?;
        Err(AppError::Denied(DenyReason::Honeytoken))
    }

    /// The principal behind a declarant (none for the operator at the command line).
    async fn declarant_principal(&self, who: Declarant) -> Result<Option<Principal>, AppError> {
        match who {
            Declarant::Operator => Ok(None),
            Declarant::Agent(id)
            | Declarant::Employer {
                principal_id: id, ..
            } => self.principal(id).await,
        }
    }

    /// The employees of these préétablis (person, A02 content), by préétabli, in the order
    /// issued: one decryption each, or their lines for préétablis issued before migration 0015.
    async fn employees_of(
        &self,
        pres: &[PreetabliRow],
    ) -> Result<HashMap<i64, Vec<(i64, Employee)>>, AppError> {
        let ring = &self.keyring();
        let mut out = HashMap::with_capacity(pres.len());
        let mut legacy = Vec::new();
        for p in pres {
            match &p.employees {
                Some(sealed) => {
                    let plain = ring.decrypt(PREETABLI_EMPLOYEES, p.id, sealed)?;
                    out.insert(p.id, parse_employees(&plain)?);
                }
                None => legacy.push(p),
            }
        }
        for l in self.preetabli_lines_of(&legacy).await? {
            let plain = ring.decrypt(PREETABLI_LINE, l.id, &l.data)?;
            out.entry(l.preetabli_id)
                .or_insert_with(Vec::new)
                .push((l.person_id, parse_employee(&split(&plain)?)?));
        }
        // Every préétabli has all the employees it lists, or it is corrupt.
        for p in pres {
            if out.get(&p.id).map_or(0, Vec::len) as i64 != p.lines {
                return Err(store::StoreError::Corrupt("préétabli employees").into());
            }
        }
        Ok(out)
    }

    /// The lines of préétablis issued before migration 0015, in order: one range query when
    /// they are close together (issued in one run, in employer order), else one query each.
    async fn preetabli_lines_of(
        &self,
        pres: &[&PreetabliRow],
    ) -> Result<Vec<PreetabliLineRow>, AppError> {
        let needed: i64 = pres.iter().map(|p| p.lines).sum();
        let (Some(lo), Some(hi)) = (
            pres.iter().map(|p| p.first_line).min(),
            pres.iter().map(|p| p.first_line + p.lines).max(),
        ) else {
            return Ok(Vec::new());
        };
        let store = &self.inner.store;
        if store::worth_a_range(needed, hi - lo) {
            let wanted: HashSet<i64> = pres.iter().map(|p| p.id).collect();
            Ok(store
                .preetabli_lines(lo, hi - lo)
                .await?
                .into_iter()
                .filter(|l| wanted.contains(&l.preetabli_id))
                .collect())
        } else {
            let mut out = Vec::new();
            for p in pres {
                out.extend(store.preetabli_lines(p.first_line, p.lines).await?);
            }
            Ok(out)
        }
    }

    /// The registry rules of one declaration. On success: its employer, préétabli and the
    /// person of each line then each entrant.
    fn check(
        &self,
        who: Declarant,
        d: &Declaration,
        ctx: &mut Context,
        new_persons: &mut Vec<(String, String)>,
        new_by_cin: &mut HashMap<String, usize>,
    ) -> Result<(EmployerRef, Option<i64>, Vec<PersonRef>), Vec<EbdsError>> {
        let family = match d.form {
            Form::Main => ebds::Family::B,
            Form::Complementary(_) => ebds::Family::E,
        };
        let rt = |n| Some(RecordType::new(family, n));
        let mut errors = Vec::new();
        let employer = match ctx.employers.get(&d.identity.affiliate) {
            Some(e) if who.may_see(e.id) => *e,
            _ => {
                return Err(vec![err(
                    2,
                    rt(1),
                    "N_Num_Affilie",
                    format!("{:07}", d.identity.affiliate),
                    Problem::UnknownAffiliate,
                )]);
            }
        };
        let pn = d.identity.period.number();
        let form = form_number(d.form);
        if ctx.accepted.contains(&(employer.id, pn, form)) {
            errors.push(err(
                1,
                rt(0),
                "L_Cat",
                d.form.category(),
                Problem::AlreadyDeclared,
            ));
        }
        if form > 0 && !ctx.accepted.contains(&(employer.id, pn, 0)) {
            errors.push(err(
                1,
                rt(0),
                "L_Cat",
                d.form.category(),
                Problem::MainDeclarationMissing,
            ));
        }
        let mut persons = Vec::with_capacity(d.lines.len() + d.entrants.len());
        // The line and record of each person, for errors.
        let mut lines_of: Vec<(u64, RecordType)> = Vec::with_capacity(persons.capacity());
        let pre = ctx.preetablis.get(&(employer.id, pn));
        let preetabli_id = pre.map(|(p, _)| p.id);
        match pre {
            None if form == 0 => {
                errors.push(err(
                    1,
                    rt(0),
                    "N_Identif_Transfert",
                    format!("{:014}", d.transfer_id),
                    Problem::NoPreetabli,
                ));
            }
            None => {}
            Some((p, known)) => {
                if form == 0 && d.transfer_id != p.transfer_id as u64 && d.transfer_id != 0 {
                    errors.push(err(
                        1,
                        rt(0),
                        "N_Identif_Transfert",
                        format!("{:014}", d.transfer_id),
                        Problem::TransferId(format!("{:014}", p.transfer_id)),
                    ));
                }
                let mut seen = HashSet::new();
                for (k, l) in d.lines.iter().enumerate() {
                    let line_no = 3 + k as u64;
                    let e = &l.employee;
                    match known.get(&e.immatriculation) {
                        None => errors.push(err(
                            line_no,
                            rt(2),
                            "N_Num_Assure",
                            format!("{:09}", e.immatriculation),
                            Problem::NotInPreetabli,
                        )),
                        Some((pid, want)) => {
                            seen.insert(e.immatriculation);
                            persons.push(PersonRef::Known(*pid));
                            lines_of.push((line_no, RecordType::new(family, 2)));
                            let echo = [
                                ("N_Enfants", u64::from(e.children), u64::from(want.children)),
                                (
                                    "N_AF_A_Payer",
                                    e.af_payable.0 as u64,
                                    want.af_payable.0 as u64,
                                ),
                                (
                                    "N_AF_A_Deduire",
                                    e.af_deductible.0 as u64,
                                    want.af_deductible.0 as u64,
                                ),
                                ("N_AF_Net_A_Payer", e.af_net.0 as u64, want.af_net.0 as u64),
                            ];
                            for (field, found, expected) in echo {
                                if found != expected {
                                    errors.push(err(
                                        line_no,
                                        rt(2),
                                        field,
                                        found.to_string(),
                                        Problem::DiffersFromPreetabli(expected.to_string()),
                                    ));
                                }
                            }
                        }
                    }
                }
                if form == 0 {
                    let recap_line = 3 + d.lines.len() as u64;
                    let mut missing: Vec<u32> = known
                        .keys()
                        .filter(|i| !seen.contains(i))
                        .copied()
                        .collect();
                    missing.sort_unstable();
                    for i in missing {
                        errors.push(err(
                            recap_line,
                            rt(3),
                            "N_Nbr_Salaries",
                            String::new(),
                            Problem::MissingEmployee(format!("{i:09}")),
                        ));
                    }
                }
            }
        }
        let first_entrant_line = 4 + d.lines.len() as u64 + u64::from(family == ebds::Family::E);
        // Persons new to the registry are created only if the whole file is accepted.
        let mut pending_new: Vec<(usize, &Entrant)> = Vec::new();
        for (k, e) in d.entrants.iter().enumerate() {
            let line_no = first_entrant_line + k as u64;
            let pos = persons.len();
            match e.immatriculation {
                Some(i) => match ctx.by_imma.get(&i) {
                    Some(pid) => persons.push(PersonRef::Known(*pid)),
                    None => {
                        errors.push(err(
                            line_no,
                            rt(4),
                            "N_Num_Assure",
                            format!("{i:09}"),
                            Problem::UnknownImmatriculation,
                        ));
                        continue;
                    }
                },
                None => match (ctx.by_cin.get(&e.cin), new_by_cin.get(&e.cin)) {
                    (Some(pid), _) => persons.push(PersonRef::Known(*pid)),
                    (None, Some(idx)) => persons.push(PersonRef::New(*idx)),
                    (None, None) => {
                        pending_new.push((pos, e));
                        persons.push(PersonRef::New(usize::MAX));
                    }
                },
            }
            lines_of.push((line_no, RecordType::new(family, 4)));
        }
        // Nobody twice for the employer and period: in this file, in an accepted declaration,
        // or in a file accepted earlier in this import.
        let mut seen = HashSet::with_capacity(persons.len());
        let declared = ctx.declared.of(employer.id, pn);
        for (p, (line_no, record)) in persons.iter().zip(&lines_of) {
            let key = match p {
                PersonRef::Known(id) => (0, *id),
                PersonRef::New(idx) if *idx != usize::MAX => (1, *idx as i64),
                PersonRef::New(_) => continue,
            };
            let before = key.0 == 0 && declared.contains(&key.1);
            if !seen.insert(key) || before {
                errors.push(err(
                    *line_no,
                    Some(*record),
                    "N_Num_Assure",
                    String::new(),
                    Problem::DeclaredTwice,
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for (pos, e) in pending_new {
            let idx = *new_by_cin.entry(e.cin.clone()).or_insert_with(|| {
                new_persons.push((e.cin.clone(), e.name.clone()));
                new_persons.len() - 1
            });
            persons[pos] = PersonRef::New(idx);
        }
        ctx.declared.add(
            employer.id,
            pn,
            persons.iter().filter_map(|p| match p {
                PersonRef::Known(id) => Some(*id),
                PersonRef::New(_) => None,
            }),
        );
        Ok((employer, preetabli_id, persons))
    }

    /// Encrypts and writes the accepted declarations, their lines, their ledger entries and
    /// the persons and employments their entrants create, in one transaction.
    async fn build_accepted(
        &self,
        accepted: &[(usize, Accepted)],
        new_persons: &[(String, String)],
        ctx: &Context,
        ids: &mut IdPool,
        in_flight: &mut InFlight,
    ) -> Result<(ImportBatch, Vec<DeclarationSummary>), AppError> {
        if accepted.is_empty() {
            return Ok((ImportBatch::default(), Vec::new()));
        }
        let store = &self.inner.store;
        let ring = &self.keyring();
        let now = self.now();
        let n_lines: i64 = accepted
            .iter()
            .map(|(_, a)| (a.decl.lines.len() + a.decl.entrants.len()) as i64)
            .sum();
        let first_decl = ids
            .take(store, "declaration", accepted.len() as i64)
            .await?;
        let first_line = ids.take(store, "declaration_line", n_lines).await?;
        let first_entry = ids
            .take(store, "ledger_entry", accepted.len() as i64)
            .await?;
        let mut batch = ImportBatch::default();
        // New persons: immatriculated from their entrant line (CIN and name only, as the
        // declaration gives them); the registry completes them later.
        let mut new_ids = Vec::with_capacity(new_persons.len());
        // Their numbers are allocated when the batch is written (`commit_import`): allocating
        // takes the database's write lock, which the batch before may still hold. Their ids
        // come from the pool (reserved in blocks).
        let first_person = ids.take(store, "person", new_persons.len() as i64).await?;
        for (k, (cin, name)) in new_persons.iter().enumerate() {
            let id = first_person + k as i64;
            let cin = Cin::parse(cin)?;
            let (last, first) = name.split_once(' ').unwrap_or((name.as_str(), ""));
            let mut cipher = PersonCipher::default();
            for (f, v) in [
                (PersonField::Cin, cin.as_str()),
                (PersonField::LastName, last),
                (PersonField::FirstName, first),
                (PersonField::LastNameAr, ""),
                (PersonField::FirstNameAr, ""),
                (PersonField::BirthDate, ""),
                (PersonField::Children, "0"),
            ] {
                cipher.set(f, ring.encrypt(person_column(f), id, v.as_bytes())?);
            }
            batch.persons.push(PersonRow {
                id,
                immatriculation_bidx: Vec::new(),
                cin_bidx: ring
                    .blind_index(CIN_INDEX, cin.as_str().as_bytes())?
                    .to_vec(),
                cipher,
                created_at: now.0,
            });
            new_ids.push(id);
            in_flight.by_cin.insert(cin.as_str().to_string(), id);
        }
        let mut employed = HashSet::new();
        let mut summaries = Vec::with_capacity(accepted.len());
        // What the batch's declarations allocate to the branches, by period.
        let mut allocations: BTreeMap<i64, BranchShares> = BTreeMap::new();
        let mut next_line = first_line;
        let mut blocks = store::LineBlocks::default();
        for (k, (_, a)) in accepted.iter().enumerate() {
            let id = first_decl + k as i64;
            let d = &a.decl;
            let period = d.identity.period;
            let pn = period.number();
            let mut branches = BranchShares::default();
            let (mut er_total, mut ee_total) = (Centimes::ZERO, Centimes::ZERO);
            let start = next_line;
            let mut declared = Vec::with_capacity(a.persons.len());
            let stored = d
                .lines
                .iter()
                .map(|l| (LineToStore::Known(l), l.gross))
                .chain(
                    d.entrants
                        .iter()
                        .map(|e| (LineToStore::Entrant(e), e.gross)),
                );
            for ((line, gross), person) in stored.zip(&a.persons) {
                let c = compute_line(self.params(), period, gross)?;
                for b in &c.branches {
                    branches
                        .add(b.branch, b.employer, b.employee)
                        .map_err(ledger_error)?;
                }
                er_total = er_total.checked_add(c.employer).ok_or_else(overflow)?;
                ee_total = ee_total.checked_add(c.employee).ok_or_else(overflow)?;
                let person_id = match person {
                    PersonRef::Known(p) => *p,
                    PersonRef::New(i) => {
                        *new_ids.get(*i).ok_or(AppError::Internal("new person"))?
                    }
                };
                if matches!(line, LineToStore::Entrant(_))
                    && !ctx.employed.contains(&(a.employer.id, person_id))
                    && employed.insert((a.employer.id, person_id))
                {
                    in_flight.employed.insert((a.employer.id, person_id));
                    batch.employments.push(EmploymentRow {
                        id: 0, // numbered below, once they are counted
                        employer_id: a.employer.id,
                        person_id,
                        start_date: period.first_day().to_string(),
                        end_date: None,
                        created_at: now.0,
                    });
                }
                // A person who left or died: their employment ends with the period, so the
                // next préétabli no longer lists them.
                if let LineToStore::Known(l) = line
                    && matches!(
                        l.situation,
                        ebds::Situation::Left | ebds::Situation::Deceased
                    )
                {
                    batch.employment_ends.push(store::EmploymentEnd {
                        employer_id: a.employer.id,
                        person_id,
                        end_date: period.last_day().to_string(),
                    });
                }
                declared.push(person_id);
                blocks.push(person_id, next_line, |b| {
                    line_payload(b, line, c.employer, c.employee)
                });
                next_line += 1;
            }
            in_flight.declared.add(a.employer.id, pn, declared);
            // A person twice in one declaration is a conflict, as the database's key once made
            // it (the checks refuse it before).
            let sealed = blocks
                .seal(id, pn, |context, plain| {
                    ring.encrypt_bound(DECLARATION_LINE_BLOCK, id, context, plain)
                        .map_err(AppError::from)
                })
                .map_err(|e| match e {
                    AppError::Store(store::StoreError::Conflict(_)) => {
                        AppError::Conflict(Clash::Declaration)
                    }
                    e => e,
                })?;
            batch.blocks.extend(sealed);
            let t = d.totals();
            let row = DeclarationRow {
                id,
                employer_id: a.employer.id,
                period: pn,
                form: form_number(d.form),
                status: "accepted".into(),
                digest: a.digest.clone(),
                preetabli_id: a.preetabli_id,
                first_line: start,
                lines: next_line - start,
                entrants: d.entrants.len() as i64,
                days: t.days as i64,
                gross: t.gross as i64,
                capped: t.capped as i64,
                employer_share: er_total.0,
                employee_share: ee_total.0,
                header: ring.encrypt(
                    DECLARATION_HEADER,
                    id,
                    &header_payload(d.transfer_id, form_number(d.form), &d.identity, d.layout),
                )?,
                received_at: now.0,
                rectifies: None,
                branch_shares: Some(branches.to_bytes()),
            };
            allocations
                .entry(pn)
                .or_default()
                .add_all(&branches)
                .map_err(ledger_error)?;
            let total = er_total.checked_add(ee_total).ok_or_else(overflow)?;
            batch.entries.push(LedgerEntryRow {
                id: first_entry + k as i64,
                key: EntryCode::Declaration.key(id),
                code: EntryCode::Declaration,
                employer_id: Some(a.employer.id),
                period: pn,
                at: now.0,
                postings: Journal::transfer(Account::Receivable, Account::Declared, total)
                    .map_err(ledger_error)?,
            });
            summaries.push(summary(&row, a.employer.affiliate_number)?.with_control_sums(&t));
            batch.declarations.push(row);
        }
        let first_allocation = ids
            .take(store, "ledger_entry", allocations.len() as i64)
            .await?;
        for (k, (pn, shares)) in allocations.iter().enumerate() {
            let id = first_allocation + k as i64;
            batch.entries.push(allocation_entry(
                id,
                *pn,
                now.0,
                ledger::allocation(shares).map_err(ledger_error)?,
            ));
        }
        if !batch.employments.is_empty() {
            let first = ids
                .take(store, "employment", batch.employments.len() as i64)
                .await?;
            for (k, e) in batch.employments.iter_mut().enumerate() {
                e.id = first + k as i64;
            }
        }
        Ok((batch, summaries))
    }

    // ---- reading back ------------------------------------------------------------------------

    /// A declaration (accepted, or rectified: the history stays readable) whose content the
    /// declarant may read. A refusal gets the same
    /// answer as an unknown id, and is audited.
    async fn declaration_row(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<DeclarationRow, AppError> {
        let found = self
            .inner
            .store
            .declaration(id)
            .await?
            .filter(|d| who.may_see(d.employer_id));
        match found {
            Some(d) => Ok(d),
            None => {
                Audit::registry(who.registrar(), "declaration_access", 0)
                    .outcome("deny:not_found_or_not_own")
                    .detail(format!("declaration={id}"))
                    .write(self, request_id)
                    .await?;
                Err(AppError::NotFound(Missing::Declaration))
            }
        }
    }

    /// A declaration's lines, decrypted, in the order of its file.
    async fn stored_lines(
        &self,
        d: &DeclarationRow,
    ) -> Result<Vec<(StoredLine, Centimes, Centimes)>, AppError> {
        let mut out = Vec::with_capacity(d.lines as usize);
        for b in self.inner.store.declaration_blocks(d.id).await? {
            for (_, line, payload) in self.open_block(&b)?.lines() {
                out.push((line, parse_line(payload)?));
            }
        }
        out.sort_unstable_by_key(|(line, _)| *line);
        // Every line of the declaration, each once: no block missing, none twice.
        if !out
            .iter()
            .map(|(line, _)| *line)
            .eq(d.first_line..d.first_line + d.lines)
        {
            return Err(store::StoreError::Corrupt("declaration lines").into());
        }
        Ok(out.into_iter().map(|(_, l)| l).collect())
    }

    /// Decrypts a block of declaration lines, and checks its row against what it holds.
    fn open_block(&self, b: &store::LineBlock) -> Result<store::OpenedBlock, AppError> {
        let opened = store::blocks::open_block(&b.data, |context, sealed| {
            self.keyring()
                .decrypt_bound(DECLARATION_LINE_BLOCK, b.declaration_id, context, sealed)
                .map_err(AppError::from)
        })?;
        let last = opened.lines().last().map(|(person, _, _)| person);
        if opened.lines().count() as i64 != b.lines || last != Some(b.last_person) {
            return Err(store::StoreError::Corrupt("declaration line block").into());
        }
        Ok(opened)
    }

    /// The declaration as the e-BDS file that was accepted, byte for byte.
    pub async fn declaration_file(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<Vec<u8>, AppError> {
        let d = self.declaration_row(who, id, request_id).await?;
        // The audit event is durable before anything is decrypted.
        Audit::registry(who.registrar(), "export_declaration", d.lines as usize)
            .detail(format!("declaration={id}"))
            .write(self, request_id)
            .await?;
        ebds::declaration_bytes(&self.stored_declaration(&d).await?, None)
            .map_err(|_| AppError::Internal("declaration not writable"))
    }

    /// The receipt of one of the employer's own declarations: its totals and the control sums
    /// of the file accepted, computed again from the lines it holds (so only those who may
    /// download the file get it).
    pub async fn declaration_receipt(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<DeclarationSummary, AppError> {
        let d = self.declaration_row(who, id, request_id).await?;
        Audit::registry(
            who.registrar(),
            "read_declaration_receipt",
            d.lines as usize,
        )
        .detail(format!("declaration={id}"))
        .write(self, request_id)
        .await?;
        let decl = self.stored_declaration(&d).await?;
        let affiliate = self.affiliate_of(d.employer_id).await?;
        let mut s = summary(&d, affiliate)?.with_control_sums(&decl.totals());
        let rows = self
            .inner
            .store
            .employer_declarations(d.employer_id)
            .await?;
        s.rectified_by = rectified_by(&rows).get(&d.id).map(|r| r.to_string());
        Ok(s)
    }

    /// A declaration as it was accepted, from its encrypted header and lines. The caller's audit
    /// event is written before.
    async fn stored_declaration(&self, d: &DeclarationRow) -> Result<Declaration, AppError> {
        let (transfer_id, form, identity, layout) = parse_header(&self.keyring().decrypt(
            DECLARATION_HEADER,
            d.id,
            &d.header,
        )?)?;
        let (mut lines, mut entrants) = (Vec::new(), Vec::new());
        for (l, _, _) in self.stored_lines(d).await? {
            match l {
                StoredLine::Known(l) => lines.push(l),
                StoredLine::Entrant(e) => entrants.push(e),
            }
        }
        Ok(Declaration {
            form: if form == 0 {
                Form::Main
            } else {
                Form::Complementary(form as u8)
            },
            transfer_id,
            identity,
            lines,
            entrants,
            layout,
        })
    }

    /// An employer's declarations (receipts), oldest first.
    pub async fn declarations_of(
        &self,
        who: Declarant,
        affiliate_number: u32,
        request_id: &str,
    ) -> Result<Vec<DeclarationSummary>, AppError> {
        let e = self
            .employer_for(who, affiliate_number, false, request_id)
            .await?;
        let rows = self.inner.store.employer_declarations(e.id).await?;
        let replaced = rectified_by(&rows);
        rows.iter()
            .map(|d| {
                let mut s = summary(d, e.affiliate_number)?;
                s.rectified_by = replaced.get(&d.id).map(|r| r.to_string());
                Ok(s)
            })
            .collect()
    }

    /// The lines of one of the employer's own declarations: only what it declared itself.
    pub async fn declaration_lines(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<Vec<CareerLine>, AppError> {
        let d = self.declaration_row(who, id, request_id).await?;
        let affiliate = self.affiliate_of(d.employer_id).await?;
        Audit::registry(who.registrar(), "read_declaration_lines", d.lines as usize)
            .detail(format!("declaration={id}"))
            .write(self, request_id)
            .await?;
        let lines = self.stored_lines(&d).await?;
        lines
            .into_iter()
            .map(|(s, er, ee)| career_line(d.period, &s, er, ee, affiliate, d.form))
            .collect::<Result<_, _>>()
    }

    /// A person's career (days and salaries by month and employer), through the gate: the
    /// insured person reads their own; an agent only within an open case, and from its read
    /// budget, naming the person (an unknown one, or none, is `NotFound` for an agent and the
    /// same denial as "not yours" for anyone else). An employer reads the lines it declared
    /// itself ([`App::declaration_lines`]), never a career.
    pub async fn career(
        &self,
        who: &Principal,
        person_id: Option<i64>,
        request_id: &str,
    ) -> Result<Vec<CareerLine>, AppError> {
        let purpose = match who.role {
            Role::Insured => Purpose::SelfService,
            Role::Agent => Purpose::CaseReview,
            Role::EmployerUser | Role::SecurityOfficer => {
                let mut a =
                    Audit::command(who, "read_career", None).denied(DenyReason::RoleHasNoAccess);
                if let Some(p) = person_id {
                    a = a.subject(p);
                }
                a.write(self, request_id).await?;
                return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
            }
        };
        // An insured person who names nobody reads their own; an agent names the person. The
        // gate is told whether that person exists.
        let person = match person_id.or(who.person_id.filter(|_| who.role == Role::Insured)) {
            Some(p) => self.resolve(&crate::Subject::Person(p)).await?,
            None => None,
        };
        let asking = Asking {
            action: "read_career",
            purpose,
            fields: &[PersonField::Immatriculation],
            full: false,
        };
        let subject = self.admit(who, person, asking, request_id).await?;
        let rows = self.inner.store.career(subject).await?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|(_, e, _)| *e)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let numbers: HashMap<i64, i64> = self
            .inner
            .store
            .employers_where(false, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id, e.affiliate_number))
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for (b, employer, form) in &rows {
            // Only a block holding the person's line is decrypted (the lookup also finds the
            // declarations of an employer after the person left it).
            if store::blocks::persons(&b.data)?
                .binary_search(&subject)
                .is_err()
            {
                continue;
            }
            let opened = self.open_block(b)?;
            let Some((line, payload)) = opened.line_of(subject) else {
                continue;
            };
            let (s, er, ee) = parse_line(payload)?;
            let affiliate = numbers.get(employer).copied().unwrap_or(0);
            out.push((
                (b.period, line),
                career_line(b.period, &s, er, ee, affiliate, *form)?,
            ));
        }
        out.sort_unstable_by_key(|(order, _)| *order);
        Ok(out.into_iter().map(|(_, l)| l).collect())
    }

    // ---- money ---------------------------------------------------------------------------------

    /// Records a payment by an employer for a period, once per bank reference: the same
    /// reference again changes nothing and returns the payment already recorded.
    pub async fn record_payment(
        &self,
        reg: Registrar,
        payment: &NewPayment,
        request_id: &str,
    ) -> Result<PaymentOutcome, AppError> {
        let NewPayment {
            affiliate_number,
            period,
            amount,
            paid_on,
            ..
        } = *payment;
        let bank_reference = payment.bank_reference.as_str();
        let reference = bank_reference.trim();
        let mut bad = Vec::new();
        if amount.0 <= 0 {
            bad.push(domain::ValidationError::new(
                "amount",
                domain::Rule::NotNegative,
            ));
        }
        // A bank's reference: letters, digits and . _ / - (it becomes the idempotency key).
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-');
        if reference.is_empty() {
            bad.push(domain::ValidationError::new(
                "bank_reference",
                domain::Rule::Required,
            ));
        } else if reference.len() > 64 {
            bad.push(domain::ValidationError::new(
                "bank_reference",
                domain::Rule::TooLong(64),
            ));
        } else if !reference.chars().all(allowed) {
            bad.push(domain::ValidationError::new(
                "bank_reference",
                domain::Rule::UnknownValue,
            ));
        }
        if !bad.is_empty() {
            return Err(AppError::Invalid(bad));
        }
        // As whoever records it: the agent is locked if the employer is a decoy.
        let who = match reg.principal_id {
            Some(id) => Declarant::Agent(id),
            None => Declarant::Operator,
        };
        let employer = self
            .employer_for(who, affiliate_number, false, request_id)
            .await?;
        if let Some(p) = self.inner.store.payment_by_reference(reference).await? {
            // The same payment again changes nothing; another payment under the same reference
            // is refused rather than lost.
            return if (p.employer_id, p.period, p.amount)
                == (employer.id, period.number(), amount.0)
            {
                Ok(PaymentOutcome::AlreadyRecorded(payment_view(&p)?))
            } else {
                Err(AppError::Conflict(Clash::Payment))
            };
        }
        let id = self.inner.store.allocate("payment", 1).await?;
        let entry_id = self.inner.store.allocate("ledger_entry", 1).await?;
        let now = self.now();
        let pay = PaymentRow {
            id,
            employer_id: employer.id,
            period: period.number(),
            bank_reference: reference.to_string(),
            amount: amount.0,
            paid_on: paid_on.to_string(),
            entry_id,
            received_at: now.0,
        };
        let entry = LedgerEntryRow {
            id: entry_id,
            key: EntryCode::Payment.key(reference),
            code: EntryCode::Payment,
            employer_id: Some(employer.id),
            period: pay.period,
            at: now.0,
            postings: Journal::transfer(Account::Bank, Account::Receivable, amount)
                .map_err(ledger_error)?,
        };
        Audit::registry(reg, "record_payment", 1)
            .detail(format!("affiliate={affiliate_number:07} period={period}"))
            .write(self, request_id)
            .await?;
        match self.inner.store.insert_payment(&pay, &entry).await {
            Ok(()) => Ok(PaymentOutcome::Recorded(payment_view(&pay)?)),
            Err(store::StoreError::Conflict(_)) => {
                let p = self
                    .inner
                    .store
                    .payment_by_reference(reference)
                    .await?
                    .ok_or(AppError::Conflict(Clash::Payment))?;
                Ok(PaymentOutcome::AlreadyRecorded(payment_view(&p)?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Posts the late-payment surcharges due on `at`: for each employer and period whose due
    /// date has passed with contributions unpaid, the rate of the dated table for the months
    /// (or parts of months) late, on what is unpaid (surcharges are not surcharged), less what
    /// was already posted. Idempotent: the same day again posts nothing.
    pub async fn post_surcharges(
        &self,
        reg: Registrar,
        at: Date,
        request_id: &str,
    ) -> Result<SurchargeRun, AppError> {
        let store = &self.inner.store;
        let at_period = Period::new(at.year.clamp(1900, 9999) as u16, at.month)?;
        let mut sums: BTreeMap<(i64, i64), (i64, i64, i64)> = BTreeMap::new();
        for (employer, r) in store.receivables_up_to(at_period.number()).await? {
            let e = sums.entry((employer, r.period)).or_default();
            match r.code {
                EntryCode::Payment => e.1 -= r.amount.0,
                EntryCode::Surcharge => e.2 += r.amount.0,
                EntryCode::Declaration | EntryCode::Reversal | EntryCode::Allocation => {
                    e.0 += r.amount.0
                }
            }
        }
        let now = self.now();
        let mut entries = Vec::new();
        let mut total = 0i64;
        for ((employer, pn), (owed, paid, posted)) in sums {
            let period = period_of(pn)?;
            let months = months_late(period.due_date(), at);
            let unpaid = (owed - paid).max(0);
            let Some(rates) = self.params().surcharge_at(period) else {
                continue;
            };
            let due = Centimes(unpaid).apply_basis_points(rates.rate_after(months))?;
            let add = due.0 - posted;
            if add <= 0 {
                continue;
            }
            total += add;
            entries.push(LedgerEntryRow {
                id: 0,
                key: EntryCode::Surcharge.key(format!("{employer}:{pn}:{months}:{at}")),
                code: EntryCode::Surcharge,
                employer_id: Some(employer),
                period: pn,
                at: now.0,
                postings: Journal::transfer(Account::Receivable, Account::Surcharge, Centimes(add))
                    .map_err(ledger_error)?,
            });
        }
        if !entries.is_empty() {
            let first = store.allocate("ledger_entry", entries.len() as i64).await?;
            for (k, e) in entries.iter_mut().enumerate() {
                e.id = first + k as i64;
            }
        }
        Audit::registry(reg, "post_surcharges", entries.len())
            .detail(format!("at={at}"))
            .write(self, request_id)
            .await?;
        store.insert_entries(&entries).await?;
        Ok(SurchargeRun {
            entries: entries.len(),
            total: Centimes(total),
        })
    }

    /// What an employer owes and has paid, period by period.
    pub async fn statement(
        &self,
        who: Declarant,
        affiliate_number: u32,
        request_id: &str,
    ) -> Result<Statement, AppError> {
        let e = self
            .employer_for(who, affiliate_number, false, request_id)
            .await?;
        let mut periods: BTreeMap<i64, StatementPeriod> = BTreeMap::new();
        for r in self.inner.store.receivable(e.id).await? {
            let period = period_of(r.period)?;
            let p = periods.entry(r.period).or_insert_with(|| StatementPeriod {
                period,
                due_date: period.due_date().to_string(),
                owed: Centimes(0),
                surcharges: Centimes(0),
                paid: Centimes(0),
                balance: Centimes(0),
            });
            match r.code {
                EntryCode::Payment => p.paid.0 -= r.amount.0,
                EntryCode::Surcharge => {
                    p.surcharges.0 += r.amount.0;
                    p.owed.0 += r.amount.0;
                }
                EntryCode::Declaration | EntryCode::Reversal | EntryCode::Allocation => {
                    p.owed.0 += r.amount.0
                }
            }
            p.balance = Centimes(p.owed.0 - p.paid.0);
        }
        let periods: Vec<StatementPeriod> = periods.into_values().collect();
        let sum =
            |f: fn(&StatementPeriod) -> Centimes| Centimes(periods.iter().map(|p| f(p).0).sum());
        Ok(Statement {
            affiliate_number: format!("{:07}", e.affiliate_number),
            owed: sum(|p| p.owed),
            paid: sum(|p| p.paid),
            balance: sum(|p| p.balance),
            periods,
        })
    }

    /// The whole fund: every account's balance (optionally for one period), and whether the
    /// ledger balances (every entry sums to zero, and so does everything).
    pub async fn fund_view(
        &self,
        who: &Principal,
        period: Option<Period>,
    ) -> Result<FundView, AppError> {
        if !matches!(who.role, Role::Agent | Role::SecurityOfficer) || who.locked {
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        }
        self.ledger_check(period).await
    }

    /// The same, for the operator (command line, tests).
    pub async fn ledger_check(&self, period: Option<Period>) -> Result<FundView, AppError> {
        let accounts = self
            .inner
            .store
            .account_balances(period.map(Period::number))
            .await?;
        let unbalanced = self.inner.store.unbalanced_entries().await?;
        let total: i64 = accounts.iter().map(|(_, v)| v.0).sum();
        // Every transaction allocates what its declarations declared: nothing is left in
        // `contribution:declared`, for the whole fund or any period.
        let unallocated = accounts
            .iter()
            .any(|(a, v)| *a == Account::Declared && *v != Centimes::ZERO);
        Ok(FundView {
            balanced: unbalanced.is_empty() && !unallocated && (period.is_some() || total == 0),
            unbalanced_entries: unbalanced.len(),
            accounts: accounts
                .into_iter()
                .map(|(account, balance)| AccountBalance { account, balance })
                .collect(),
        })
    }
}

/// What a prepared batch accepted, for checking the next batch before this one is committed.
#[derive(Debug, Default, Clone)]
pub struct InFlight {
    accepted: HashSet<(i64, i64, i64)>,
    digests: HashMap<Vec<u8>, DeclarationSummary>,
    by_cin: HashMap<String, i64>,
    employed: HashSet<(i64, i64)>,
    declared: Declared,
}

/// Who was declared for an employer and a period (accepted before, or earlier in the import):
/// a list of persons for each (employer, period), added to once a file, not once a line (four
/// million lines a month). A file is checked against the set of its own employer and period,
/// built only when that employer already declared for the period.
#[derive(Debug, Default, Clone)]
struct Declared(HashMap<(i64, i64), Vec<i64>>);

impl Declared {
    fn add(&mut self, employer: i64, period: i64, persons: impl IntoIterator<Item = i64>) {
        self.0
            .entry((employer, period))
            .or_default()
            .extend(persons);
    }

    fn extend(&mut self, other: &Declared) {
        for (&(employer, period), persons) in &other.0 {
            self.add(employer, period, persons.iter().copied());
        }
    }

    /// The persons already declared for `employer` and `period`.
    fn of(&self, employer: i64, period: i64) -> HashSet<i64> {
        self.0
            .get(&(employer, period))
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets that `persons` were declared for `employer` and `period` (the declaration
    /// that declared them is being replaced).
    fn forget(&mut self, employer: i64, period: i64, persons: &HashSet<i64>) {
        if let Some(p) = self.0.get_mut(&(employer, period)) {
            p.retain(|x| !persons.contains(x));
        }
    }
}

/// What the batches of an import that may not be committed yet accepted, oldest first: at most
/// [`Unwritten::DEPTH`] of them. The next batch is checked against them as against the
/// database ([`App::prepare_import`]).
#[derive(Debug, Default)]
pub struct Unwritten(VecDeque<InFlight>);

impl Unwritten {
    /// Batches an import may have prepared and not committed when it prepares the next: the one
    /// being written and the one in the writer's queue of one (`daman ebds import`).
    pub const DEPTH: usize = 2;

    /// Adds the batch just prepared. The oldest beyond [`Unwritten::DEPTH`] is forgotten: it
    /// was committed before the writer took the batches after it.
    pub fn push(&mut self, batch: InFlight) {
        self.0.push_back(batch);
        while self.0.len() > Self::DEPTH {
            self.0.pop_front();
        }
    }
}

/// A batch checked and encrypted, ready to be written by [`App::commit_import`].
pub struct PreparedImport {
    outcomes: Vec<Option<ImportOutcome>>,
    /// The errors of each file rejected, kept once the batch is written ([`App::keep_rejection`]).
    rejections: Vec<Vec<EbdsError>>,
    batch: ImportBatch,
    pub in_flight: InFlight,
}

impl PreparedImport {
    /// Declaration lines the batch will write.
    pub fn lines(&self) -> usize {
        self.batch.blocks.iter().map(|b| b.lines as usize).sum()
    }
}

/// Ids taken from the database's counters in blocks, so that preparing a batch rarely needs the
/// write lock (taking a block does: it then waits for the batch being written, if any). Unused
/// ids are gaps, never reused.
pub struct IdPool {
    block: i64,
    ranges: HashMap<&'static str, (i64, i64)>,
}

impl IdPool {
    /// Takes exactly what is asked each time (single uploads).
    pub fn exact() -> IdPool {
        IdPool {
            block: 0,
            ranges: HashMap::new(),
        }
    }

    /// Takes at least `block` ids at a time (bulk imports).
    pub fn blocks(block: i64) -> IdPool {
        IdPool {
            block,
            ranges: HashMap::new(),
        }
    }

    /// Reserves `n` ids of counter `name` now (before a pipeline starts, so that preparing a
    /// batch does not wait for the write lock to take them).
    pub async fn reserve(
        &mut self,
        store: &store::Store,
        name: &'static str,
        n: i64,
    ) -> Result<(), AppError> {
        if n > 0 {
            let first = store.allocate(name, n).await?;
            self.ranges.insert(name, (first, first + n));
        }
        Ok(())
    }

    async fn take(
        &mut self,
        store: &store::Store,
        name: &'static str,
        n: i64,
    ) -> Result<i64, AppError> {
        let (next, end) = self.ranges.get(name).copied().unwrap_or((0, 0));
        if end - next >= n {
            self.ranges.insert(name, (next + n, end));
            return Ok(next);
        }
        let want = n.max(self.block);
        let first = store.allocate(name, want).await?;
        self.ranges.insert(name, (first + n, first + want));
        Ok(first)
    }
}

/// A file read and checked against the format, with its keyed digest.
pub struct ParsedFile {
    pub name: String,
    pub digest: Vec<u8>,
    pub result: Result<Declaration, Vec<EbdsError>>,
}

fn transfer_id(period: Period, preetabli_id: i64) -> u64 {
    // AAAAMM then the préétabli's number on 8 digits: unique, 14 digits.
    period.number() as u64 * 100_000_000 + (preetabli_id as u64 % 100_000_000)
}

fn form_of(n: i64) -> Form {
    match u8::try_from(n) {
        Ok(k @ 1..=9) => Form::Complementary(k),
        _ => Form::Main,
    }
}

fn form_number(f: Form) -> i64 {
    match f {
        Form::Main => 0,
        Form::Complementary(n) => i64::from(n),
    }
}

/// The rectification that replaced each declaration replaced, among an employer's.
fn rectified_by(rows: &[DeclarationRow]) -> HashMap<i64, i64> {
    rows.iter()
        .filter_map(|d| d.rectifies.map(|r| (r, d.id)))
        .collect()
}

/// How many errors a file had: those listed, and the ones counted beyond them.
fn error_count(errors: &[EbdsError]) -> i64 {
    errors
        .iter()
        .map(|e| match e.problem {
            Problem::TooManyErrors(more) => more as i64,
            _ => 1,
        })
        .sum()
}

fn rejected(errors: &[EbdsError], lang: Lang) -> ImportOutcome {
    ImportOutcome::Rejected {
        errors: errors.iter().map(|e| ErrorView::new(e, lang)).collect(),
    }
}

fn summary(d: &DeclarationRow, affiliate: i64) -> Result<DeclarationSummary, AppError> {
    Ok(DeclarationSummary {
        declaration_id: d.id,
        affiliate_number: format!("{affiliate:07}"),
        period: period_of(d.period)?,
        form: d.form,
        lines: d.lines - d.entrants,
        entrants: d.entrants,
        days: d.days,
        gross: Centimes(d.gross),
        capped: Centimes(d.capped),
        employer_share: Centimes(d.employer_share),
        employee_share: Centimes(d.employee_share),
        total: Centimes(d.employer_share + d.employee_share),
        control_sums: None,
        received_at: d.received_at,
        rectifies: d.rectifies.map(|r| r.to_string()),
        rectified_by: None,
    })
}

/// The receipt of a file already accepted and sent again: the stored totals, and the control
/// sums of the file in hand (the same bytes).
fn duplicate(
    d: &DeclarationRow,
    affiliate: i64,
    p: &ParsedFile,
) -> Result<DeclarationSummary, AppError> {
    let s = summary(d, affiliate)?;
    // The file was recognised as accepted, so it read (`Context::already_accepted`).
    Ok(match &p.result {
        Ok(decl) => s.with_control_sums(&decl.totals()),
        Err(_) => s,
    })
}

impl DeclarationSummary {
    fn with_control_sums(mut self, t: &ebds::Totals) -> Self {
        self.control_sums = Some(ControlSums::of(t));
        self
    }
}

/// One month of a person's career, as declared by an employer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CareerLine {
    pub period: Period,
    pub affiliate_number: String,
    /// `B02` (known employee) or `B04` (entrant); `E04` in a complementary declaration.
    pub record: String,
    pub immatriculation: String,
    pub days: u8,
    pub gross: Centimes,
    pub capped: Centimes,
    /// Blank, SO, DE, IT, IL, AT, CS, MS or MP.
    pub situation: String,
    pub employer_share: Centimes,
    pub employee_share: Centimes,
}

fn career_line(
    period: i64,
    s: &StoredLine,
    er: Centimes,
    ee: Centimes,
    affiliate: i64,
    form: i64,
) -> Result<CareerLine, AppError> {
    let family = if form == 0 { 'B' } else { 'E' };
    let (record, imma, days, gross, capped, situation) = match s {
        StoredLine::Known(x) => (
            format!("{family}02"),
            x.employee.immatriculation,
            x.days,
            x.gross,
            x.capped,
            x.situation.code().trim().to_string(),
        ),
        StoredLine::Entrant(x) => (
            format!("{family}04"),
            x.immatriculation.unwrap_or(0),
            x.days,
            x.gross,
            x.capped,
            String::new(),
        ),
    };
    Ok(CareerLine {
        period: period_of(period)?,
        affiliate_number: format!("{affiliate:07}"),
        record,
        immatriculation: format!("{imma:09}"),
        days,
        gross,
        capped,
        situation,
        employer_share: er,
        employee_share: ee,
    })
}

/// A payment received from an employer for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub affiliate_number: u32,
    pub period: Period,
    pub amount: Centimes,
    /// The bank's reference: recording it a second time changes nothing.
    pub bank_reference: String,
    pub paid_on: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    pub affiliate_period: Period,
    pub bank_reference: String,
    pub amount: Centimes,
    pub paid_on: String,
}

fn payment_view(p: &PaymentRow) -> Result<PaymentView, AppError> {
    Ok(PaymentView {
        affiliate_period: period_of(p.period)?,
        bank_reference: p.bank_reference.clone(),
        amount: Centimes(p.amount),
        paid_on: p.paid_on.clone(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PaymentOutcome {
    Recorded(PaymentView),
    AlreadyRecorded(PaymentView),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementPeriod {
    pub period: Period,
    pub due_date: String,
    /// Contributions declared plus surcharges.
    pub owed: Centimes,
    /// Of which late-payment surcharges.
    pub surcharges: Centimes,
    pub paid: Centimes,
    pub balance: Centimes,
}

/// What a surcharge run posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurchargeRun {
    pub entries: usize,
    pub total: Centimes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub affiliate_number: String,
    pub owed: Centimes,
    pub paid: Centimes,
    pub balance: Centimes,
    pub periods: Vec<StatementPeriod>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountBalance {
    pub account: Account,
    pub balance: Centimes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundView {
    pub balanced: bool,
    pub unbalanced_entries: usize,
    pub accounts: Vec<AccountBalance>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_stored_as_its_fields_joined_and_reads_back() {
        let known = StoredLine::Known(Line {
            employee: Employee {
                immatriculation: 100_000_007,
                name: "SALARIE SYNTHETIQUE".into(),
                children: 2,
                af_payable: Centimes(60_000),
                af_deductible: Centimes(0),
                af_net: Centimes(60_000),
            },
            af_repayable: Centimes(0),
            days: 26,
            gross: Centimes(800_000),
            capped: Centimes(600_000),
            situation: Situation::Normal,
        });
        let entrant = StoredLine::Entrant(Entrant {
            immatriculation: None,
            name: "NOUVEAU SALARIE".into(),
            cin: "QE100001".into(),
            days: 13,
            gross: Centimes(200_000),
            capped: Centimes(200_000),
        });
        let mut b = Vec::new();
        line_payload(
            &mut b,
            known.to_store(),
            Centimes(126_540),
            Centimes(40_440),
        );
        assert_eq!(
            b,
            join(
                &[
                    "B",
                    "100000007",
                    "SALARIE SYNTHETIQUE",
                    "2",
                    "60000",
                    "0",
                    "60000",
                    "0",
                    "26",
                    "800000",
                    "600000",
                    "",
                    "126540",
                    "40440"
                ]
                .map(String::from)
            )
        );
        assert_eq!(
            parse_line(&b).unwrap(),
            (known, Centimes(126_540), Centimes(40_440))
        );
        // Appended after another line's payload: the same bytes as on its own.
        let mut two = b.clone();
        line_payload(
            &mut two,
            entrant.to_store(),
            Centimes(42_180),
            Centimes(13_480),
        );
        let alone = two.split_off(b.len());
        assert_eq!(two, b);
        assert_eq!(
            parse_line(&alone).unwrap(),
            (entrant, Centimes(42_180), Centimes(13_480))
        );
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut x: i64 = 0x2545_F491_4F6C_DD1D;
        let mut values = vec![
            0,
            1,
            9,
            10,
            99,
            100,
            -1,
            -10,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x);
            values.push(x % 1_000_000);
        }
        for v in values {
            let mut b = Vec::new();
            push_decimal(&mut b, v);
            assert_eq!(b, v.to_string().into_bytes(), "{v}");
        }
    }

    #[test]
    fn import_batches_are_bounded_by_files_and_bytes_and_cover_every_file_once() {
        let half = IMPORT_BATCH_BYTES / 2;
        // A batch closes with the file that reaches the bound in bytes: a file larger than the
        // bound is alone.
        assert_eq!(
            import_batches(&[half, half - 1, 1, IMPORT_BATCH_BYTES * 3, 1, 1]),
            vec![0..3, 3..4, 4..6]
        );
        let small = vec![100u64; IMPORT_BATCH_FILES * 2 + 5];
        assert_eq!(
            import_batches(&small),
            vec![
                0..IMPORT_BATCH_FILES,
                IMPORT_BATCH_FILES..IMPORT_BATCH_FILES * 2,
                IMPORT_BATCH_FILES * 2..IMPORT_BATCH_FILES * 2 + 5
            ]
        );
        assert!(import_batches(&[]).is_empty());
    }

    #[test]
    fn preetabli_employees_round_trip_and_refuse_anything_else() {
        let employees: Vec<(i64, Employee)> = (0..3u32)
            .map(|k| {
                (
                    1_000 + i64::from(k),
                    Employee {
                        immatriculation: 100_000_001 + k,
                        name: format!("SALARIE SYNTHETIQUE {k}"),
                        children: k as u8,
                        af_payable: Centimes(30_000 * i64::from(k)),
                        af_deductible: Centimes(0),
                        af_net: Centimes(30_000 * i64::from(k)),
                    },
                )
            })
            .collect();
        let b = employees_payload(&employees).unwrap();
        assert_eq!(parse_employees(&b).unwrap(), employees);
        assert_eq!(
            parse_employees(&employees_payload(&[]).unwrap()).unwrap(),
            vec![]
        );
        // Cut anywhere, lengthened, or of another version: corrupt, never a shorter list.
        for cut in 0..b.len() {
            assert!(parse_employees(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(parse_employees(&longer).is_err());
        let mut other = b;
        other[0] = 2;
        assert!(parse_employees(&other).is_err());
    }
}
