//! Rectifications: a corrected file replaces an accepted declaration (same employer, period
//! and form); the original is kept, marked rectified, and its ledger entry and allocation taken
//! back in the same transaction.

use domain::ledger::{self, EntryCode, Posting};
use domain::{DenyReason, Lang};
use ebds::{Declaration, EbdsError, Form, Problem, RecordType};
use foldhash::HashSet;
use store::{DeclarationRow, ImportBatch, LedgerEntryRow};

use crate::Contributions;
use crate::accept::allocation_entry;
use crate::check::err;
use crate::codec::{form_number, form_of};
use crate::context::{Accepted, Context, claimed_key};
use crate::model::{ImportFile, ImportOutcome, duplicate, error_count, rejected};
use crate::pipeline::{IdPool, InFlight, PreparedImport};
use kernel::{AppError, Audit, Clash, Declarant};

impl Contributions {
    /// Replaces an accepted declaration, whole, with a corrected file for the same employer,
    /// period and form (a main declaration by a `B` file, complementary declaration `n` by an
    /// `En` file). The file passes every rule an import does, as if the declaration it replaces
    /// had not been sent (persons declared in the period's other declarations still count).
    /// On acceptance, in one transaction: the new declaration and its lines are written, naming
    /// what they rectify; the original becomes `rectified` and keeps every byte and line (it can
    /// still be read and written back); the ledger reverses the original's entry (`reversal`)
    /// and posts the new one, so the period owes the corrected amount, and the branches give
    /// back what the original's transaction allocated to them ([`taking_back`]) and are
    /// allocated the new one's shares. Careers show the
    /// rectified lines. The same file as the original changes nothing (a duplicate); a
    /// declaration already rectified is a conflict (rectify its rectification).
    pub async fn rectify_declaration(
        &self,
        who: Declarant,
        declaration_id: i64,
        file: ImportFile,
        lang: Lang,
        request_id: &str,
    ) -> Result<ImportOutcome, AppError> {
        let audit = |outcome: &str| {
            Audit::counted(who.actor(), "rectify_declaration", 0)
                .outcome(outcome)
                .detail(format!("declaration={declaration_id}"))
        };
        if who.is_agent() {
            audit("deny:role").write(&self.k, request_id).await?;
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        }
        let target = self
            .declaration_row(who, declaration_id, request_id)
            .await?;
        let parsed = self
            .parse_files(vec![file])
            .await?
            .pop()
            .ok_or(AppError::Internal("parse"))?;
        let mut ctx = self
            .context(std::slice::from_ref(&parsed), request_id)
            .await?;
        self.refuse_decoys(who, &ctx, request_id).await?;
        // A file already accepted changes nothing, also when it is this very rectification
        // sent again (a retry after a lost answer).
        if let Some(d) = ctx.already_accepted(who, &parsed) {
            audit("duplicate").write(&self.k, request_id).await?;
            let affiliate = self.affiliate_of(d.employer_id).await?;
            return Ok(ImportOutcome::Duplicate(duplicate(d, affiliate, &parsed)?));
        }
        if target.status != "accepted" {
            audit("conflict:rectified")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Conflict(Clash::Rectified));
        }
        let decl = match parsed.result {
            Ok(d) => d,
            Err(errors) => {
                return self
                    .rectification_rejected(who, &target, &errors, lang, request_id)
                    .await;
            }
        };
        if let Some(errors) = self.rectifies_another(&ctx, &decl, &target).await? {
            return self
                .rectification_rejected(who, &target, &errors, lang, request_id)
                .await;
        }
        self.as_if_unsent(&mut ctx, &target).await?;
        let checks = match self.check(who, &decl, &mut ctx) {
            Ok(x) => x,
            Err(errors) => {
                return self
                    .rectification_rejected(who, &target, &errors, lang, request_id)
                    .await;
            }
        };
        let accepted = vec![(
            0,
            Accepted {
                employer: checks.employer,
                preetabli_id: checks.preetabli_id,
                decl,
                digest: parsed.digest,
                persons: checks.persons,
                claims: checks.claims,
            },
        )];
        let mut ids = IdPool::exact();
        let mut in_flight = InFlight::default();
        let (mut batch, summaries) = self
            .build_accepted(&accepted, &mut ids, &mut in_flight)
            .await?;
        let new = batch
            .declarations
            .first_mut()
            .ok_or(AppError::Internal("rectification"))?;
        new.rectifies = Some(target.id);
        let new_id = new.id;
        batch.rectified = Some(target.id);
        self.take_back(&mut batch, &mut ids, &target).await?;
        let outcomes = summaries
            .into_iter()
            .map(|mut s| {
                s.rectifies = Some(target.id.to_string());
                Some(ImportOutcome::Accepted(s))
            })
            .collect();
        let prepared = PreparedImport {
            outcomes,
            rejections: Vec::new(),
            batch,
            in_flight,
        };
        let detail = format!(" declaration={} rectification={new_id}", target.id);
        self.commit(who, prepared, "rectify_declaration", detail, request_id)
            .await?
            .pop()
            .ok_or(AppError::Internal("rectification outcome"))
    }

    /// The error of a file that names another employer, period or form than the declaration
    /// it would rectify (the first of the three that differs), if it does.
    async fn rectifies_another(
        &self,
        ctx: &Context,
        decl: &Declaration,
        target: &DeclarationRow,
    ) -> Result<Option<Vec<EbdsError>>, AppError> {
        let family = match decl.form {
            Form::Main => ebds::Family::B,
            Form::Complementary(_) => ebds::Family::E,
        };
        let differs = if ctx
            .employers
            .get(&decl.identity.affiliate)
            .is_none_or(|e| e.id != target.employer_id)
        {
            Some((
                2,
                1,
                "N_Num_Affilie",
                format!("{:07}", decl.identity.affiliate),
            ))
        } else if decl.identity.period.number() != target.period {
            Some((2, 1, "L_Periode", decl.identity.period.number().to_string()))
        } else if form_number(decl.form) != target.form {
            Some((1, 0, "L_Cat", decl.form.category()))
        } else {
            None
        };
        let Some((line, record, field, found)) = differs else {
            return Ok(None);
        };
        let affiliate = self.affiliate_of(target.employer_id).await?;
        let expected = format!(
            "{affiliate:07} {} {}",
            target.period,
            form_of(target.form).category()
        );
        Ok(Some(vec![err(
            line,
            Some(RecordType::new(family, record)),
            field,
            found,
            Problem::RectifiesAnother(expected),
        )]))
    }

    /// The context a rectification is checked in.
    async fn as_if_unsent(
        &self,
        ctx: &mut Context,
        target: &DeclarationRow,
    ) -> Result<(), AppError> {
        let store = self.k.store();
        // Checked as if the declaration it replaces had not been sent: its form is free again
        // and its persons may be declared; the period's other declarations still count.
        ctx.accepted
            .remove(&(target.employer_id, target.period, target.form));
        let mut replaced: HashSet<i64> = store
            .declaration_persons(target.id)
            .await?
            .into_iter()
            .collect();
        for (e, p) in store
            .declared_persons(&[target.employer_id], target.period)
            .await?
        {
            ctx.declared.add(e, target.period, [p]);
        }
        for (e, declaration, cin) in store
            .claimed_cins(&[target.employer_id], target.period)
            .await?
        {
            let key = claimed_key(&cin);
            ctx.declared.add(e, target.period, [key]);
            if declaration == target.id {
                replaced.insert(key);
            }
        }
        ctx.declared
            .forget(target.employer_id, target.period, &replaced);
        Ok(())
    }

    /// What the batch posts to take the rectified declaration back: its entry reversed, and
    /// the branch shares its transaction allocated.
    async fn take_back(
        &self,
        batch: &mut ImportBatch,
        ids: &mut IdPool,
        target: &DeclarationRow,
    ) -> Result<(), AppError> {
        let store = self.k.store();
        let reversed = store
            .entry_postings(&EntryCode::Declaration.key(target.id))
            .await?
            .into_iter()
            .map(Posting::reversed)
            .collect::<Result<Vec<_>, _>>()?;
        let deallocation = ledger::taking_back(&reversed, target.branch_shares.as_deref())?;
        let reversal = ids.take(store, "ledger_entry", 1).await?;
        batch.entries.push(LedgerEntryRow {
            id: reversal,
            key: EntryCode::Reversal.key(target.id),
            code: EntryCode::Reversal,
            employer_id: Some(target.employer_id),
            period: target.period,
            at: self.k.now().0,
            postings: reversed,
        });
        if let Some(postings) = deallocation {
            let id = ids.take(store, "ledger_entry", 1).await?;
            batch.entries.push(allocation_entry(
                id,
                target.period,
                self.k.now().0,
                postings,
            ));
        }
        Ok(())
    }

    /// An employer's affiliate number (0 if it is unknown).
    pub(crate) async fn affiliate_of(&self, employer_id: i64) -> Result<i64, AppError> {
        Ok(self
            .k
            .store()
            .employers_where(false, &[employer_id])
            .await?
            .first()
            .map_or(0, |e| e.affiliate_number))
    }

    /// A rejected rectification: audited, its errors kept for the employer, nothing else
    /// written.
    pub(crate) async fn rectification_rejected(
        &self,
        who: Declarant,
        target: &DeclarationRow,
        errors: &[EbdsError],
        lang: Lang,
        request_id: &str,
    ) -> Result<ImportOutcome, AppError> {
        Audit::counted(who.actor(), "rectify_declaration", 0)
            .outcome("rejected")
            .detail(format!(
                "declaration={} errors={}",
                target.id,
                error_count(errors)
            ))
            .write(&self.k, request_id)
            .await?;
        self.keep_rejection(who, errors).await;
        Ok(rejected(errors, lang))
    }
}
