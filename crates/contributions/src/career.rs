//! Careers: a person's declared days and salaries by month and employer, read from the sealed
//! blocks through the kernel's gate (`Kernel::admit`).

use domain::{Centimes, DenyReason, Period, PersonField, Purpose, Role};
use foldhash::{HashMap, HashSet};
use serde::Serialize;

use crate::Contributions;
use crate::codec::{StoredLine, parse_line};
use kernel::{AppError, Audit, Principal, Subject, gate::Asking, stored_period};
use store::LineBlock;

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

pub(crate) fn career_line(
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
        period: stored_period(period)?,
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

impl Contributions {
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
                a.write(&self.k, request_id).await?;
                return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
            }
        };
        // An insured person who names nobody reads their own; an agent names the person. The
        // gate is told whether that person exists.
        let person = match person_id.or(who.person_id.filter(|_| who.role == Role::Insured)) {
            Some(p) => self.k.resolve(&Subject::Person(p)).await?,
            None => None,
        };
        let asking = Asking {
            action: "read_career",
            purpose,
            fields: &[PersonField::Immatriculation],
            full: false,
        };
        let (subject, pass) = self.k.admit(who, person, asking, request_id).await?;
        // The lines under the person, in the declarations of every employer that employs or
        // employed them; and the entrant lines of their confirmed claims, kept under the claim.
        let mut rows: Vec<(LineBlock, i64, i64, i64)> = self
            .k
            .store()
            .career(subject)
            .await?
            .into_iter()
            .map(|(b, e, f)| (b, e, f, subject))
            .collect();
        for (claim, b, e, f) in self.k.store().claim_blocks(subject).await? {
            rows.push((b, e, f, store::claim_line_subject(claim)));
        }
        let ids: Vec<i64> = rows
            .iter()
            .map(|(_, e, _, _)| *e)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let numbers: HashMap<i64, i64> = self
            .k
            .store()
            .employers_where(false, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id, e.affiliate_number))
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for (b, employer, form, under) in &rows {
            // Only a block holding the person's line is decrypted (the lookup also finds the
            // declarations of an employer after the person left it).
            if store::blocks::persons(&b.data)?
                .binary_search(under)
                .is_err()
            {
                continue;
            }
            let opened = self.open_block(&pass, b)?;
            let Some((line, payload)) = opened.line_of(*under) else {
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
}
