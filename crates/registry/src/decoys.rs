//! Seeding honeytokens (docs/audit.md): decoy employers and persons registered through the
//! registry like anyone, their pseudonyms recorded by the kernel in the key directory.

use crate::Registry;
use crate::input::{EmployerCreated, NewEmployer, NewPerson, PersonCreated};
use kernel::{AppError, Registrar};

impl Registry {
    /// Registers decoy employers and persons (through the registry, like anyone) and records
    /// their pseudonyms in the key directory. Returns what was registered (the command line
    /// prints only how many: the list itself names no one).
    pub async fn seed_honeytokens(
        &self,
        employers: &[NewEmployer],
        persons: &[NewPerson],
    ) -> Result<(Vec<EmployerCreated>, Vec<PersonCreated>), AppError> {
        let reg = Registrar::operator();
        let e = self.affiliate_employers(reg, employers, "load").await?;
        let p = self.immatriculate(reg, persons, "load").await?;
        let employer_ids: Vec<i64> = e.iter().map(|c| c.employer_id).collect();
        let person_ids: Vec<i64> = p.iter().map(|c| c.person_id).collect();
        self.k.record_decoys(&employer_ids, &person_ids)?;
        Ok((e, p))
    }
}
