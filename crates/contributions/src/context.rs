//! What the registry says of a batch of files, loaded once: its employers, préétablis and their
//! employees, what was accepted before, the persons its lines name; and decoys refused.

use domain::DenyReason;
use ebds::{Declaration, Employee, Form};
use foldhash::{HashMap, HashMapExt, HashSet};
use std::collections::BTreeMap;
use store::{BlindColumn, ClaimKind, DeclarationRow, EmployerRef, PreetabliRow};

use crate::Contributions;
use crate::codec::form_number;
use crate::model::ParsedFile;
use crate::pipeline::Declared;
use domain::PersonField;
use kernel::columns::{CIN_INDEX, IMMATRICULATION_INDEX};
use kernel::{Actor, AppError, Audit, Declarant, stored_period};

/// A checked declaration ready to be written.
pub(crate) struct Accepted {
    pub(crate) employer: EmployerRef,
    pub(crate) preetabli_id: Option<i64>,
    pub(crate) decl: Declaration,
    pub(crate) digest: Vec<u8>,
    /// Person of each B02 line, then of each entrant.
    pub(crate) persons: Vec<PersonRef>,
    /// The claims its entrants make, in the order of their lines.
    pub(crate) claims: Vec<EntrantClaim>,
}

/// Whose line it is.
#[derive(Clone, Copy)]
pub(crate) enum PersonRef {
    /// A person the declarant employs: on its préétabli, or an entrant it employs already.
    Known(i64),
    /// An entrant nobody confirmed yet: the claim at this index of [`Accepted::claims`].
    Claim(usize),
}

/// What an entrant line claims (docs/declarations.md, "Entrants").
pub(crate) struct EntrantClaim {
    pub(crate) kind: ClaimKind,
    /// The registered person a link names.
    pub(crate) person: Option<i64>,
    pub(crate) cin: String,
    pub(crate) name: String,
    pub(crate) cin_bidx: Vec<u8>,
}

/// The key under which a claimed CIN counts as declared for an employer and period, beside
/// persons' ids ([`crate::pipeline::Declared`]): negative, as no person's id is.
pub(crate) fn claimed_key(cin_bidx: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(cin_bidx) {
        *d = *s;
    }
    -(i64::from_le_bytes(b) & i64::MAX) - 1
}

/// A préétabli's employees by immatriculation: their person and A02 content.
pub(crate) type KnownEmployees = HashMap<u32, (i64, Employee)>;

/// What the registry says, loaded once for a batch of files.
#[derive(Default)]
pub(crate) struct Context {
    pub(crate) employers: HashMap<u32, EmployerRef>,
    pub(crate) preetablis: HashMap<(i64, i64), (PreetabliRow, KnownEmployees)>,
    pub(crate) accepted: HashSet<(i64, i64, i64)>,
    /// The accepted declarations of the batch's employers and periods, by (employer, period,
    /// form): a file equal to one of them (same keyed digest) is a duplicate.
    pub(crate) accepted_rows: HashMap<(i64, i64, i64), DeclarationRow>,
    pub(crate) by_imma: HashMap<u32, i64>,
    pub(crate) by_cin: HashMap<String, i64>,
    /// The blind index of every CIN an entrant declares.
    pub(crate) cin_bidx: HashMap<String, Vec<u8>>,
    /// The registry's name, as a préétabli writes it, of each person whom an entrant names by
    /// both number and CIN (compared with the declared name, never shown).
    pub(crate) registry_names: HashMap<i64, String>,
    pub(crate) employed: HashSet<(i64, i64)>,
    /// Who was already declared: accepted before, or earlier in the import.
    pub(crate) declared: Declared,
}

impl Context {
    /// The accepted declaration this file is, byte for byte, if the declarant may see it.
    /// Found by what the file declares (employer, period, form) and compared by keyed digest,
    /// so no index of digests is needed. This assumes the same bytes read the same way as when
    /// they were accepted (a period's parameters are added to, not edited); a file accepted
    /// before that no longer reads gets its errors instead of "duplicate", and nothing is
    /// written either way.
    pub(crate) fn already_accepted(
        &self,
        who: Declarant,
        p: &ParsedFile,
    ) -> Option<&DeclarationRow> {
        let d = p.result.as_ref().ok()?;
        let employer = self.employers.get(&d.identity.affiliate)?;
        let key = (employer.id, d.identity.period.number(), form_number(d.form));
        self.accepted_rows
            .get(&key)
            .filter(|row| row.digest == p.digest && who.may_see(row.employer_id))
    }
}

impl Contributions {
    /// Loads what the files refer to: employers, préétablis and their employees, the forms already
    /// accepted, the persons named by number or CIN, current employments.
    pub(crate) async fn context(
        &self,
        parsed: &[ParsedFile],
        request_id: &str,
    ) -> Result<Context, AppError> {
        let store = &self.k.store();
        let ring = &self.k.keyring();
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
            // The préétablis' employees, which the lines are checked against: read for the
            // import's own work, recorded as the system's.
            let mut employees = HashMap::new();
            if !pres.is_empty() {
                let event = Audit::counted(Actor::system(), "check_preetablis", pres.len())
                    .fields(&[PersonField::Immatriculation])
                    .detail(format!("period={period} reason=import"));
                let pass = self.k.recorded_read(event, request_id).await?;
                employees = self.employees_of(&pass, &pres).await?;
            }
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
            for (e, _, cin) in store.claimed_cins(&complementing, *period).await? {
                ctx.declared.add(e, *period, [claimed_key(&cin)]);
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
                if let Some(i) = e.immatriculation {
                    let k =
                        ring.blind_index(IMMATRICULATION_INDEX, format!("{i:09}").as_bytes())?;
                    imma_keys.insert(k.to_vec(), i);
                }
                if !e.cin.is_empty() {
                    let k = ring.blind_index(CIN_INDEX, e.cin.as_bytes())?;
                    cin_keys.insert(k.to_vec(), e.cin.clone());
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
        ctx.cin_bidx = cin_keys.into_iter().map(|(k, c)| (c, k)).collect();
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
                .filter_map(|(employer, e)| ctx.by_cin.get(&e.cin).map(|p| (employer, *p)))
                .collect();
            let date = stored_period(*period)?.first_day().to_string();
            for pair in store.employed_among(&pairs, &date).await? {
                ctx.employed.insert(pair);
            }
        }
        self.registry_names(&mut ctx, &decls).await?;
        Ok(ctx)
    }

    /// The registry's names of the persons whom an entrant line names by number and CIN
    /// together, for [`crate::check`] to compare with the name declared. Read for the system's
    /// own work, after the audit event that says so.
    async fn registry_names(
        &self,
        ctx: &mut Context,
        decls: &[&Declaration],
    ) -> Result<(), AppError> {
        let mut candidates: Vec<i64> = decls
            .iter()
            .flat_map(|d| d.entrants.iter())
            .filter_map(|e| {
                let by_number = ctx.by_imma.get(&e.immatriculation?)?;
                (ctx.by_cin.get(&e.cin) == Some(by_number)).then_some(*by_number)
            })
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        if decls.iter().all(|d| d.entrants.is_empty()) {
            return Ok(());
        }
        let reason = "an entrant named by number and CIN: the declared name compared";
        for (pid, name) in self.k.registry_names(&candidates, reason, "import").await? {
            ctx.registry_names.insert(pid, ebds::fit(&name, 60));
        }
        Ok(())
    }

    /// Files naming a decoy (as their employer, or as a person they declare by CIN or number):
    /// nothing of them is taken, the sender is locked and an alert raised.
    pub(crate) async fn refuse_decoys(
        &self,
        who: Declarant,
        ctx: &Context,
        request_id: &str,
    ) -> Result<(), AppError> {
        let decoy = self.k.has_decoys()
            && (ctx
                .employers
                .values()
                .any(|e| self.k.is_decoy_employer(e.id))
                || ctx
                    .by_cin
                    .values()
                    .chain(ctx.by_imma.values())
                    .any(|p| self.k.is_decoy_person(*p)));
        if !decoy {
            return Ok(());
        }
        let sender = self.k.declarant_principal(who).await?;
        self.k
            .decoy_touched(sender.as_ref(), "e-BDS", request_id)
            .await?;
        Err(AppError::Denied(DenyReason::Honeytoken))
    }
}
