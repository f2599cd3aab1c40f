//! The typed content of e-BDS files. Recaps and control sums are not part of it: the writer
//! computes them and the reader checks them.

use domain::{Centimes, Date, Period};

/// A situation code (cnss-domain.md §2.5) and its rank in the control sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Situation {
    /// Blank: normal work.
    #[default]
    Normal,
    /// SO: left the company.
    Left,
    /// DE: deceased.
    Deceased,
    /// IT: maternity leave.
    Maternity,
    /// IL: sick leave.
    Sick,
    /// AT: work accident.
    WorkAccident,
    /// CS: unpaid leave.
    UnpaidLeave,
    /// MS: kept without pay.
    KeptWithoutPay,
    /// MP: occupational disease.
    OccupationalDisease,
}

impl Situation {
    pub const ALL: [Situation; 9] = [
        Situation::Normal,
        Situation::Left,
        Situation::Deceased,
        Situation::Maternity,
        Situation::Sick,
        Situation::WorkAccident,
        Situation::UnpaidLeave,
        Situation::KeptWithoutPay,
        Situation::OccupationalDisease,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Situation::Normal => "  ",
            Situation::Left => "SO",
            Situation::Deceased => "DE",
            Situation::Maternity => "IT",
            Situation::Sick => "IL",
            Situation::WorkAccident => "AT",
            Situation::UnpaidLeave => "CS",
            Situation::KeptWithoutPay => "MS",
            Situation::OccupationalDisease => "MP",
        }
    }

    pub fn parse(b: &[u8]) -> Option<Situation> {
        Situation::ALL
            .into_iter()
            .find(|s| s.code().as_bytes() == b)
    }

    /// The rank added into the line's control sum.
    pub fn rank(self) -> u64 {
        Situation::ALL.iter().position(|s| *s == self).unwrap_or(0) as u64
    }

    /// CS and MS: no days and no salary.
    pub fn unpaid(self) -> bool {
        matches!(self, Situation::UnpaidLeave | Situation::KeptWithoutPay)
    }
}

/// The affiliate's identity and the period (record 01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub affiliate: u32,
    pub period: Period,
    pub name: String,
    pub activity: String,
    pub address: String,
    pub city: String,
    pub postcode: String,
    pub agency: String,
    pub issued: Date,
    pub due: Date,
}

/// A known employee, as the préétabli lists them (A02) and the declaration echoes them (B02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    pub immatriculation: u32,
    pub name: String,
    pub children: u8,
    pub af_payable: Centimes,
    pub af_deductible: Centimes,
    pub af_net: Centimes,
}

/// A declared line for a known employee (B02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub employee: Employee,
    pub af_repayable: Centimes,
    pub days: u8,
    pub gross: Centimes,
    pub capped: Centimes,
    pub situation: Situation,
}

impl Line {
    /// S_Ctr = immatriculation + AF to pay back + days + real + capped + rank of the situation.
    pub fn control_sum(&self) -> u64 {
        u64::from(self.employee.immatriculation)
            .saturating_add(self.af_repayable.0.max(0) as u64)
            .saturating_add(u64::from(self.days))
            .saturating_add(self.gross.0.max(0) as u64)
            .saturating_add(self.capped.0.max(0) as u64)
            .saturating_add(self.situation.rank())
    }
}

/// An entrant: an employee not in the préétabli (B04/E04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrant {
    /// `None` for someone without a number yet (written 000000000): the CIN is then required.
    pub immatriculation: Option<u32>,
    pub name: String,
    /// Empty when not given.
    pub cin: String,
    pub days: u8,
    pub gross: Centimes,
    pub capped: Centimes,
}

impl Entrant {
    /// S_Ctr = immatriculation (0 if none) + days + real + capped.
    pub fn control_sum(&self) -> u64 {
        u64::from(self.immatriculation.unwrap_or(0))
            .saturating_add(u64::from(self.days))
            .saturating_add(self.gross.0.max(0) as u64)
            .saturating_add(self.capped.0.max(0) as u64)
    }
}

/// The line separator of a file; kept so a file can be written back byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ending {
    #[default]
    Lf,
    CrLf,
}

impl Ending {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Ending::Lf => b"\n",
            Ending::CrLf => b"\r\n",
        }
    }
}

/// How the records were separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub ending: Ending,
    /// Whether the last record is followed by a line ending.
    pub final_newline: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            ending: Ending::Lf,
            final_newline: true,
        }
    }
}

/// The préétabli: what the fund knows of an employer's employees for a period (A00–A03).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preetabli {
    pub transfer_id: u64,
    pub identity: Identity,
    pub employees: Vec<Employee>,
    pub layout: Layout,
}

/// Which declaration a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// B00–B06: the main declaration of the period.
    Main,
    /// E00–E06: complementary declaration number 1 to 9 of the period.
    Complementary(u8),
}

impl Form {
    /// `L_Cat` of the `00` record.
    pub fn category(self) -> String {
        match self {
            Form::Main => "B0".into(),
            Form::Complementary(n) => format!("E{n}"),
        }
    }
}

/// A declaration (B00–B06) or a complementary declaration (E00–E06).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub form: Form,
    pub transfer_id: u64,
    pub identity: Identity,
    /// Known employees (always empty in a complementary declaration).
    pub lines: Vec<Line>,
    pub entrants: Vec<Entrant>,
    pub layout: Layout,
}

/// The totals of a declaration's lines and entrants (what B06 states), and its two control
/// sums by part (B03, B05).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub employees: u64,
    pub immatriculations: u64,
    pub days: u64,
    pub gross: u64,
    pub capped: u64,
    pub control: u64,
    /// What B03 states: Σ of the known employees' `S_Ctr`.
    pub lines_control: u64,
    /// What B05 states: Σ of the entrants' `S_Ctr`.
    pub entrants_control: u64,
}

impl Declaration {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for l in &self.lines {
            t.employees = t.employees.saturating_add(1);
            t.immatriculations = t
                .immatriculations
                .saturating_add(u64::from(l.employee.immatriculation));
            t.days = t.days.saturating_add(u64::from(l.days));
            t.gross = t.gross.saturating_add(l.gross.0.max(0) as u64);
            t.capped = t.capped.saturating_add(l.capped.0.max(0) as u64);
            t.lines_control = t.lines_control.saturating_add(l.control_sum());
        }
        for e in &self.entrants {
            t.employees = t.employees.saturating_add(1);
            t.immatriculations = t
                .immatriculations
                .saturating_add(u64::from(e.immatriculation.unwrap_or(0)));
            t.days = t.days.saturating_add(u64::from(e.days));
            t.gross = t.gross.saturating_add(e.gross.0.max(0) as u64);
            t.capped = t.capped.saturating_add(e.capped.0.max(0) as u64);
            t.entrants_control = t.entrants_control.saturating_add(e.control_sum());
        }
        t.control = t.lines_control.saturating_add(t.entrants_control);
        t
    }
}
