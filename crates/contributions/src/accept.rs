use domain::ledger::{self, Account, BranchShares, EntryCode, Journal, LedgerError, Posting};
use domain::{Centimes, Cin, PersonField, compute_line};
// The import's sets and maps hash with foldhash: SipHash was 3 % of an import's CPU. Its seed
// is random per process, so colliding keys cannot be chosen in advance by whoever writes a file.
use foldhash::{HashSet, HashSetExt};
use std::collections::BTreeMap;
use store::{DeclarationRow, EmploymentRow, ImportBatch, LedgerEntryRow, PersonCipher, PersonRow};

use crate::Contributions;
use crate::codec::{LineToStore, form_number, header_payload, line_payload};
use crate::context::{Accepted, Context, PersonRef};
use crate::model::{DeclarationSummary, summary};
use crate::pipeline::{IdPool, InFlight};
use kernel::columns::*;
use kernel::{AppError, Clash};

pub(crate) fn overflow() -> AppError {
    LedgerError::Overflow.into()
}

/// An allocation's ledger entry: the whole fund's (no employer), keyed by its own id.
pub(crate) fn allocation_entry(
    id: i64,
    period: i64,
    at: i64,
    postings: Vec<Posting>,
) -> LedgerEntryRow {
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

impl Contributions {
    /// Encrypts and writes the accepted declarations, their lines, their ledger entries and
    /// the persons and employments their entrants create, in one transaction.
    pub(crate) async fn build_accepted(
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
        let store = &self.k.store();
        let ring = &self.k.keyring();
        let now = self.k.now();
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
                let c = compute_line(self.k.params(), period, gross)?;
                for b in &c.branches {
                    branches.add(b.branch, b.employer, b.employee)?;
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
            allocations.entry(pn).or_default().add_all(&branches)?;
            let total = er_total.checked_add(ee_total).ok_or_else(overflow)?;
            batch.entries.push(LedgerEntryRow {
                id: first_entry + k as i64,
                key: EntryCode::Declaration.key(id),
                code: EntryCode::Declaration,
                employer_id: Some(a.employer.id),
                period: pn,
                at: now.0,
                postings: Journal::transfer(Account::Receivable, Account::Declared, total)?,
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
                ledger::allocation(shares)?,
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
}
