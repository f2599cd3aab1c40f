//! Rejections kept for the employer: each rejected upload's errors (the first 1 000), sealed,
//! the latest 20 per employer, read in the caller's language.

use domain::{Lang, PersonField};
use ebds::{EbdsError, Problem};
use serde::Serialize;

use crate::Contributions;
use crate::model::{ErrorView, error_count};
use kernel::columns::{CIN_INDEX, DECLARATION_REJECTION, IMMATRICULATION_INDEX};
use kernel::{AppError, Declarant};

/// The rejections kept for each employer.
pub(crate) const REJECTIONS_KEPT: i64 = 20;
/// The errors kept of each rejected file (its count says how many it had).
pub(crate) const REJECTION_ERRORS_KEPT: usize = 1_000;

/// A file an employer's user sent that was rejected, and why (the latest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionView {
    #[serde(serialize_with = "kernel::id_string::serialize")]
    pub rejection_id: i64,
    pub received_at: i64,
    /// How many errors the file had; `errors` lists them, up to the first 1 000.
    pub error_count: i64,
    pub errors: Vec<ErrorView>,
}

/// An error of a rejected file as it is sealed: its French view, and the rule in the other
/// languages, so that it is read again in whichever the reader asks.
#[derive(Serialize, serde::Deserialize)]
pub(crate) struct SealedError {
    #[serde(flatten)]
    pub(crate) fr: ErrorView,
    pub(crate) ar: String,
    pub(crate) en: String,
}

impl SealedError {
    pub(crate) fn new(e: &EbdsError) -> SealedError {
        SealedError {
            fr: ErrorView::new(e, Lang::Fr),
            ar: e.problem.describe(Lang::Ar),
            en: e.problem.describe(Lang::En),
        }
    }

    pub(crate) fn view(self, lang: Lang) -> ErrorView {
        let mut v = self.fr;
        match lang {
            Lang::Ar => v.message = self.ar,
            Lang::En => v.message = self.en,
            _ => {}
        }
        v
    }
}

impl Contributions {
    /// Keeps a rejected file's errors, sealed, for the employer whose user sent it: the
    /// [`REJECTIONS_KEPT`] latest of each employer. The operator's batch imports print theirs
    /// (and agents send no files). Keeping them is not part of the answer: if it fails, the
    /// sender still gets every error, and the failure is logged.
    pub(crate) async fn keep_rejection(&self, who: Declarant, errors: &[EbdsError]) {
        let Some(employer_id) = who.employer() else {
            return;
        };
        if let Err(e) = self.try_keep_rejection(employer_id, errors).await {
            tracing::warn!(error = %e, "a rejection was not kept");
        }
    }

    pub(crate) async fn try_keep_rejection(
        &self,
        employer_id: i64,
        errors: &[EbdsError],
    ) -> Result<(), AppError> {
        let sealed: Vec<SealedError> = errors
            .iter()
            .filter(|e| !matches!(e.problem, Problem::TooManyErrors(_)))
            .take(REJECTION_ERRORS_KEPT)
            .map(SealedError::new)
            .collect();
        let plain = serde_json::to_vec(&sealed).map_err(|_| AppError::Internal("rejection"))?;
        let persons = self.named_in(errors).await?;
        let id = self.k.store().allocate("declaration_rejection", 1).await?;
        let row = store::RejectionRow {
            id,
            employer_id,
            received_at: self.k.now().0,
            error_count: error_count(errors),
            errors: self
                .k
                .keyring()
                .encrypt(DECLARATION_REJECTION, id, &plain)?,
            persons: Some(store::persons_bytes(&persons)),
        };
        self.k
            .store()
            .insert_rejection(&row, REJECTIONS_KEPT)
            .await?;
        Ok(())
    }

    /// The registered persons whose number or CIN a rejection's errors quote (the values as
    /// found in the file, and the préétabli employees it left out), looked up by blind index:
    /// nothing is decrypted, and the sender is told nothing of them.
    async fn named_in(&self, errors: &[EbdsError]) -> Result<Vec<i64>, AppError> {
        let ring = self.k.keyring();
        let (mut numbers, mut cins) = (Vec::new(), Vec::new());
        let quoted = errors.iter().flat_map(|e| {
            let missing = match &e.problem {
                Problem::MissingEmployee(n) => Some(n.as_str()),
                _ => None,
            };
            std::iter::once(e.found.as_str()).chain(missing)
        });
        for found in quoted {
            let found = found.trim();
            if found.len() == 9 && found.bytes().all(|b| b.is_ascii_digit()) {
                numbers.push(
                    ring.blind_index(IMMATRICULATION_INDEX, found.as_bytes())?
                        .to_vec(),
                );
            } else if let Ok(cin) = domain::Cin::parse(found) {
                cins.push(
                    ring.blind_index(CIN_INDEX, cin.as_str().as_bytes())?
                        .to_vec(),
                );
            }
        }
        let store = self.k.store();
        let mut ids: Vec<i64> = store
            .person_ids_by_index(store::BlindColumn::Immatriculation, &numbers)
            .await?
            .into_iter()
            .chain(
                store
                    .person_ids_by_index(store::BlindColumn::Cin, &cins)
                    .await?,
            )
            .map(|(_, id)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The files the employer's users sent that were rejected, the latest first, each with its
    /// errors in `lang`: for the employer's own users (the errors quote names and numbers), and
    /// the operator.
    pub async fn declaration_rejections(
        &self,
        who: Declarant,
        affiliate_number: u32,
        lang: Lang,
        request_id: &str,
    ) -> Result<Vec<RejectionView>, AppError> {
        let e = self
            .k
            .employer_for(who, affiliate_number, true, request_id)
            .await?;
        let rows = self.k.store().employer_rejections(e.id).await?;
        // The registered persons their errors quote, each read through the gate first.
        let mut persons = Vec::new();
        for r in &rows {
            if let Some(b) = &r.persons {
                persons.extend(store::persons_of_bytes(b)?);
            }
        }
        persons.sort_unstable();
        persons.dedup();
        let detail = format!("employer={} rejections={}", e.id, rows.len());
        let pass = self
            .admit_persons(
                who,
                &persons,
                "read_declaration_rejections",
                &[
                    PersonField::Immatriculation,
                    PersonField::Cin,
                    PersonField::LastName,
                ],
                &detail,
                request_id,
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let plain = self
                    .k
                    .unseal(&pass, DECLARATION_REJECTION, r.id, &r.errors)?;
                let sealed: Vec<SealedError> = serde_json::from_slice(&plain)
                    .map_err(|_| store::StoreError::Corrupt("rejection"))?;
                Ok(RejectionView {
                    rejection_id: r.id,
                    received_at: r.received_at,
                    error_count: r.error_count,
                    errors: sealed.into_iter().map(|e| e.view(lang)).collect(),
                })
            })
            .collect()
    }
}
