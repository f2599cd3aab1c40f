use ebds::{Declaration, EbdsError, Entrant, Form, Problem, RecordType};
// The import's sets and maps hash with foldhash: SipHash was 3 % of an import's CPU. Its seed
// is random per process, so colliding keys cannot be chosen in advance by whoever writes a file.
use foldhash::{HashMap, HashSet, HashSetExt};
use store::EmployerRef;

use crate::Contributions;
use crate::codec::form_number;
use crate::context::{Context, PersonRef};
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
}
