//! Data keys at run time (docs/keys.md): the keyring each process holds, kept in step with the
//! database; rotation to a new data key while the server keeps serving; lockdown.
//!
//! Rotation follows Tink's order. The new key is added but not primary, and every running
//! daman loads it (each reloads the keys every `key_refresh` and reports what it holds in
//! `key_nodes`): from then on any of them decrypts what the new key encrypts. Only then is it
//! made primary; once every node reports encrypting with it, every sealed row is re-encrypted
//! to it in batches, each row written back only if it still holds the ciphertext that was read
//! (compare-and-set: a request's concurrent change is never overwritten). Passes repeat until
//! one finds nothing left under an older key. Blind indexes and pseudonyms do not depend on the
//! data keys and do not change.

use crate::capability::Actor;
use crate::event::Audit;
use crate::{AppError, Clash, Kernel};
use domain::Role;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use store::{DataKeyRow, KeyNodeRow, Resealed, SealedRow, SealedTable};
use vault::{Column, KeyFileKek, Keyring, Random, WrappedKey};

/// A node not seen for this long is taken to be gone: a rotation does not wait for it.
pub const NODE_LIVE_SECONDS: i64 = 10;

/// Rows read, re-encrypted and written back per transaction (blocks of declaration lines hold up
/// to 64 lines each: fewer of them).
const REKEY_BATCH: i64 = 500;
const REKEY_BATCH_BLOCKS: i64 = 32;

/// Passes over the sealed tables before a rotation reports rows it could not move.
const MAX_PASSES: u32 = 3;

/// The keyring of this process and what it needs to rebuild it when the keys change.
pub(crate) struct Keys {
    ring: RwLock<Arc<Keyring>>,
    kek: KeyFileKek,
    encrypted: Vec<Column>,
    indexed: Vec<Column>,
    /// The keyring's source of nonces ([`crate::AppConfig::nonces`]).
    nonces: Arc<dyn Random>,
    /// The key ids and the primary of the keyring in `ring`.
    loaded: Mutex<(Vec<u32>, u32)>,
    /// This process's name in `key_nodes`: host, process id and a random tag.
    pub(crate) node: String,
}

/// The primary key of a key set: the highest id made primary.
fn primary_of(rows: &[DataKeyRow]) -> Option<u32> {
    rows.iter()
        .filter(|k| k.primary_since.is_some())
        .map(|k| k.id)
        .max()
}

impl Keys {
    pub(crate) fn open(
        kek: KeyFileKek,
        rows: &[DataKeyRow],
        encrypted: Vec<Column>,
        indexed: Vec<Column>,
        nonces: Arc<dyn Random>,
    ) -> Result<Keys, AppError> {
        let (ring, loaded) = Self::build(&kek, rows, &encrypted, &indexed, &nonces)?;
        let mut tag = [0u8; 4];
        nonces.fill(&mut tag)?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let node = format!(
            "{}:{}:{}",
            host.trim(),
            std::process::id(),
            vault::hex(&tag)
        );
        Ok(Keys {
            ring: RwLock::new(Arc::new(ring)),
            kek,
            encrypted,
            indexed,
            nonces,
            loaded: Mutex::new(loaded),
            node,
        })
    }

    fn build(
        kek: &KeyFileKek,
        rows: &[DataKeyRow],
        encrypted: &[Column],
        indexed: &[Column],
        nonces: &Arc<dyn Random>,
    ) -> Result<(Keyring, (Vec<u32>, u32)), AppError> {
        let primary = primary_of(rows).ok_or(AppError::Internal("no primary data key"))?;
        let wrapped: Vec<WrappedKey> = rows
            .iter()
            .map(|k| WrappedKey {
                id: k.id,
                wrapped: k.wrapped.clone(),
            })
            .collect();
        let ring = Keyring::open(kek, &wrapped, primary, encrypted, indexed, nonces.clone())?;
        Ok((ring, (rows.iter().map(|k| k.id).collect(), primary)))
    }

    /// The keyring itself, which opens ciphertexts: for the gate ([`Kernel::unseal`], in
    /// gate.rs) and for re-encryption here, never handed out of the kernel
    /// (`scripts/check-layers` checks that no other module calls it).
    pub(crate) fn ring(&self) -> Arc<Keyring> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the keyring if `rows` differ from what is loaded.
    fn load(&self, rows: &[DataKeyRow]) -> Result<(), AppError> {
        let want = (
            rows.iter().map(|k| k.id).collect::<Vec<_>>(),
            primary_of(rows).unwrap_or(0),
        );
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == want {
            return Ok(());
        }
        let (ring, now_loaded) = Self::build(
            &self.kek,
            rows,
            &self.encrypted,
            &self.indexed,
            &self.nonces,
        )?;
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        *loaded = now_loaded;
        Ok(())
    }
}

/// A data key as `daman keys list` shows it (never the key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub id: u32,
    pub created_at: i64,
    pub primary_since: Option<i64>,
    /// The key new ciphertexts are made with.
    pub primary: bool,
}

/// What a rotation reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProgress {
    /// Waiting for the running nodes: `behind` of `nodes` have not yet `what`.
    Waiting {
        what: &'static str,
        nodes: usize,
        behind: usize,
    },
    /// A pass over every sealed row begins.
    Pass { pass: u32, rows: u64 },
    /// Rows of the current pass done.
    Rows(u64),
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    /// The key every row is now encrypted with.
    pub key: u32,
    /// Running daman processes that loaded it before it was made primary.
    pub nodes: usize,
    /// Rows re-encrypted, per pass.
    pub passes: Vec<RekeyPass>,
    /// Rows still under an older key after the last pass (0 when the rotation is complete).
    pub left: u64,
}

/// One pass over the sealed tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RekeyPass {
    /// Rows read.
    pub rows: u64,
    /// Rows written with a ciphertext under the new key.
    pub rekeyed: u64,
    /// Rows that changed between read and write-back (left for the next pass).
    pub raced: u64,
    /// Declaration lines re-encrypted (inside blocks).
    pub lines: u64,
    /// Rows found under an older key (counted by a read-only pass).
    #[serde(skip)]
    pub stale: u64,
}

/// The keys as the capability crates hold them: they seal, index and name (pseudonyms, person
/// row ids), and never open. Plaintext comes out of a ciphertext only through the gate, with a
/// [`crate::gate::Pass`] ([`Kernel::unseal`]); this type has no way to decrypt, and the keyring it
/// wraps is not reachable from it.
#[derive(Clone)]
pub struct Sealer(Arc<Keyring>);

impl Sealer {
    pub fn encrypt(&self, col: Column, row: i64, plain: &[u8]) -> Result<Vec<u8>, AppError> {
        Ok(self.0.encrypt(col, row, plain)?)
    }

    pub fn encrypt_bound(
        &self,
        col: Column,
        row: i64,
        context: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, AppError> {
        Ok(self.0.encrypt_bound(col, row, context, plain)?)
    }

    pub fn blind_index(
        &self,
        col: Column,
        value: &[u8],
    ) -> Result<[u8; vault::BLIND_INDEX_LEN], AppError> {
        Ok(self.0.blind_index(col, value)?)
    }

    pub fn pseudonym(&self, kind: &str, id: i64) -> [u8; vault::BLIND_INDEX_LEN] {
        self.0.pseudonym(kind, id)
    }

    pub fn person_pseudonym(&self, id: i64) -> [u8; vault::BLIND_INDEX_LEN] {
        self.0.person_pseudonym(id)
    }

    pub fn person_id(&self, serial: i64) -> Result<i64, AppError> {
        Ok(self.0.person_id(serial)?)
    }

    pub fn newest_key_id(&self) -> u32 {
        self.0.newest_key_id()
    }
}

impl Kernel {
    /// This process's keys, to seal with (the current ones: a rotation replaces them).
    pub fn keyring(&self) -> Sealer {
        Sealer(self.inner.keys.ring())
    }

    /// Loads the data keys again if they changed, and reports what this process holds, even
    /// when loading failed (a rotation then waits for it and names it, rather than taking it
    /// for gone).
    pub async fn refresh_keys(&self) -> Result<(), AppError> {
        let loaded = match self.inner.store.data_keys().await {
            Ok(rows) => self.inner.keys.load(&rows),
            Err(e) => Err(e.into()),
        };
        let ring = self.inner.keys.ring();
        self.inner
            .store
            .report_key_node(
                &self.inner.keys.node,
                ring.newest_key_id(),
                ring.primary_key_id(),
            )
            .await?;
        loaded
    }

    /// Takes this process off `key_nodes` (a command about to exit): a rotation then does not
    /// wait for it to age out.
    pub async fn leave_key_nodes(&self) -> Result<(), AppError> {
        self.inner
            .store
            .forget_key_node(&self.inner.keys.node)
            .await?;
        Ok(())
    }

    /// The data keys.
    pub async fn key_list(&self) -> Result<Vec<KeyInfo>, AppError> {
        let rows = self.inner.store.data_keys().await?;
        let primary = primary_of(&rows);
        Ok(rows
            .iter()
            .map(|k| KeyInfo {
                id: k.id,
                created_at: k.created_at,
                primary_since: k.primary_since,
                primary: Some(k.id) == primary,
            })
            .collect())
    }

    /// Rotates the data key (the operator, at the command line): adds a new key, waits until
    /// every running daman has loaded it (at most `wait`), makes it primary, waits until every
    /// one encrypts with it, and re-encrypts every sealed row. With `resume`, finishes the last
    /// rotation instead (a key added but not primary, or rows left under older keys). Each
    /// step is audited.
    pub async fn rotate_keys(
        &self,
        resume: bool,
        wait: Duration,
        progress: &(dyn Fn(KeyProgress) + Sync),
        request_id: &str,
    ) -> Result<Rotation, AppError> {
        let rows = self.inner.store.data_keys().await?;
        let newest = rows.iter().map(|k| k.id).max().unwrap_or(0);
        let pending = rows.iter().any(|k| k.primary_since.is_none());
        let key = match (resume, pending) {
            (false, true) => return Err(AppError::Conflict(Clash::RotationUnfinished)),
            (true, _) => newest,
            (false, false) => {
                let key = newest + 1;
                let k = Keyring::new_data_key(&self.inner.keys.kek, key, self.random())?;
                match self
                    .inner
                    .store
                    .insert_data_key(key, &k.wrapped, self.now().0, false)
                    .await
                {
                    Err(store::StoreError::Conflict(_)) => {
                        return Err(AppError::Conflict(Clash::RotationUnfinished));
                    }
                    r => r?,
                }
                operator_event("key_add", format!("key={key}"))
                    .write(self, request_id)
                    .await?;
                key
            }
        };
        self.refresh_keys().await?;
        let nodes = self
            .await_nodes("loaded the new key", wait, progress, |n| {
                n.newest_key >= key
            })
            .await?;
        if self.inner.store.make_key_primary(key, self.now().0).await? {
            operator_event("key_primary", format!("key={key} nodes={nodes}"))
                .write(self, request_id)
                .await?;
        }
        self.refresh_keys().await?;
        self.await_nodes("switched to the new key", wait, progress, |n| {
            n.primary_key >= key
        })
        .await?;
        // Requests that took the old keyring just before their node switched commit within
        // moments; the passes after the first find whatever they wrote.
        let mut passes = Vec::new();
        let mut clean = false;
        for pass in 1..=MAX_PASSES {
            let p = self.rekey_pass(pass, true, progress).await?;
            clean = p.rekeyed == 0 && p.raced == 0;
            passes.push(p);
            if clean {
                break;
            }
        }
        // Unless the last pass found nothing to do, count what is still under an older key.
        let left = if clean {
            0
        } else {
            self.rekey_pass(MAX_PASSES + 1, false, progress)
                .await?
                .stale
        };
        let total: u64 = passes.iter().map(|p| p.rekeyed).sum();
        operator_event(
            "key_rekey",
            format!(
                "key={key} passes={} rekeyed={total} left={left}",
                passes.len()
            ),
        )
        .write(self, request_id)
        .await?;
        Ok(Rotation {
            key,
            nodes,
            passes,
            left,
        })
    }

    /// Polls `key_nodes` until every live node satisfies `ok`; returns how many there are.
    async fn await_nodes(
        &self,
        what: &'static str,
        wait: Duration,
        progress: &(dyn Fn(KeyProgress) + Sync),
        ok: impl Fn(&KeyNodeRow) -> bool,
    ) -> Result<usize, AppError> {
        let started = tokio::time::Instant::now();
        loop {
            let nodes = self.inner.store.key_nodes(NODE_LIVE_SECONDS).await?;
            let behind: Vec<&KeyNodeRow> = nodes.iter().filter(|n| !ok(n)).collect();
            progress(KeyProgress::Waiting {
                what,
                nodes: nodes.len(),
                behind: behind.len(),
            });
            if behind.is_empty() {
                return Ok(nodes.len());
            }
            if started.elapsed() >= wait {
                let names: Vec<&str> = behind.iter().map(|n| n.node.as_str()).collect();
                return Err(AppError::Keys(format!(
                    "{} running daman(s) have not {what} after {} s: {}; run `daman keys rotate --resume` once they have (or have stopped)",
                    behind.len(),
                    wait.as_secs(),
                    names.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One pass over every sealed table: each row under an older key re-encrypted to the
    /// primary one (with `write`), or only counted (`stale`).
    async fn rekey_pass(
        &self,
        pass: u32,
        write: bool,
        progress: &(dyn Fn(KeyProgress) + Sync),
    ) -> Result<RekeyPass, AppError> {
        let tables = store::sealed_tables();
        let mut total = 0u64;
        for t in &tables {
            total += self.inner.store.count_rows(t.table).await?;
        }
        progress(KeyProgress::Pass { pass, rows: total });
        let mut out = RekeyPass::default();
        for t in tables {
            let columns = sealed_columns(&t)?;
            let limit = if t.blocks {
                REKEY_BATCH_BLOCKS
            } else {
                REKEY_BATCH
            };
            let mut after = None;
            loop {
                let rows = self.inner.store.sealed_rows(&t, after, limit).await?;
                let Some(last) = rows.last() else { break };
                after = Some(last.key);
                let n = rows.len() as u64;
                let ring = self.inner.keys.ring();
                out.rows += n;
                progress(KeyProgress::Rows(n));
                if !write {
                    out.stale += stale_rows(&ring, t.blocks, &rows)?;
                    continue;
                }
                let cols = columns.clone();
                let blocks = t.blocks;
                let (changed, lines) =
                    tokio::task::spawn_blocking(move || rekey_rows(&ring, &cols, blocks, rows))
                        .await
                        .map_err(|_| AppError::Internal("re-encryption task"))??;
                if !changed.is_empty() {
                    let written = self.inner.store.replace_sealed(&t, &changed).await?;
                    out.rekeyed += written;
                    out.raced += changed.len() as u64 - written;
                }
                out.lines += lines;
            }
        }
        Ok(out)
    }

    /// Ends every live session (or those of `role`): everyone signs in again. Audited.
    pub async fn lockdown(&self, role: Option<Role>, request_id: &str) -> Result<u64, AppError> {
        let n = self
            .inner
            .store
            .end_all_sessions(role.map(|r| r.as_str()), self.now().0, "lockdown")
            .await?;
        operator_event(
            "lockdown",
            format!("role={} sessions={n}", role.map_or("all", |r| r.as_str())),
        )
        .write(self, request_id)
        .await?;
        Ok(n)
    }
}

/// An audit event of the operator at the command line.
fn operator_event(action: &'static str, detail: String) -> Audit {
    Audit::counted(Actor::operator(), action, 0).detail(detail)
}

/// The encrypted columns of a sealed table, as bound into their ciphertexts.
fn sealed_columns(t: &SealedTable) -> Result<Vec<Column>, AppError> {
    t.columns
        .iter()
        .map(|c| {
            crate::columns::encrypted()
                .into_iter()
                .find(|e| e.table == t.table && e.column == *c)
                .ok_or(AppError::Internal(
                    "a sealed column the keyring does not know",
                ))
        })
        .collect()
}

/// How many rows hold a ciphertext under an older key than the primary (read only: nothing is
/// decrypted).
fn stale_rows(ring: &Keyring, blocks: bool, rows: &[SealedRow]) -> Result<u64, AppError> {
    let mut n = 0;
    for row in rows {
        let mut stale = false;
        for blob in row.values.iter().flatten() {
            let sealed = if blocks {
                store::blocks::sealed_part(blob)?.1
            } else {
                blob
            };
            stale |= !ring.is_current(sealed);
        }
        n += u64::from(stale);
    }
    Ok(n)
}

/// The rows that need a new ciphertext, with it; and the declaration lines re-encrypted.
fn rekey_rows(
    ring: &Keyring,
    columns: &[Column],
    blocks: bool,
    rows: Vec<SealedRow>,
) -> Result<(Vec<Resealed>, u64), AppError> {
    let mut out = Vec::new();
    let mut lines = 0u64;
    for row in rows {
        let mut changed = false;
        let mut values = Vec::with_capacity(row.values.len());
        for (col, v) in columns.iter().zip(&row.values) {
            let new = match v {
                None => None,
                Some(blob) if blocks => {
                    // The block's sealed part, bound to its declaration and directory.
                    let (context, sealed) = store::blocks::sealed_part(blob)?;
                    match ring.rekey_bound(*col, row.key[0], context, sealed)? {
                        Some(new) => {
                            lines += store::blocks::persons(blob)?.len() as u64;
                            Some(store::blocks::with_sealed(blob, &new)?)
                        }
                        None => None,
                    }
                }
                Some(blob) => ring.rekey(*col, row.key[0], blob)?,
            };
            changed |= new.is_some();
            values.push(new.or_else(|| v.clone()));
        }
        if changed {
            out.push((row, values));
        }
    }
    Ok((out, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column the keyring encrypts is one a rotation re-encrypts, and the other way round.
    #[test]
    fn rotation_covers_every_encrypted_column() {
        let mut covered = Vec::new();
        for t in store::sealed_tables() {
            covered.extend(sealed_columns(&t).unwrap());
        }
        let mut encrypted = crate::columns::encrypted();
        let key = |c: &Column| (c.table, c.column);
        covered.sort_by_key(key);
        encrypted.sort_by_key(key);
        assert_eq!(covered, encrypted);
    }
}
