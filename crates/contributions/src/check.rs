//! The registry rules of one declaration file (the format's rules are the e-BDS reader's): its
//! employer is the declarant's, its form and period fit what was accepted, its B02 lines are
//! the préétabli's employees with the préétabli's figures, its entrants are known or new, and
//! nobody is declared twice. Every error is collected; nothing is written here.

use ebds::{Declaration, EbdsError, Employee, Entrant, Family, Form, Problem, RecordType};
use foldhash::{HashMap, HashSet, HashSetExt};
use store::{EmployerRef, PreetabliRow};

use crate::Contributions;
use crate::codec::form_number;
use crate::context::{Context, KnownEmployees, PersonRef};
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

    /// The entrants: by number (it must be registered), or by CIN (registered, new earlier in
    /// this import, or new here). Returns the entrants new to the registry, by their place in
    /// the persons: they are created only if the whole file is accepted.
    fn entrants<'d>(
        &mut self,
        d: &'d Declaration,
        ctx: &Context,
        new_by_cin: &HashMap<String, usize>,
    ) -> Vec<(usize, &'d Entrant)> {
        let first_entrant_line = 4 + d.lines.len() as u64 + u64::from(self.family == Family::E);
        let mut pending_new = Vec::new();
        for (k, e) in d.entrants.iter().enumerate() {
            let line_no = first_entrant_line + k as u64;
            let pos = self.persons.len();
            let person = match e.immatriculation {
                Some(i) => match ctx.by_imma.get(&i) {
                    Some(pid) => PersonRef::Known(*pid),
                    None => {
                        let found = format!("{i:09}");
                        let p = Problem::UnknownImmatriculation;
                        self.error(line_no, 4, "N_Num_Assure", found, p);
                        continue;
                    }
                },
                None => match (ctx.by_cin.get(&e.cin), new_by_cin.get(&e.cin)) {
                    (Some(pid), _) => PersonRef::Known(*pid),
                    (None, Some(idx)) => PersonRef::New(*idx),
                    (None, None) => {
                        pending_new.push((pos, e));
                        PersonRef::New(usize::MAX)
                    }
                },
            };
            self.persons.push(person);
            self.lines_of
                .push((line_no, RecordType::new(self.family, 4)));
        }
        pending_new
    }

    /// Nobody twice for the employer and period: in this file, in an accepted declaration,
    /// or in a file accepted earlier in this import.
    fn declared_twice(&mut self, ctx: &Context, employer: i64, pn: i64) {
        let mut seen = HashSet::with_capacity(self.persons.len());
        let declared = ctx.declared.of(employer, pn);
        let mut twice = Vec::new();
        for (p, (line_no, record)) in self.persons.iter().zip(&self.lines_of) {
            let key = match p {
                PersonRef::Known(id) => (0, *id),
                PersonRef::New(idx) if *idx != usize::MAX => (1, *idx as i64),
                PersonRef::New(_) => continue,
            };
            let before = key.0 == 0 && declared.contains(&key.1);
            if !seen.insert(key) || before {
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
        new_persons: &mut Vec<(String, String)>,
        new_by_cin: &mut HashMap<String, usize>,
    ) -> Result<(EmployerRef, Option<i64>, Vec<PersonRef>), Vec<EbdsError>> {
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
        let pending_new = c.entrants(d, ctx, new_by_cin);
        c.declared_twice(ctx, employer.id, pn);
        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        let mut persons = c.persons;
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
}
