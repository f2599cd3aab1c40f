//! The rows an accepted file writes: new persons from its entrant lines, its lines sealed in
//! blocks with what each owes by branch, employments begun and ended, its declaration row, its
//! ledger entry and the batch's allocation to the branches, in one transaction.

use domain::ledger::{self, Account, BranchShares, EntryCode, Journal, LedgerError, Posting};
use domain::{Centimes, Cin, PersonField, Timestamp, compute_line};
use foldhash::{HashSet, HashSetExt};
use std::collections::BTreeMap;
use store::{DeclarationRow, EmploymentRow, ImportBatch, LedgerEntryRow, PersonCipher, PersonRow};

use crate::Contributions;
use crate::codec::{LineToStore, form_number, header_payload, line_payload};
use crate::context::{Accepted, Context, PersonRef};
use crate::model::{DeclarationSummary, summary};
use crate::pipeline::{IdPool, InFlight};
use kernel::columns::{CIN_INDEX, DECLARATION_HEADER, DECLARATION_LINE_BLOCK, person_column};
use kernel::{AppError, Clash};

fn overflow() -> AppError {
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

/// What one declaration's lines owe, branch by branch and in total.
struct Owed {
    branches: BranchShares,
    employer: Centimes,
    employee: Centimes,
}

/// The rows of an import batch being built.
struct Building<'c> {
    ctx: &'c Context,
    now: Timestamp,
    batch: ImportBatch,
    /// The ids of the batch's new persons, in the order of `new_persons`.
    new_ids: Vec<i64>,
    /// (employer, person) employed by an entrant line of this batch.
    employed: HashSet<(i64, i64)>,
    blocks: store::LineBlocks,
    next_line: i64,
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
        let mut b = Building {
            ctx,
            now: self.k.now(),
            batch: ImportBatch::default(),
            new_ids: Vec::with_capacity(new_persons.len()),
            employed: HashSet::new(),
            blocks: store::LineBlocks::default(),
            next_line: first_line,
        };
        // New persons' numbers are allocated when the batch is written (`commit_import`):
        // allocating takes the database's write lock, which the batch before may still hold.
        // Their ids come from the pool (reserved in blocks).
        let first_person = ids.take(store, "person", new_persons.len() as i64).await?;
        for (k, (cin, name)) in new_persons.iter().enumerate() {
            let (row, cin) = self.new_person(first_person + k as i64, cin, name, b.now)?;
            in_flight.by_cin.insert(cin, row.id);
            b.new_ids.push(row.id);
            b.batch.persons.push(row);
        }
        let mut summaries = Vec::with_capacity(accepted.len());
        // What the batch's declarations allocate to the branches, by period.
        let mut allocations: BTreeMap<i64, BranchShares> = BTreeMap::new();
        for (k, (_, a)) in accepted.iter().enumerate() {
            let id = first_decl + k as i64;
            let start = b.next_line;
            let owed = self.lines(&mut b, a, in_flight)?;
            let row = self.declaration(&mut b, id, a, start, &owed)?;
            let pn = row.period;
            allocations.entry(pn).or_default().add_all(&owed.branches)?;
            let total = owed
                .employer
                .checked_add(owed.employee)
                .ok_or_else(overflow)?;
            b.batch.entries.push(LedgerEntryRow {
                id: first_entry + k as i64,
                key: EntryCode::Declaration.key(id),
                code: EntryCode::Declaration,
                employer_id: Some(a.employer.id),
                period: pn,
                at: b.now.0,
                postings: Journal::transfer(Account::Receivable, Account::Declared, total)?,
            });
            let t = a.decl.totals();
            summaries.push(summary(&row, a.employer.affiliate_number)?.with_control_sums(&t));
            b.batch.declarations.push(row);
        }
        let mut batch = b.batch;
        let first_allocation = ids
            .take(store, "ledger_entry", allocations.len() as i64)
            .await?;
        for (k, (pn, shares)) in allocations.iter().enumerate() {
            let id = first_allocation + k as i64;
            let postings = ledger::allocation(shares)?;
            batch
                .entries
                .push(allocation_entry(id, *pn, b.now.0, postings));
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

    /// A person new to the registry, immatriculated from their entrant line: CIN and name
    /// only, as the declaration gives them; the registry completes them later. Returns their
    /// row and their CIN in its canonical form.
    fn new_person(
        &self,
        id: i64,
        cin: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<(PersonRow, String), AppError> {
        let ring = self.k.keyring();
        let cin = Cin::parse(cin)?;
        let (last, first) = name.split_once(' ').unwrap_or((name, ""));
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
        let row = PersonRow {
            id,
            immatriculation_bidx: Vec::new(),
            cin_bidx: ring
                .blind_index(CIN_INDEX, cin.as_str().as_bytes())?
                .to_vec(),
            cipher,
            created_at: now.0,
        };
        Ok((row, cin.as_str().to_string()))
    }

    /// One declaration's lines: what each owes (the dated rates), into the batch's blocks;
    /// an entrant not employed yet is employed from the period, a person who left or died
    /// stops being employed with it.
    fn lines(
        &self,
        b: &mut Building<'_>,
        a: &Accepted,
        in_flight: &mut InFlight,
    ) -> Result<Owed, AppError> {
        let d = &a.decl;
        let period = d.identity.period;
        let mut owed = Owed {
            branches: BranchShares::default(),
            employer: Centimes::ZERO,
            employee: Centimes::ZERO,
        };
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
            for br in &c.branches {
                owed.branches.add(br.branch, br.employer, br.employee)?;
            }
            owed.employer = owed.employer.checked_add(c.employer).ok_or_else(overflow)?;
            owed.employee = owed.employee.checked_add(c.employee).ok_or_else(overflow)?;
            let person_id = match person {
                PersonRef::Known(p) => *p,
                PersonRef::New(i) => *b.new_ids.get(*i).ok_or(AppError::Internal("new person"))?,
            };
            let link = (a.employer.id, person_id);
            if matches!(line, LineToStore::Entrant(_))
                && !b.ctx.employed.contains(&link)
                && b.employed.insert(link)
            {
                in_flight.employed.insert(link);
                b.batch.employments.push(EmploymentRow {
                    id: 0, // numbered once they are counted
                    employer_id: a.employer.id,
                    person_id,
                    start_date: period.first_day().to_string(),
                    end_date: None,
                    created_at: b.now.0,
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
                b.batch.employment_ends.push(store::EmploymentEnd {
                    employer_id: a.employer.id,
                    person_id,
                    end_date: period.last_day().to_string(),
                });
            }
            declared.push(person_id);
            b.blocks.push(person_id, b.next_line, |buf| {
                line_payload(buf, line, c.employer, c.employee)
            });
            b.next_line += 1;
        }
        in_flight
            .declared
            .add(a.employer.id, period.number(), declared);
        Ok(owed)
    }

    /// The declaration's row, its lines sealed in blocks bound to it (into the batch).
    fn declaration(
        &self,
        b: &mut Building<'_>,
        id: i64,
        a: &Accepted,
        start: i64,
        owed: &Owed,
    ) -> Result<DeclarationRow, AppError> {
        let ring = self.k.keyring();
        let d = &a.decl;
        let pn = d.identity.period.number();
        // A person twice in one declaration is a conflict, as the database's key once made
        // it (the checks refuse it before).
        let sealed = b
            .blocks
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
        b.batch.blocks.extend(sealed);
        let t = d.totals();
        Ok(DeclarationRow {
            id,
            employer_id: a.employer.id,
            period: pn,
            form: form_number(d.form),
            status: "accepted".into(),
            digest: a.digest.clone(),
            preetabli_id: a.preetabli_id,
            first_line: start,
            lines: b.next_line - start,
            entrants: d.entrants.len() as i64,
            days: t.days as i64,
            gross: t.gross as i64,
            capped: t.capped as i64,
            employer_share: owed.employer.0,
            employee_share: owed.employee.0,
            header: ring.encrypt(
                DECLARATION_HEADER,
                id,
                &header_payload(d.transfer_id, form_number(d.form), &d.identity, d.layout),
            )?,
            received_at: b.now.0,
            rectifies: None,
            branch_shares: Some(owed.branches.to_bytes()),
        })
    }
}
