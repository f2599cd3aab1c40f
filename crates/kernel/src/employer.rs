//! An employer's data as a declarant reaches it: the employer by its affiliation number, if
//! the declarant may act for it; a decoy employer locks whoever asks.

use crate::capability::Declarant;
use crate::event::Audit;
use crate::principal::Principal;
use crate::{AppError, Kernel, Missing};
use domain::DenyReason;
use store::EmployerRow;

impl Kernel {
    /// The employer with this number, if the declarant may act for it (`content`: read its
    /// files; otherwise its totals). A refusal gets the same answer as an unknown number, and is
    /// audited.
    pub async fn employer_for(
        &self,
        who: Declarant,
        affiliate_number: u32,
        content: bool,
        request_id: &str,
    ) -> Result<EmployerRow, AppError> {
        let found = self
            .inner
            .store
            .employers_where(true, &[i64::from(affiliate_number)])
            .await?
            .pop()
            .filter(|e| {
                if content {
                    who.may_see(e.id)
                } else {
                    who.may_see_totals(e.id)
                }
            });
        match found {
            // A decoy employer's statement, préétabli or declarations: whoever asks is locked.
            Some(e) if self.is_decoy_employer(e.id) => {
                let sender = self.declarant_principal(who).await?;
                self.decoy_touched(sender.as_ref(), "employer data", request_id)
                    .await?;
                Err(AppError::Denied(DenyReason::Honeytoken))
            }
            Some(e) => Ok(e),
            None => {
                Audit::counted(who.actor(), "employer_access", 0)
                    .outcome("deny:not_found_or_not_own")
                    .write(self, request_id)
                    .await?;
                Err(AppError::NotFound(Missing::Employer))
            }
        }
    }

    /// The principal behind a declarant (none for the operator at the command line).
    pub async fn declarant_principal(&self, who: Declarant) -> Result<Option<Principal>, AppError> {
        match who.principal_id() {
            None => Ok(None),
            Some(id) => self.principal(id).await,
        }
    }
}
