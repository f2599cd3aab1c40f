//! Renumbering persons (migration 0025, `Kernel::renumber_persons`), in what this service
//! keeps: a préétabli's employees and person list, a kept rejection's person list, and the
//! blocks of declaration lines (their directories are sorted by person, so each
//! declaration's lines are sorted again under the new ids and sealed in new blocks). Ids
//! below [`store::PERSON_ID_BASE`] are serials and move to their keyed id; keyed ids stay.

use crate::Contributions;
use crate::codec::{employees_payload, parse_employees};
use kernel::columns::{DECLARATION_LINE_BLOCK, PREETABLI_EMPLOYEES};
use kernel::gate::Pass;
use kernel::keys::Sealer;
use kernel::{Actor, AppError, Audit, RenumberProgress};
use store::{LineBlocks, PERSON_ID_BASE};

/// Rows read (préétablis, rejections) or declarations rewritten per transaction.
const BATCH: i64 = 200;
const DECLARATIONS: i64 = 20;

/// The keyed id of `id` if it is a serial; `id` itself otherwise (a keyed id, or the
/// negative id a claim's line is stored under: `store::claim_line_subject`).
fn keyed(ring: &Sealer, id: i64) -> Result<i64, AppError> {
    if (0..PERSON_ID_BASE).contains(&id) {
        ring.person_id(id)
    } else {
        Ok(id)
    }
}

fn is_serial(id: &i64) -> bool {
    (0..PERSON_ID_BASE).contains(id)
}

/// A person list ([`store::persons_bytes`]) under keyed ids, or `None` if it has no serial.
fn keyed_list(ring: &Sealer, b: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
    let ids = store::persons_of_bytes(b)?;
    if !ids.iter().any(is_serial) {
        return Ok(None);
    }
    let ids = ids
        .into_iter()
        .map(|p| keyed(ring, p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(store::persons_bytes(&ids)))
}

impl Contributions {
    /// Renumbers the persons named in préétablis, kept rejections and declaration lines. The
    /// operator's act, audited once before anything is opened. Returns the declarations
    /// whose lines were sorted again.
    pub async fn renumber_persons(
        &self,
        progress: &(dyn Fn(RenumberProgress) + Sync),
        request_id: &str,
    ) -> Result<u64, AppError> {
        let s = self.k.store();
        let declarations = s.count_serial_declarations().await? as u64;
        // What it opens: préétablis' employees (numbers, names, children) and declarations'
        // lines, to seal them again at once.
        let pass = self
            .k
            .recorded_read(
                Audit::counted(
                    Actor::operator(),
                    "renumber_declared",
                    declarations as usize,
                )
                .fields(&crate::preetabli::PREETABLI_FIELDS)
                .detail(format!(
                    "declarations={declarations} reason=persons renumbered (keyed ids)"
                )),
                request_id,
            )
            .await?;
        let ring = self.k.keyring();
        let mut after = 0;
        loop {
            let rows = s.listing_preetablis(after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            let mut changed = Vec::new();
            for (id, employees, persons) in rows {
                // A préétabli issued before migration 0024 has no person list: its sealed
                // employees say whether it names serials.
                let persons = match persons {
                    Some(b) => match keyed_list(&ring, &b)? {
                        Some(keyed) => Some(keyed),
                        None => continue,
                    },
                    None => None,
                };
                let Some(sealed) = employees else {
                    if persons.is_some() {
                        changed.push((id, None, persons));
                    }
                    continue;
                };
                let plain = zeroize::Zeroizing::new(self.k.unseal(
                    &pass,
                    PREETABLI_EMPLOYEES,
                    id,
                    &sealed,
                )?);
                let mut list = parse_employees(&plain)?;
                if persons.is_none() && !list.iter().any(|(p, _)| is_serial(p)) {
                    continue;
                }
                for (p, _) in &mut list {
                    *p = keyed(&ring, *p)?;
                }
                let plain = zeroize::Zeroizing::new(employees_payload(&list)?);
                let employees = Some(ring.encrypt(PREETABLI_EMPLOYEES, id, &plain)?);
                changed.push((id, employees, persons));
            }
            s.set_preetabli_persons(&changed).await?;
        }
        let mut after = 0;
        loop {
            let rows = s.naming_rejections(after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            let mut changed = Vec::new();
            for (id, persons) in rows {
                if let Some(persons) = keyed_list(&ring, &persons)? {
                    changed.push((id, persons));
                }
            }
            s.set_rejection_persons(&changed).await?;
        }
        progress(RenumberProgress::Begin {
            what: "declarations",
            total: declarations,
        });
        self.renumber_lines(&pass, &ring, progress).await
    }

    /// Every declaration whose blocks name serials: its lines opened, given their keyed ids,
    /// sorted and sealed again, and its blocks replaced, [`DECLARATIONS`] a transaction.
    async fn renumber_lines(
        &self,
        pass: &Pass,
        ring: &Sealer,
        progress: &(dyn Fn(RenumberProgress) + Sync),
    ) -> Result<u64, AppError> {
        let s = self.k.store();
        let mut done = 0u64;
        let mut lines = LineBlocks::default();
        let mut after = 0;
        loop {
            let ids = s.serial_declarations(after, DECLARATIONS).await?;
            let Some(&last) = ids.last() else { break };
            after = last;
            let mut blocks = Vec::new();
            for &d in &ids {
                let old = s.declaration_blocks(d).await?;
                let Some(period) = old.first().map(|b| b.period) else {
                    continue;
                };
                for b in &old {
                    let opened = self.open_block(pass, b)?;
                    for (person, line, payload) in opened.lines() {
                        lines.push(keyed(ring, person)?, line, |buf| {
                            buf.extend_from_slice(payload)
                        });
                    }
                }
                blocks.extend(lines.seal(d, period, |context, plain| {
                    ring.encrypt_bound(DECLARATION_LINE_BLOCK, d, context, plain)
                })?);
            }
            s.replace_declaration_blocks(&blocks).await?;
            done += ids.len() as u64;
            progress(RenumberProgress::Done(ids.len() as u64));
        }
        Ok(done)
    }
}
