//! The rows an accepted file writes: its lines sealed in blocks with what each owes by branch,
//! the claims of its entrants, employments ended, its declaration row, its ledger entry and the
//! batch's allocation to the branches, in one transaction.

use domain::ledger::{self, Account, BranchShares, EntryCode, Journal, LedgerError, Posting};
use domain::{Centimes, Timestamp, compute_line};
use std::collections::BTreeMap;
use store::{ClaimRow, ClaimState, DeclarationRow, ImportBatch, LedgerEntryRow};

use crate::Contributions;
use crate::codec::{LineToStore, form_number, header_payload, line_payload};
use crate::context::{Accepted, EntrantClaim, PersonRef, claimed_key};
use crate::model::{DeclarationSummary, summary};
use crate::pipeline::{IdPool, InFlight};
use kernel::columns::{DECLARATION_HEADER, DECLARATION_LINE_BLOCK};
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
struct Building {
    now: Timestamp,
    batch: ImportBatch,
    blocks: store::LineBlocks,
    next_line: i64,
    next_claim: i64,
}

impl Contributions {
    /// Encrypts the accepted declarations, their lines, their entrants' claims and their
    /// ledger entries, for one transaction.
    pub(crate) async fn build_accepted(
        &self,
        accepted: &[(usize, Accepted)],
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
        let n_claims: i64 = accepted.iter().map(|(_, a)| a.claims.len() as i64).sum();
        let first_claim = ids.take(store, "employment_claim", n_claims).await?;
        let mut b = Building {
            now: self.k.now(),
            batch: ImportBatch::default(),
            blocks: store::LineBlocks::default(),
            next_line: first_line,
            next_claim: first_claim,
        };
        let mut summaries = Vec::with_capacity(accepted.len());
        // What the batch's declarations allocate to the branches, by period.
        let mut allocations: BTreeMap<i64, BranchShares> = BTreeMap::new();
        for (k, (_, a)) in accepted.iter().enumerate() {
            let id = first_decl + k as i64;
            let start = b.next_line;
            let owed = self.lines(&mut b, a, id, in_flight)?;
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
        Ok((batch, summaries))
    }

    /// One declaration's lines: what each owes (the dated rates), into the batch's blocks; an
    /// entrant nobody confirmed yet is a claim, whose line is kept under the claim; a person
    /// who left or died stops being employed with the period.
    fn lines(
        &self,
        b: &mut Building,
        a: &Accepted,
        declaration_id: i64,
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
                PersonRef::Claim(i) => {
                    let c = a.claims.get(*i).ok_or(AppError::Internal("claim"))?;
                    let row = self.claim_row(b, a.employer.id, declaration_id, period, c)?;
                    declared.push(claimed_key(&c.cin_bidx));
                    let subject = row.line_subject();
                    b.batch.claims.push(row);
                    subject
                }
            };
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
            if person_id > 0 {
                declared.push(person_id);
            }
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

    /// The claim an entrant line makes: the CIN and name as declared, sealed and bound to it.
    fn claim_row(
        &self,
        b: &mut Building,
        employer_id: i64,
        declaration_id: i64,
        period: domain::Period,
        c: &EntrantClaim,
    ) -> Result<ClaimRow, AppError> {
        let id = b.next_claim;
        b.next_claim += 1;
        Ok(ClaimRow {
            id,
            employer_id,
            kind: c.kind,
            state: ClaimState::Pending,
            period: period.number(),
            start_date: period.first_day().to_string(),
            declaration_id: Some(declaration_id),
            person_id: c.person,
            cin_bidx: c.cin_bidx.clone(),
            declared: self.k.seal_declared(id, &c.cin, &c.name)?,
            created_at: b.now.0,
            decided_at: None,
            decided_by: None,
        })
    }

    /// The declaration's row, its lines sealed in blocks bound to it (into the batch).
    fn declaration(
        &self,
        b: &mut Building,
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
