//! Honeytokens (docs/audit.md): synthetic persons and employers that pass every check but no
//! real workflow touches. Nothing in the database marks them: they are registered like anyone
//! else, and which ones they are is kept outside the tables, in the key directory, as the
//! keyed pseudonyms the audit log uses (`honeytokens`, one `person <hex>` or `employer <hex>`
//! per line, mode 0600). Reading one through the gate, or naming one in an e-BDS file, locks
//! the principal and raises an alert.

use crate::event::Audit;
use crate::principal::Principal;
use crate::{AppError, Kernel};
use domain::DenyReason;
use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use vault::{hex, unhex};

const FILE: &str = "honeytokens";

/// The decoys known to this node, as `(kind, pseudonym)`.
#[derive(Default)]
pub(crate) struct Honeytokens {
    set: RwLock<HashSet<(String, Vec<u8>)>>,
}

impl Honeytokens {
    /// Reads `<key_dir>/honeytokens` (none when it does not exist).
    pub(crate) fn load(key_dir: &Path) -> Result<Honeytokens, AppError> {
        let path = key_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(AppError::Witness(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let mut set = HashSet::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (kind, h) = line
                .split_once(' ')
                .and_then(|(k, h)| Some((k, unhex(h.trim())?)))
                .ok_or_else(|| AppError::Witness(format!("{} is damaged", path.display())))?;
            set.insert((kind.to_string(), h));
        }
        Ok(Honeytokens {
            set: RwLock::new(set),
        })
    }

    fn contains(&self, kind: &str, pseudonym: &[u8]) -> bool {
        self.set
            .read()
            .is_ok_and(|s| s.contains(&(kind.to_string(), pseudonym.to_vec())))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.read().map_or(true, |s| s.is_empty())
    }
}

impl Kernel {
    /// Records decoy employers and persons (registered already, like anyone) by their
    /// pseudonyms in the key directory, and from now on on this node.
    pub fn record_decoys(&self, employers: &[i64], persons: &[i64]) -> Result<(), AppError> {
        let mut lines = String::new();
        let mut new = Vec::new();
        let ring = self.keyring();
        for (kind, ids) in [("employer", employers), ("person", persons)] {
            for id in ids {
                let h = match kind {
                    "person" => ring.person_pseudonym(*id),
                    _ => ring.pseudonym(kind, *id),
                }
                .to_vec();
                lines.push_str(&format!("{kind} {}\n", hex(&h)));
                new.push((kind.to_string(), h));
            }
        }
        let path = self.honeytoken_list();
        let err = |e: std::io::Error| AppError::Witness(format!("{}: {e}", path.display()));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        f.write_all(lines.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        if let Ok(mut s) = self.inner.honeytokens.set.write() {
            s.extend(new);
        }
        Ok(())
    }

    /// Whether immatriculation number `number` is a decoy's: one in every `decoy_every`
    /// numbers (a block), at a place in its block only the keys tell. The registry gives such a
    /// number to a decoy person when the counter reaches it, so decoys are spread through the
    /// number space as it grows, and a sweep of numbers in either direction meets one within
    /// two blocks.
    pub fn decoy_slot(&self, number: u32) -> bool {
        let every = self.inner.decoy_every;
        if every == 0 {
            return false;
        }
        let block = number / every;
        let h = self.keyring().pseudonym("decoy_slot", i64::from(block));
        let place = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % every;
        number % every == place
    }

    /// Whether any decoy is known to this node.
    pub fn has_decoys(&self) -> bool {
        !self.inner.honeytokens.is_empty()
    }

    /// Refuses a registry command that names a decoy person or employer: the refusal is
    /// audited, and `who` is locked with an alert, as at the gate.
    pub async fn refuse_decoy(
        &self,
        who: &Principal,
        person: Option<i64>,
        employer: Option<i64>,
        path: &'static str,
        request_id: &str,
    ) -> Result<(), AppError> {
        if !person.is_some_and(|p| self.is_decoy_person(p))
            && !employer.is_some_and(|e| self.is_decoy_employer(e))
        {
            return Ok(());
        }
        let mut audit = Audit::command(who, path, person).denied(DenyReason::Honeytoken);
        if let Some(e) = employer {
            audit = audit.detail(format!("employer={e}"));
        }
        audit.write(self, request_id).await?;
        self.decoy_touched(Some(who), path, request_id).await?;
        Err(AppError::Denied(DenyReason::Honeytoken))
    }

    /// Whether the person with this keyed pseudonym is a decoy.
    pub fn is_decoy_subject(&self, pseudonym: &[u8]) -> bool {
        let t = &self.inner.honeytokens;
        !t.is_empty() && t.contains("person", pseudonym)
    }

    /// Whether this person is a decoy.
    pub fn is_decoy_person(&self, person_id: i64) -> bool {
        !self.inner.honeytokens.is_empty()
            && self.is_decoy_subject(&self.keyring().person_pseudonym(person_id))
    }

    /// Whether this employer is a decoy.
    pub fn is_decoy_employer(&self, employer_id: i64) -> bool {
        let t = &self.inner.honeytokens;
        !t.is_empty()
            && t.contains(
                "employer",
                &self.keyring().pseudonym("employer", employer_id),
            )
    }

    /// A decoy was touched by `who` (through `path`): lock and alert.
    pub async fn decoy_touched(
        &self,
        who: Option<&Principal>,
        path: &str,
        request_id: &str,
    ) -> Result<(), AppError> {
        self.lock_and_alert(
            who,
            "honeytoken",
            format!("a decoy record was touched ({path})"),
            request_id,
        )
        .await
    }

    /// The file listing the decoys (in the key directory).
    pub fn honeytoken_list(&self) -> PathBuf {
        self.key_dir().path().join(FILE)
    }
}
