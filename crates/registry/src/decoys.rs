//! Seeding honeytokens (docs/audit.md): decoy employers and persons registered through the
//! registry like anyone, their pseudonyms recorded by the kernel in the key directory.

use crate::Registry;
use crate::input::{EmployerCreated, NewEmployer, NewPerson, PersonCreated};
use domain::{Immatriculation, PersonField};
use kernel::columns::CIN_INDEX;
use kernel::{AppError, Registrar};
use store::{BlindColumn, PersonRow};

/// Names a decoy in a number slot gets (common ones: a decoy looks like anyone).
const LAST: [(&str, &str); 8] = [
    ("BENNANI", "بناني"),
    ("ALAOUI", "العلوي"),
    ("TAZI", "التازي"),
    ("FASSI", "الفاسي"),
    ("IDRISSI", "الإدريسي"),
    ("BERRADA", "برادة"),
    ("CHRAIBI", "الشرايبي"),
    ("LAHLOU", "لحلو"),
];
const FIRST: [(&str, &str); 8] = [
    ("AMINE", "أمين"),
    ("SALMA", "سلمى"),
    ("YOUSSEF", "يوسف"),
    ("NADIA", "نادية"),
    ("OMAR", "عمر"),
    ("KENZA", "كنزة"),
    ("HAMZA", "حمزة"),
    ("IMANE", "إيمان"),
];

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

impl Registry {
    /// `n` immatriculation numbers for persons, drawn from the counter, and apart the decoy
    /// slots among those drawn ([`kernel::Kernel::decoy_slot`]), which go to decoys.
    pub(crate) async fn numbers(&self, n: usize) -> Result<(Vec<u32>, Vec<u32>), AppError> {
        let (mut real, mut decoys) = (Vec::with_capacity(n), Vec::new());
        while real.len() < n {
            let want = (n - real.len()) as i64;
            let first = self.k.store().allocate("immatriculation", want).await?;
            for k in 0..want {
                let number = u32::try_from(first + k).unwrap_or(u32::MAX);
                Immatriculation::from_number(number)?;
                if self.k.decoy_slot(number) {
                    decoys.push(number);
                } else {
                    real.push(number);
                }
            }
        }
        Ok((real, decoys))
    }

    /// A decoy person for each number: a plausible name, birth date and children (from the
    /// number's pseudonym, so nothing marks it), a CIN in the decoys' range (`ZG`), sealed and
    /// indexed like anyone's. Their ids are recorded as decoys once they are written.
    pub(crate) async fn decoy_rows(&self, numbers: &[u32]) -> Result<Vec<PersonRow>, AppError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.k.store();
        let ring = self.k.keyring();
        let ids = self.person_ids(numbers.len()).await?;
        let mut rows = Vec::with_capacity(numbers.len());
        for (k, number) in numbers.iter().enumerate() {
            let id = ids[k];
            let h = ring.pseudonym("decoy_person", i64::from(*number));
            let (last, last_ar) = LAST[usize::from(h[0]) % LAST.len()];
            let (first, first_ar) = FIRST[usize::from(h[1]) % FIRST.len()];
            let birth = format!(
                "{}-{:02}-{:02}",
                1960 + u32::from(h[2]) % 40,
                1 + h[3] % 12,
                1 + h[4] % 28
            );
            let children = (h[5] % 4).to_string();
            // A CIN nobody has: the decoys' range, tried from the number's pseudonym on.
            let mut digits = u32::from_le_bytes([h[6], h[7], h[8], h[9]]) % 1_000_000;
            let cin = loop {
                let cin = format!("ZG{digits:06}");
                let bidx = ring.blind_index(CIN_INDEX, cin.as_bytes())?.to_vec();
                let taken = store
                    .person_ids_by_index(BlindColumn::Cin, std::slice::from_ref(&bidx))
                    .await?;
                if taken.is_empty() && !rows.iter().any(|r: &PersonRow| r.cin_bidx == bidx) {
                    break cin;
                }
                digits = (digits + 7_919) % 1_000_000;
            };
            let row = self.person_row(
                id,
                &format!("{number:09}"),
                &cin,
                &[
                    (PersonField::LastName, last),
                    (PersonField::FirstName, first),
                    (PersonField::LastNameAr, last_ar),
                    (PersonField::FirstNameAr, first_ar),
                    (PersonField::BirthDate, birth.as_str()),
                    (PersonField::Children, children.as_str()),
                ],
            )?;
            rows.push(row);
        }
        Ok(rows)
    }
}
