//! What an import answers: files in, receipts (totals, shares, control sums), outcomes, errors
//! in the caller's language.

use domain::{Centimes, Lang, Period};
use ebds::{Declaration, EbdsError, Problem};
use foldhash::HashMap;
use serde::Serialize;
use store::DeclarationRow;

use kernel::{AppError, stored_period};

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
    pub(crate) fn new(e: &EbdsError, lang: Lang) -> ErrorView {
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

/// An accepted declaration's totals (its receipt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclarationSummary {
    #[serde(serialize_with = "kernel::id_string::serialize")]
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

/// A file read and checked against the format, with its keyed digest.
pub struct ParsedFile {
    pub name: String,
    pub digest: Vec<u8>,
    pub result: Result<Declaration, Vec<EbdsError>>,
}

/// The rectification that replaced each declaration replaced, among an employer's.
pub(crate) fn rectified_by(rows: &[DeclarationRow]) -> HashMap<i64, i64> {
    rows.iter()
        .filter_map(|d| d.rectifies.map(|r| (r, d.id)))
        .collect()
}

/// How many errors a file had: those listed, and the ones counted beyond them.
pub(crate) fn error_count(errors: &[EbdsError]) -> i64 {
    errors
        .iter()
        .map(|e| match e.problem {
            Problem::TooManyErrors(more) => more as i64,
            _ => 1,
        })
        .sum()
}

pub(crate) fn rejected(errors: &[EbdsError], lang: Lang) -> ImportOutcome {
    ImportOutcome::Rejected {
        errors: errors.iter().map(|e| ErrorView::new(e, lang)).collect(),
    }
}

pub(crate) fn summary(d: &DeclarationRow, affiliate: i64) -> Result<DeclarationSummary, AppError> {
    Ok(DeclarationSummary {
        declaration_id: d.id,
        affiliate_number: format!("{affiliate:07}"),
        period: stored_period(d.period)?,
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
pub(crate) fn duplicate(
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
    pub(crate) fn with_control_sums(mut self, t: &ebds::Totals) -> Self {
        self.control_sums = Some(ControlSums::of(t));
        self
    }
}
