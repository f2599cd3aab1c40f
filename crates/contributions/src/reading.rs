//! Declarations read back: receipts with their control sums, lines, the file byte for byte;
//! only to the declarant that may see them, refusals audited.

use domain::{Centimes, PersonField, Purpose};

/// What a declaration file says of the persons it names: their numbers, names and (entrants)
/// CINs, with their salaries.
const DECLARED_FIELDS: [PersonField; 4] = [
    PersonField::Immatriculation,
    PersonField::Cin,
    PersonField::LastName,
    PersonField::FirstName,
];
use ebds::{Declaration, Form};
use store::DeclarationRow;

use crate::Contributions;
use crate::career::{CareerLine, career_line};
use crate::codec::{StoredLine, parse_header, parse_line};
use crate::model::{DeclarationSummary, rectified_by, summary};
use kernel::columns::{DECLARATION_HEADER, DECLARATION_LINE_BLOCK};
use kernel::gate::Pass;
use kernel::{AppError, Audit, Declarant, Missing};

impl Contributions {
    /// A declaration (accepted, or rectified: the history stays readable) whose content the
    /// declarant may read. A refusal gets the same
    /// answer as an unknown id, and is audited.
    pub(crate) async fn declaration_row(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<DeclarationRow, AppError> {
        let found = self
            .k
            .store()
            .declaration(id)
            .await?
            .filter(|d| who.may_see(d.employer_id));
        match found {
            Some(d) => Ok(d),
            None => {
                Audit::counted(who.actor(), "declaration_access", 0)
                    .outcome("deny:not_found_or_not_own")
                    .detail(format!("declaration={id}"))
                    .write(&self.k, request_id)
                    .await?;
                Err(AppError::NotFound(Missing::Declaration))
            }
        }
    }

    /// A read of an employer's data that names `persons`, through the gate
    /// ([`kernel::Kernel::admit_named`], purpose payroll): decoys, the reader's budget, one
    /// audit event a person, before the caller decrypts anything.
    pub(crate) async fn admit_persons(
        &self,
        who: Declarant,
        persons: &[i64],
        action: &'static str,
        fields: &[PersonField],
        detail: &str,
        request_id: &str,
    ) -> Result<Pass, AppError> {
        let reader = self.k.declarant_principal(who).await?;
        self.k
            .admit_named(
                who.actor(),
                reader.as_ref(),
                persons,
                action,
                Purpose::Payroll,
                fields,
                detail,
                request_id,
            )
            .await
    }

    /// The persons a declaration names (its blocks' directories, nothing decrypted), admitted
    /// through the gate for `action`.
    async fn admit_declared(
        &self,
        who: Declarant,
        d: &DeclarationRow,
        action: &'static str,
        fields: &[PersonField],
        request_id: &str,
    ) -> Result<Pass, AppError> {
        let persons = self.k.store().declaration_persons(d.id).await?;
        let detail = format!("declaration={}", d.id);
        self.admit_persons(who, &persons, action, fields, &detail, request_id)
            .await
    }

    /// A declaration's lines, decrypted, in the order of its file.
    pub(crate) async fn stored_lines(
        &self,
        pass: &Pass,
        d: &DeclarationRow,
    ) -> Result<Vec<(StoredLine, Centimes, Centimes)>, AppError> {
        let mut out = Vec::with_capacity(d.lines as usize);
        for b in self.k.store().declaration_blocks(d.id).await? {
            for (_, line, payload) in self.open_block(pass, &b)?.lines() {
                out.push((line, parse_line(payload)?));
            }
        }
        out.sort_unstable_by_key(|(line, _)| *line);
        // Every line of the declaration, each once: no block missing, none twice.
        if !out
            .iter()
            .map(|(line, _)| *line)
            .eq(d.first_line..d.first_line + d.lines)
        {
            return Err(store::StoreError::Corrupt("declaration lines").into());
        }
        Ok(out.into_iter().map(|(_, l)| l).collect())
    }

    /// Decrypts a block of declaration lines, and checks its row against what it holds.
    pub(crate) fn open_block(
        &self,
        pass: &Pass,
        b: &store::LineBlock,
    ) -> Result<store::OpenedBlock, AppError> {
        let opened = store::blocks::open_block(&b.data, |context, sealed| {
            self.k.unseal_bound(
                pass,
                DECLARATION_LINE_BLOCK,
                b.declaration_id,
                context,
                sealed,
            )
        })?;
        let last = opened.lines().last().map(|(person, _, _)| person);
        if opened.lines().count() as i64 != b.lines || last != Some(b.last_person) {
            return Err(store::StoreError::Corrupt("declaration line block").into());
        }
        Ok(opened)
    }

    /// The declaration as the e-BDS file that was accepted, byte for byte.
    pub async fn declaration_file(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<Vec<u8>, AppError> {
        let d = self.declaration_row(who, id, request_id).await?;
        // Every person it names is audited before anything is decrypted.
        let pass = self
            .admit_declared(who, &d, "export_declaration", &DECLARED_FIELDS, request_id)
            .await?;
        ebds::declaration_bytes(&self.stored_declaration(&pass, &d).await?, None)
            .map_err(|_| AppError::Internal("declaration not writable"))
    }

    /// The receipt of one of the employer's own declarations: its totals and the control sums
    /// of the file accepted, computed again from the lines it holds (so only those who may
    /// download the file get it).
    pub async fn declaration_receipt(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<DeclarationSummary, AppError> {
        let d = self.declaration_row(who, id, request_id).await?;
        // The control sums add up the numbers of everyone it names.
        let pass = self
            .admit_declared(
                who,
                &d,
                "read_declaration_receipt",
                &[PersonField::Immatriculation],
                request_id,
            )
            .await?;
        let decl = self.stored_declaration(&pass, &d).await?;
        let affiliate = self.affiliate_of(d.employer_id).await?;
        let mut s = summary(&d, affiliate)?.with_control_sums(&decl.totals());
        let rows = self.k.store().employer_declarations(d.employer_id).await?;
        s.rectified_by = rectified_by(&rows).get(&d.id).map(|r| r.to_string());
        Ok(s)
    }

    /// A declaration as it was accepted, from its encrypted header and lines. The caller's audit
    /// event is written before.
    pub(crate) async fn stored_declaration(
        &self,
        pass: &Pass,
        d: &DeclarationRow,
    ) -> Result<Declaration, AppError> {
        let (transfer_id, form, identity, layout) =
            parse_header(&self.k.unseal(pass, DECLARATION_HEADER, d.id, &d.header)?)?;
        let (mut lines, mut entrants) = (Vec::new(), Vec::new());
        for (l, _, _) in self.stored_lines(pass, d).await? {
            match l {
                StoredLine::Known(l) => lines.push(l),
                StoredLine::Entrant(e) => entrants.push(e),
            }
        }
        Ok(Declaration {
            form: if form == 0 {
                Form::Main
            } else {
                Form::Complementary(form as u8)
            },
            transfer_id,
            identity,
            lines,
            entrants,
            layout,
        })
    }

    /// An employer's declarations (receipts), oldest first.
    pub async fn declarations_of(
        &self,
        who: Declarant,
        affiliate_number: u32,
        request_id: &str,
    ) -> Result<Vec<DeclarationSummary>, AppError> {
        let e = self
            .k
            .employer_for(who, affiliate_number, false, request_id)
            .await?;
        let rows = self.k.store().employer_declarations(e.id).await?;
        let replaced = rectified_by(&rows);
        rows.iter()
            .map(|d| {
                let mut s = summary(d, e.affiliate_number)?;
                s.rectified_by = replaced.get(&d.id).map(|r| r.to_string());
                Ok(s)
            })
            .collect()
    }

    /// The lines of one of the employer's own declarations: only what it declared itself.
    pub async fn declaration_lines(
        &self,
        who: Declarant,
        id: i64,
        request_id: &str,
    ) -> Result<Vec<CareerLine>, AppError> {
        let d = self.declaration_row(who, id, request_id).await?;
        let affiliate = self.affiliate_of(d.employer_id).await?;
        let pass = self
            .admit_declared(
                who,
                &d,
                "read_declaration_lines",
                &[PersonField::Immatriculation],
                request_id,
            )
            .await?;
        let lines = self.stored_lines(&pass, &d).await?;
        lines
            .into_iter()
            .map(|(s, er, ee)| career_line(d.period, &s, er, ee, affiliate, d.form))
            .collect::<Result<_, _>>()
    }
}
