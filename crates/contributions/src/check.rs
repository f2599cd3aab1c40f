//! The registry rules of one declaration file (the format's rules are the e-BDS reader's): its
//! employer is the declarant's, its form and period fit what was accepted, its B02 lines are
//! the préétabli's employees with the préétabli's figures, its entrants are known or new, and
//! nobody is declared twice. Every error is collected; nothing is written here.

use ebds::{Declaration, EbdsError, Employee, Family, Form, Problem, RecordType};
use foldhash::{HashSet, HashSetExt};
use store::{ClaimKind, EmployerRef, PreetabliRow};

use crate::Contributions;
use crate::codec::form_number;
use crate::context::{Context, EntrantClaim, KnownEmployees, PersonRef, claimed_key};
use kernel::Declarant;

pub(crate) fn err(
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

/// What a file that passed the checks declares: its employer and préétabli, the person of
/// each B02 line then of each entrant, and its entrants' claims.
pub(crate) struct Checks {
    pub(crate) employer: EmployerRef,
    pub(crate) preetabli_id: Option<i64>,
    pub(crate) persons: Vec<PersonRef>,
    pub(crate) claims: Vec<EntrantClaim>,
}

/// What checking one file found so far: its errors, and the person of each B02 line then of
/// each entrant, with the line and record each was on.
struct Checked {
    family: Family,
    errors: Vec<EbdsError>,
    persons: Vec<PersonRef>,
    lines_of: Vec<(u64, RecordType)>,
}

impl Checked {
    fn rt(&self, n: u8) -> Option<RecordType> {
        Some(RecordType::new(self.family, n))
    }

    fn error(&mut self, line: u64, n: u8, field: &'static str, found: String, p: Problem) {
        let e = err(line, self.rt(n), field, found, p);
        self.errors.push(e);
    }

    /// The form against what was accepted: once per employer, period and form; a
    /// complementary declaration after the main one.
    fn form(&mut self, ctx: &Context, d: &Declaration, employer: i64, pn: i64, form: i64) {
        if ctx.accepted.contains(&(employer, pn, form)) {
            self.error(1, 0, "L_Cat", d.form.category(), Problem::AlreadyDeclared);
        }
        if form > 0 && !ctx.accepted.contains(&(employer, pn, 0)) {
            self.error(
                1,
                0,
                "L_Cat",
                d.form.category(),
                Problem::MainDeclarationMissing,
            );
        }
    }

    /// The B02 lines against the préétabli: its transfer id, its employees (each once, every
    /// one of them in a main declaration), their children and allowances as issued.
    fn preetabli(
        &mut self,
        d: &Declaration,
        pre: Option<&(PreetabliRow, KnownEmployees)>,
        form: i64,
    ) {
        let transfer = format!("{:014}", d.transfer_id);
        let Some((p, known)) = pre else {
            if form == 0 {
                self.error(1, 0, "N_Identif_Transfert", transfer, Problem::NoPreetabli);
            }
            return;
        };
        if form == 0 && d.transfer_id != p.transfer_id as u64 && d.transfer_id != 0 {
            let want = Problem::TransferId(format!("{:014}", p.transfer_id));
            self.error(1, 0, "N_Identif_Transfert", transfer, want);
        }
        let mut seen = HashSet::new();
        for (k, l) in d.lines.iter().enumerate() {
            let line_no = 3 + k as u64;
            let e = &l.employee;
            let Some((pid, want)) = known.get(&e.immatriculation) else {
                let found = format!("{:09}", e.immatriculation);
                self.error(line_no, 2, "N_Num_Assure", found, Problem::NotInPreetabli);
                continue;
            };
            seen.insert(e.immatriculation);
            self.persons.push(PersonRef::Known(*pid));
            self.lines_of
                .push((line_no, RecordType::new(self.family, 2)));
            self.as_issued(line_no, e, want);
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
                let p = Problem::MissingEmployee(format!("{i:09}"));
                self.error(recap_line, 3, "N_Nbr_Salaries", String::new(), p);
            }
        }
    }

    /// A B02 line's children and allowances: those of the préétabli.
    fn as_issued(&mut self, line_no: u64, e: &Employee, want: &Employee) {
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
                let p = Problem::DiffersFromPreetabli(expected.to_string());
                self.error(line_no, 2, field, found.to_string(), p);
            }
        }
    }

    /// The entrants (docs/declarations.md, "Entrants"). A number without a CIN is an error,
    /// whoever's it is; a person the declarant employs already is its own; number, CIN and
    /// name that are one registered person's make a link for that person to confirm; anything
    /// else is an immatriculation request for an agent. Nothing here depends, in what the
    /// sender is told, on whether a number or CIN is anyone's.
    fn entrants(&mut self, d: &Declaration, ctx: &Context, employer: i64) -> Vec<EntrantClaim> {
        let first_entrant_line = 4 + d.lines.len() as u64 + u64::from(self.family == Family::E);
        let mut claims = Vec::new();
        for (k, e) in d.entrants.iter().enumerate() {
            let line_no = first_entrant_line + k as u64;
            if e.cin.is_empty() {
                let found = e
                    .immatriculation
                    .map(|i| format!("{i:09}"))
                    .unwrap_or_default();
                self.error(line_no, 4, "L_Num_CIN", found, Problem::EntrantCinRequired);
                continue;
            }
            let by_cin = ctx.by_cin.get(&e.cin).copied();
            let by_number = e.immatriculation.and_then(|i| ctx.by_imma.get(&i).copied());
            let person = match by_cin {
                Some(p)
                    if ctx.employed.contains(&(employer, p))
                        && (e.immatriculation.is_none() || by_number == Some(p)) =>
                {
                    PersonRef::Known(p)
                }
                _ => {
                    let link = by_cin.filter(|p| {
                        by_number == Some(*p)
                            && ctx
                                .registry_names
                                .get(p)
                                .is_some_and(|n| ebds::same_name(n, &e.name))
                    });
                    // The context indexes every entrant's CIN; a line without one is refused
                    // rather than left out.
                    let Some(cin_bidx) = ctx.cin_bidx.get(&e.cin) else {
                        self.error(line_no, 4, "L_Num_CIN", String::new(), Problem::Unreadable);
                        continue;
                    };
                    claims.push(EntrantClaim {
                        kind: if link.is_some() {
                            ClaimKind::Link
                        } else {
                            ClaimKind::Request
                        },
                        person: link,
                        cin: e.cin.clone(),
                        name: e.name.clone(),
                        cin_bidx: cin_bidx.clone(),
                    });
                    PersonRef::Claim(claims.len() - 1)
                }
            };
            self.persons.push(person);
            self.lines_of
                .push((line_no, RecordType::new(self.family, 4)));
        }
        claims
    }

    /// Nobody twice for the employer and period: in this file, in an accepted declaration,
    /// or in a file accepted earlier in this import.
    fn declared_twice(&mut self, ctx: &Context, claims: &[EntrantClaim], employer: i64, pn: i64) {
        let mut seen = HashSet::with_capacity(self.persons.len());
        let declared = ctx.declared.of(employer, pn);
        let mut twice = Vec::new();
        for (p, (line_no, record)) in self.persons.iter().zip(&self.lines_of) {
            let key = match p {
                PersonRef::Known(id) => *id,
                PersonRef::Claim(i) => match claims.get(*i) {
                    Some(c) => claimed_key(&c.cin_bidx),
                    None => continue,
                },
            };
            if !seen.insert(key) || declared.contains(&key) {
                twice.push(err(
                    *line_no,
                    Some(*record),
                    "N_Num_Assure",
                    String::new(),
                    Problem::DeclaredTwice,
                ));
            }
        }
        self.errors.extend(twice);
    }
}

impl Contributions {
    /// The registry rules of one declaration. On success: its employer, préétabli and the
    /// person of each line then each entrant.
    pub(crate) fn check(
        &self,
        who: Declarant,
        d: &Declaration,
        ctx: &mut Context,
    ) -> Result<Checks, Vec<EbdsError>> {
        let family = match d.form {
            Form::Main => Family::B,
            Form::Complementary(_) => Family::E,
        };
        let employer = match ctx.employers.get(&d.identity.affiliate) {
            Some(e) if who.may_see(e.id) => *e,
            _ => {
                return Err(vec![err(
                    2,
                    Some(RecordType::new(family, 1)),
                    "N_Num_Affilie",
                    format!("{:07}", d.identity.affiliate),
                    Problem::UnknownAffiliate,
                )]);
            }
        };
        let pn = d.identity.period.number();
        let form = form_number(d.form);
        let capacity = d.lines.len() + d.entrants.len();
        let mut c = Checked {
            family,
            errors: Vec::new(),
            persons: Vec::with_capacity(capacity),
            lines_of: Vec::with_capacity(capacity),
        };
        c.form(ctx, d, employer.id, pn, form);
        let pre = ctx.preetablis.get(&(employer.id, pn));
        let preetabli_id = pre.map(|(p, _)| p.id);
        c.preetabli(d, pre, form);
        let claims = c.entrants(d, ctx, employer.id);
        c.declared_twice(ctx, &claims, employer.id, pn);
        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        let persons = c.persons;
        ctx.declared.add(
            employer.id,
            pn,
            persons.iter().filter_map(|p| match p {
                PersonRef::Known(id) => Some(*id),
                PersonRef::Claim(i) => claims.get(*i).map(|c| claimed_key(&c.cin_bidx)),
            }),
        );
        Ok(Checks {
            employer,
            preetabli_id,
            persons,
            claims,
        })
    }
}
