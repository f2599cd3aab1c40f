//! Honeytokens (docs/audit.md): synthetic persons and employers that pass every check but no
//! real workflow touches. Nothing in the database marks them: they are registered like anyone
//! else, and which ones they are is kept outside the tables, in the key directory, as the
//! keyed pseudonyms the audit log uses (`honeytokens`, one `person <hex>` or `employer <hex>`
//! per line, mode 0600). Reading one through the gate, or naming one in an e-BDS file, locks
//! the principal and raises an alert.

use crate::gate::Audit;
use crate::{App, AppError, NewEmployer, NewPerson, Principal, Registrar};
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

fn file_of(app: &App) -> PathBuf {
    app.key_dir().path().join(FILE)
}

impl App {
    /// Registers decoy employers and persons (through the registry, like anyone) and records
    /// their pseudonyms in the key directory. Returns what was registered (the command line
    /// prints only how many: the list itself names no one).
    pub async fn seed_honeytokens(
        &self,
        employers: &[NewEmployer],
        persons: &[NewPerson],
    ) -> Result<(Vec<crate::EmployerCreated>, Vec<crate::PersonCreated>), AppError> {
        let reg = Registrar::operator();
        let e = self.affiliate_employers(reg, employers, "load").await?;
        let p = self.immatriculate(reg, persons, "load").await?;
        let mut lines = String::new();
        let mut new = Vec::new();
        for c in &e {
            let h = self.keyring().pseudonym("employer", c.employer_id).to_vec();
            lines.push_str(&format!("employer {}\n", hex(&h)));
            new.push(("employer".to_string(), h));
        }
        for c in &p {
            let h = self.keyring().pseudonym("person", c.person_id).to_vec();
            lines.push_str(&format!("person {}\n", hex(&h)));
            new.push(("person".to_string(), h));
        }
        let path = file_of(self);
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
        Ok((e, p))
    }

    /// Refuses a registry command that names a decoy person or employer: the refusal is
    /// audited, and `who` is locked with an alert, as at the gate.
    pub(crate) async fn refuse_decoy(
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
    pub(crate) fn is_decoy_subject(&self, pseudonym: &[u8]) -> bool {
        let t = &self.inner.honeytokens;
        !t.is_empty() && t.contains("person", pseudonym)
    }

    /// Whether this person is a decoy.
    pub(crate) fn is_decoy_person(&self, person_id: i64) -> bool {
        !self.inner.honeytokens.is_empty()
            && self.is_decoy_subject(&self.keyring().pseudonym("person", person_id))
    }

    /// Whether this employer is a decoy.
    pub(crate) fn is_decoy_employer(&self, employer_id: i64) -> bool {
        let t = &self.inner.honeytokens;
        !t.is_empty()
            && t.contains(
                "employer",
                &self.keyring().pseudonym("employer", employer_id),
            )
    }

    /// A decoy was touched by `who` (through `path`): lock and alert.
    pub(crate) async fn decoy_touched(
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
        file_of(self)
    }
}
