//! Renumbering persons (migration 0025): a database made before person row ids were keyed
//! numbers its persons by serial (the immatriculation number minus 100 000 000), which a dump
//! turns back into the numbers. Each such person moves to its keyed id
//! ([`vault::Keyring::person_id`] of the same serial): its row, with every ciphertext sealed
//! again for the new id (the row id is bound into each), and every reference to it
//! ([`store::PERSON_REFERENCES`]). Pseudonyms are of the serial, so the audit log, budgets and
//! the decoy list stay as they are. What embeds person ids inside values (préétablis, blocks
//! of declaration lines, kept rejections) is the contributions service's to renumber; the
//! application runs both, then [`Kernel::end_serial_person_ids`]. Serial ids are below
//! [`store::PERSON_ID_BASE`] and keyed ones above, so each step finds what is left by the id
//! alone: cut short, it goes on where it stopped.

use crate::columns::person_column;
use crate::event::Audit;
use crate::{Actor, AppError, Kernel};
use domain::PersonField;
use store::StoredPerson;
use vault::Keyring;

/// Persons moved per transaction.
const BATCH: i64 = 500;

/// How a renumbering is going, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenumberProgress {
    /// A step begins: `total` rows of `what` to renumber.
    Begin { what: &'static str, total: u64 },
    /// That many more done.
    Done(u64),
}

impl Kernel {
    /// Whether this database still numbers persons by serial (new ones too, until
    /// renumbered): migration 0025 found persons made before ids were keyed.
    pub async fn person_ids_serial(&self) -> Result<bool, AppError> {
        Ok(self.inner.store.person_ids_serial().await?)
    }

    /// Moves every person with a serial id to their keyed id, [`BATCH`] a transaction. The
    /// operator's act, audited once before anything is decrypted (as a key rotation is: what
    /// it opens it seals again at once, and shows no one). Returns how many moved.
    pub async fn renumber_persons(
        &self,
        progress: &(dyn Fn(RenumberProgress) + Sync),
        request_id: &str,
    ) -> Result<u64, AppError> {
        let store = &self.inner.store;
        let total = store.count_serial_persons().await? as u64;
        progress(RenumberProgress::Begin {
            what: "persons",
            total,
        });
        if total == 0 {
            return Ok(0);
        }
        Audit::counted(Actor::operator(), "renumber_persons", total as usize)
            .detail(format!("persons={total}"))
            .write(self, request_id)
            .await?;
        let mut moved = 0u64;
        loop {
            let batch = store.serial_persons(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            let ring = self.inner.keys.ring();
            let moves = tokio::task::spawn_blocking(move || rebind_persons(&ring, batch))
                .await
                .map_err(|_| AppError::Internal("renumbering task"))??;
            store.move_persons(&moves).await?;
            moved += moves.len() as u64;
            progress(RenumberProgress::Done(moves.len() as u64));
        }
        Ok(moved)
    }

    /// Ends a renumbering: new persons get keyed ids from now on.
    pub async fn end_serial_person_ids(&self, request_id: &str) -> Result<(), AppError> {
        if self.inner.store.count_serial_persons().await? != 0 {
            return Err(AppError::Internal("persons are left to renumber"));
        }
        self.inner.store.end_serial_person_ids().await?;
        Audit::counted(Actor::operator(), "person_ids_keyed", 0)
            .write(self, request_id)
            .await
    }
}

/// Each person's row under its keyed id, every ciphertext sealed again for it.
fn rebind_persons(
    ring: &Keyring,
    persons: Vec<StoredPerson>,
) -> Result<Vec<(i64, StoredPerson)>, AppError> {
    persons
        .into_iter()
        .map(|mut p| {
            let old = p.row.id;
            let new = ring.person_id(old)?;
            for f in PersonField::ALL {
                if let Some(blob) = &p.row.cipher.0[f.index()] {
                    p.row.cipher.0[f.index()] =
                        Some(ring.rebind(person_column(f), old, new, blob)?);
                }
            }
            p.row.id = new;
            Ok((old, p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The store finds serials by the bound the keyring keys ids above (two crates that do
    /// not depend on each other; the migration 0025 writes it as 4503599627370496).
    #[test]
    fn the_store_and_the_keyring_agree_on_where_keyed_ids_begin() {
        assert_eq!(store::PERSON_ID_BASE, vault::PERSON_ID_BASE);
        assert_eq!(store::PERSON_ID_BASE, 4_503_599_627_370_496);
    }
}
