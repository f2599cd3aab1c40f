//! What an employment claim declared (the CIN and the name), sealed in
//! `employment_claims.declared` and bound to the claim's row: the one format both the import
//! (entrant lines) and the registry (links, decisions) read and write.

use crate::columns::CLAIM_DECLARED;
use crate::{AppError, Kernel};

impl Kernel {
    /// Seals what claim `id` declared: `CIN \t name`.
    pub fn seal_declared(&self, id: i64, cin: &str, name: &str) -> Result<Vec<u8>, AppError> {
        let plain = format!("{cin}\t{name}");
        self.keyring().encrypt(CLAIM_DECLARED, id, plain.as_bytes())
    }

    /// What a claim declared: (CIN, name). Read only by code that shows it to whoever may see
    /// it (the employer that declared it, an agent deciding it) after auditing the read.
    pub fn open_declared(
        &self,
        pass: &crate::gate::Pass,
        c: &store::ClaimRow,
    ) -> Result<(String, String), AppError> {
        let plain = self.unseal(pass, CLAIM_DECLARED, c.id, &c.declared)?;
        let text = String::from_utf8(plain).map_err(|_| corrupt())?;
        let (cin, name) = text.split_once('\t').ok_or_else(corrupt)?;
        Ok((cin.to_string(), name.to_string()))
    }
}

fn corrupt() -> AppError {
    AppError::Store(store::StoreError::Corrupt("claim"))
}
