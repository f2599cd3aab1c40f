//! The verifiable audit log (docs/audit.md): the sequencer that integrates appended events into
//! an RFC 6962 tree and signs C2SP checkpoints, the witness file it appends them to, and the
//! verifier and prover behind `daman audit`.
//!
//! Events are appended by [`crate::AuditWriter`] (group commit), numbered densely in commit
//! order. One sequencer at a time seals them: in a process, one task; across processes sharing
//! a witness file, an exclusive lock on `<witness>.lock`; across PostgreSQL nodes, an advisory
//! lock taken by the transaction that records the checkpoint. It reads the events after the
//! last checkpoint, computes their leaf hashes, and records them with a new checkpoint signed by
//! a key kept in the key directory, never in the database; the signed note is then appended to
//! the witness file (fsync), which in production lives on another machine's disk. It signs only
//! an extension of what it signed before: the last checkpoint in the database must carry its
//! signature, its right edge must hash to its root, and it must be (or extend) the witness
//! file's last checkpoint. Otherwise nothing is signed until an operator looks.

use crate::writer::Committed;
use crate::{AppError, Kernel, Missing};
use audit::merkle::{self, Hash};
use audit::{Checkpoint, Event, Frontier, InclusionProof, NoteSigner, NoteVerifier};
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::{AuditCheckpointRow, AuditRow, Store, StoreError};
use tokio::sync::{Mutex, mpsc};

/// Events read per query when integrating or verifying.
pub(crate) const PAGE: i64 = 10_000;

/// Where and how the log is sealed.
#[derive(Debug, Clone)]
pub struct AuditLogConfig {
    /// The log's name in its checkpoints, and its key's name (e.g. `cnss.example/audit`).
    pub origin: String,
    /// The witness file every checkpoint is appended to, outside the database directory.
    pub witness: PathBuf,
    /// How often the sequencer integrates new events and signs a checkpoint.
    pub interval: Duration,
}

/// The name of the signing key's file in the key directory.
pub(crate) const SIGNING_KEY: &str = "audit-signing";

pub(crate) struct AuditLog {
    cfg: AuditLogConfig,
    signer: NoteSigner,
    /// One sealing at a time in this process; what the writer committed since, and the leaves
    /// computed from it not sealed yet.
    sealing: Mutex<Handoff>,
}

/// The audit writer's committed groups, hashed into leaves as they arrive: sealing the events
/// this process appended does not read them back from the database.
pub(crate) struct Handoff {
    committed: mpsc::Receiver<Committed>,
    leaves: VecDeque<Leaf>,
    /// When this process last recorded the events' pseudonyms (`audit_subjects`).
    subjects_at: std::time::Instant,
}

/// Sealing records the pseudonyms the events name (`audit_subjects`, for "who read my data")
/// when this many are waiting, or this long after it last did, or on an explicit checkpoint:
/// in bulk, so that the gate does not pay for it (recording them every second cost a quarter of
/// its reads; docs/performance.md). Until then, "who read my data" reads them from the log.
const SUBJECTS_EVERY_ENTRIES: i64 = 100_000;
const SUBJECTS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// An event to seal: its number and its leaf hash.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    seq: i64,
    hash: Hash,
}

impl Leaf {
    fn of(seq: i64, row: &AuditRow) -> Leaf {
        Leaf {
            seq,
            hash: audit_event(seq, row).leaf_hash(),
        }
    }
}

impl Handoff {
    /// The leaves of the events after `from`, in order, as far as they are known here without
    /// a gap (at most `max`).
    fn after(&mut self, from: i64, max: usize) -> Vec<Leaf> {
        while let Ok((first, rows)) = self.committed.try_recv() {
            for (i, r) in rows.iter().enumerate() {
                self.leaves.push_back(Leaf::of(first + i as i64, r));
            }
        }
        while self.leaves.front().is_some_and(|l| l.seq <= from) {
            self.leaves.pop_front();
        }
        // Sealing failing for long: stop keeping leaves (the events are read back instead).
        if self.leaves.len() > 1_000_000 {
            self.leaves.clear();
        }
        self.leaves
            .iter()
            .zip(from + 1..)
            .take_while(|(l, expected)| l.seq == *expected)
            .take(max)
            .map(|(l, _)| *l)
            .collect()
    }
}

/// A checkpoint just signed, or the latest one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub size: u64,
    pub root: Hash,
    pub note: String,
}

/// What `daman audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events read from the database.
    pub entries: u64,
    /// Checkpoints in the database and in the witness file whose root was recomputed.
    pub db_checkpoints: usize,
    pub witness_checkpoints: usize,
    /// The first problem, if any.
    pub problem: Option<LogProblem>,
}

/// The first thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogProblem {
    /// The first bad entry `(n, n)` when it can be named, else the range `(first, last)` it
    /// lies in; `None` for a fault of the witness file itself.
    pub entries: Option<(u64, u64)>,
    pub what: String,
}

impl LogProblem {
    pub(crate) fn at(entry: u64, what: String) -> LogProblem {
        LogProblem {
            entries: Some((entry, entry)),
            what,
        }
    }

    pub(crate) fn between(first: u64, last: u64, what: String) -> LogProblem {
        LogProblem {
            entries: Some((first, last)),
            what,
        }
    }
}

impl std::fmt::Display for LogProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.entries {
            Some((a, b)) if a == b => write!(f, "entry {a}: {}", self.what),
            Some((a, b)) => write!(f, "an entry between {a} and {b}: {}", self.what),
            None => write!(f, "{}", self.what),
        }
    }
}

/// An event as the tree hashes it.
pub fn audit_event(seq: i64, r: &AuditRow) -> Event {
    Event {
        seq: seq as u64,
        at: r.at,
        principal_id: r.principal_id,
        role: r.role.clone(),
        action: r.action.clone(),
        purpose: r.purpose.clone(),
        subject: r.subject.clone(),
        fields: r.fields,
        detail: r.detail.clone(),
        outcome: r.outcome.clone(),
        request_id: r.request_id.clone(),
    }
}

fn witness_err(path: &Path, what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Witness(format!("{what} {}: {e}", path.display()))
}

/// The signed notes of a witness file, in order (an absent file has none).
pub(crate) fn read_witness(path: &Path) -> Result<String, AppError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(witness_err(path, "cannot read", e)),
    }
}

/// What the end of a witness file says.
enum WitnessTail {
    /// No file, or an empty one.
    Empty,
    /// Its last note: a checkpoint signed by the key.
    Last(Checkpoint),
    /// Its last note does not verify (a write cut short, another key, an edit).
    Damaged,
}

/// The last note of a witness file, reading only as much of its end as needed.
fn witness_tail(path: &Path, verifier: &NoteVerifier) -> Result<WitnessTail, AppError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WitnessTail::Empty),
        Err(e) => return Err(witness_err(path, "cannot open", e)),
    };
    let len = f
        .metadata()
        .map_err(|e| witness_err(path, "cannot read", e))?
        .len();
    if len == 0 {
        return Ok(WitnessTail::Empty);
    }
    let mut window = 8192u64;
    loop {
        let from = len.saturating_sub(window);
        f.seek(SeekFrom::Start(from))
            .map_err(|e| witness_err(path, "cannot read", e))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .map_err(|e| witness_err(path, "cannot read", e))?;
        // From inside the file, start after a line break (never inside a character).
        let start = if from == 0 {
            0
        } else {
            bytes
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| i + 1)
        };
        let text = String::from_utf8_lossy(&bytes[start..]);
        let notes = audit::note::split_notes(&text);
        // The first note of a window may be cut: use the last one when there are two or more,
        // or when the window is the whole file.
        if notes.len() >= 2 || from == 0 {
            return Ok(match notes.last() {
                Some(n) => match Checkpoint::open(n, verifier) {
                    Ok(c) => WitnessTail::Last(c),
                    Err(_) => WitnessTail::Damaged,
                },
                None => WitnessTail::Damaged,
            });
        }
        window *= 8;
    }
}

fn append_witness(path: &Path, notes: &[String]) -> Result<(), AppError> {
    if notes.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| witness_err(path, "cannot open", e))?;
    let all: String = notes.concat();
    f.write_all(all.as_bytes())
        .map_err(|e| witness_err(path, "cannot write", e))?;
    f.sync_data()
        .map_err(|e| witness_err(path, "cannot sync", e))?;
    Ok(())
}

/// The exclusive lock on `<witness>.lock`, held while sealing: two processes sharing a witness
/// file never interleave their appends. The directory is created if missing (a fresh
/// installation); the witness file itself is never recreated behind the operator's back (a
/// missing witness with sealed entries in the database refuses sealing).
async fn lock_witness(path: &Path) -> Result<std::fs::File, AppError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| witness_err(dir, "cannot create", e))?;
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| witness_err(&lock, "cannot open", e))?;
    tokio::task::spawn_blocking(move || f.lock().map(|()| f))
        .await
        .map_err(|_| AppError::Internal("witness lock"))?
        .map_err(|e| witness_err(&lock, "cannot lock", e))
}

fn hash_of(b: &[u8]) -> Result<Hash, AppError> {
    b.try_into()
        .map_err(|_| AppError::Store(StoreError::Corrupt("audit hash")))
}

impl AuditLog {
    pub(crate) fn open(
        cfg: AuditLogConfig,
        seed: &[u8; 32],
        committed: mpsc::Receiver<Committed>,
    ) -> Result<AuditLog, AppError> {
        let signer = NoteSigner::new(&cfg.origin, seed)
            .map_err(|_| AppError::Witness(format!("bad audit origin {:?}", cfg.origin)))?;
        Ok(AuditLog {
            cfg,
            signer,
            sealing: Mutex::new(Handoff {
                committed,
                leaves: VecDeque::new(),
                subjects_at: std::time::Instant::now(),
            }),
        })
    }

    fn verifier(&self) -> Result<NoteVerifier, AppError> {
        NoteVerifier::parse(&self.signer.verifier_key())
            .map_err(|_| AppError::Internal("audit verifier key"))
    }

    /// Integrates every event appended since the last checkpoint and signs a checkpoint of
    /// them; `None` when there was nothing new, or when another node is sealing. `all_subjects`:
    /// record every sealed event's pseudonym now (an explicit checkpoint), not only when due.
    pub async fn integrate(
        &self,
        store: &Store,
        now: i64,
        all_subjects: bool,
    ) -> Result<Option<CheckpointInfo>, AppError> {
        let mut handoff = self.sealing.lock().await;
        let _lock = lock_witness(&self.cfg.witness).await?;
        let verifier = self.verifier()?;
        let mut signed = None;
        loop {
            let last = store.last_audit_checkpoint().await?;
            self.check_against_witness(store, last.as_ref(), &verifier)
                .await?;
            let mut frontier = match &last {
                Some(c) => self.trusted_frontier(c, &verifier)?,
                None => Frontier::new(),
            };
            let from = frontier.size();
            // The leaves of the events this process appended are known already; others' (a
            // command's, another node's) are computed from the events read back.
            let mut leaves = handoff.after(from as i64, PAGE as usize);
            if leaves.is_empty() {
                for (seq, row) in store.audit_events(from as i64, PAGE).await? {
                    leaves.push(Leaf::of(seq, &row));
                }
            }
            if leaves.is_empty() {
                return Ok(signed);
            }
            for Leaf { seq, hash, .. } in &leaves {
                if *seq as u64 != frontier.size() + 1 {
                    tracing::error!(
                        expected = frontier.size() + 1,
                        found = seq,
                        "audit log: an entry is missing; no checkpoint signed"
                    );
                    return Err(AppError::Witness(format!(
                        "audit entry {} is missing: nothing signed; run daman audit verify",
                        frontier.size() + 1
                    )));
                }
                frontier.push(*hash);
            }
            let c = Checkpoint {
                origin: self.cfg.origin.clone(),
                size: frontier.size(),
                root: frontier.root(),
            };
            let note = self
                .signer
                .sign(&c.body())
                .map_err(|_| AppError::Internal("checkpoint note"))?;
            let row = AuditCheckpointRow {
                size: c.size as i64,
                root: c.root.to_vec(),
                frontier: frontier.to_bytes(),
                note: note.clone(),
                at: now,
            };
            let hashes: Vec<(i64, Hash)> = leaves.iter().map(|l| (l.seq, l.hash)).collect();
            // The pseudonyms of the events sealed so far, in bulk when due (at most a million
            // at a time: a backlog goes in over several seals).
            let size = c.size as i64;
            let upto = store.audit_subjects_upto().await?;
            let due = all_subjects
                || size - upto >= SUBJECTS_EVERY_ENTRIES
                || handoff.subjects_at.elapsed() >= SUBJECTS_EVERY;
            let subjects = if due && size > upto {
                let hi = size.min(upto + 1_000_000);
                Some((store.audit_event_subjects(upto, hi).await?, hi))
            } else {
                None
            };
            let recorded = subjects.as_ref().map(|(s, hi)| (s.as_slice(), *hi));
            match store.integrate_audit(&hashes, recorded, &row).await {
                Ok(()) => {}
                // Another node is sealing: it will seal these too.
                Err(StoreError::Busy(_)) => return Ok(signed),
                // Another sequencer recorded a checkpoint first: go on from it, if it moved.
                Err(StoreError::Conflict(_)) => {
                    let now_at = store.last_audit_checkpoint().await?.map_or(0, |c| c.size);
                    if now_at as u64 <= from {
                        return Err(AppError::Witness(format!(
                            "sealing after entry {from} conflicts with rows already in the database: nothing signed; run daman audit verify"
                        )));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            if subjects.is_some() {
                handoff.subjects_at = std::time::Instant::now();
            }
            append_witness(&self.cfg.witness, std::slice::from_ref(&note))?;
            signed = Some(CheckpointInfo {
                size: c.size,
                root: c.root,
                note,
            });
        }
    }

    /// The right edge stored with the last checkpoint, if it is the signed one: the note is
    /// this key's, for this size and root, and the edge hashes to that root.
    fn trusted_frontier(
        &self,
        c: &AuditCheckpointRow,
        verifier: &NoteVerifier,
    ) -> Result<Frontier, AppError> {
        let refuse = |why: &str| {
            tracing::error!(
                reason = why,
                "audit log: the last checkpoint in the database is not the one signed; no checkpoint signed"
            );
            AppError::Witness(format!(
                "the last checkpoint in the database ({} entries) {why}: nothing signed; run daman audit verify",
                c.size
            ))
        };
        let signed = Checkpoint::open(&c.note, verifier)
            .map_err(|_| refuse("is not signed by the log key"))?;
        let frontier =
            Frontier::from_bytes(&c.frontier).ok_or_else(|| refuse("has a damaged right edge"))?;
        if signed.size != c.size as u64
            || signed.root[..] != c.root[..]
            || frontier.size() != signed.size
            || frontier.root() != signed.root
        {
            return Err(refuse("does not match its signed note"));
        }
        Ok(frontier)
    }

    /// The database's last checkpoint must be the witness file's last one, or extend it (the
    /// witness missed the latest: a crash between commit and append; those are appended now,
    /// each checked against the key). A witness file that is missing or empty while the
    /// database holds checkpoints, or whose last note does not verify, refuses sealing: the
    /// operator restores it, or starts a new one after a verify (`daman audit
    /// restart-witness`). Anything else means the database was rolled back or rewritten.
    async fn check_against_witness(
        &self,
        store: &Store,
        last: Option<&AuditCheckpointRow>,
        verifier: &NoteVerifier,
    ) -> Result<(), AppError> {
        let refuse = |why: &str| {
            tracing::error!(
                reason = why,
                "audit log: the database does not extend the witness file; no checkpoint signed"
            );
            Err(AppError::Witness(format!(
                "{why}: nothing signed; run daman audit verify"
            )))
        };
        let w = match witness_tail(&self.cfg.witness, verifier)? {
            WitnessTail::Empty if last.is_none() => return Ok(()),
            WitnessTail::Empty => {
                return refuse(&format!(
                    "the witness file {} is missing or empty while the database holds sealed entries (restore it, or see daman audit restart-witness)",
                    self.cfg.witness.display()
                ));
            }
            WitnessTail::Damaged => {
                return refuse(&format!(
                    "the last note of the witness file {} does not verify",
                    self.cfg.witness.display()
                ));
            }
            WitnessTail::Last(w) => w,
        };
        let Some(last) = last else {
            return refuse("the database has no checkpoint but the witness file has");
        };
        if (last.size as u64) < w.size {
            return refuse("the database holds fewer sealed entries than were witnessed");
        }
        // The database's checkpoint at the witnessed size must be the witnessed one.
        let at_w = if last.size as u64 == w.size {
            Some(last.clone())
        } else {
            store
                .audit_checkpoints_after(w.size as i64 - 1, 1)
                .await?
                .into_iter()
                .next()
        };
        match at_w {
            Some(c) if c.size as u64 == w.size && hash_of(&c.root)? == w.root => {}
            _ => return refuse("the witnessed checkpoint is not in the database"),
        }
        // Catch the witness up with checkpoints recorded after it, each signed by the key.
        let mut after = w.size as i64;
        loop {
            let rows = store.audit_checkpoints_after(after, 1_000).await?;
            let Some(end) = rows.last().map(|r| r.size) else {
                return Ok(());
            };
            let mut notes = Vec::with_capacity(rows.len());
            for r in rows {
                match Checkpoint::open(&r.note, verifier) {
                    Ok(c) if c.size == r.size as u64 && c.root[..] == r.root[..] => {
                        notes.push(r.note)
                    }
                    _ => {
                        return refuse("a checkpoint in the database is not signed by the log key");
                    }
                }
            }
            append_witness(&self.cfg.witness, &notes)?;
            after = end;
        }
    }
}

impl Kernel {
    /// Integrates the events appended so far and signs a checkpoint of them (the sequencer
    /// does this every few seconds; commands call it before they exit).
    pub async fn checkpoint_audit(&self) -> Result<Option<CheckpointInfo>, AppError> {
        self.inner
            .log
            .integrate(&self.inner.store, self.now().0, true)
            .await
    }

    /// The latest checkpoint in the database.
    pub async fn last_checkpoint(&self) -> Result<Option<CheckpointInfo>, AppError> {
        Ok(match self.inner.store.last_audit_checkpoint().await? {
            Some(c) => Some(CheckpointInfo {
                size: c.size as u64,
                root: hash_of(&c.root)?,
                note: c.note,
            }),
            None => None,
        })
    }

    /// The verifier key auditors use: `<origin>+<key id>+<public key>`.
    pub fn audit_verifier_key(&self) -> String {
        self.inner.log.signer.verifier_key()
    }

    /// The witness file checkpoints are appended to.
    pub fn audit_witness(&self) -> &Path {
        &self.inner.log.cfg.witness
    }

    /// Starts a new witness file after the old one was lost: only when `verify` finds nothing
    /// wrong with the log against no witness at all (every entry, leaf and checkpoint in the
    /// database recomputed), and only where no witness file exists yet. The new file starts
    /// with the database's last checkpoint. Whatever happened before it can no longer be
    /// checked against a witness: the old file, if it turns up, still can.
    pub async fn restart_witness(&self) -> Result<CheckpointInfo, AppError> {
        let log = &self.inner.log;
        let _one = log.sealing.lock().await;
        let _lock = lock_witness(&log.cfg.witness).await?;
        if std::fs::metadata(&log.cfg.witness).is_ok_and(|m| m.len() > 0) {
            return Err(AppError::Witness(format!(
                "{} exists: move it aside first (it is evidence)",
                log.cfg.witness.display()
            )));
        }
        let verifier = log.verifier()?;
        let none = log.cfg.witness.with_extension("none");
        let report = self.verify_audit(&none, &verifier).await?;
        if let Some(p) = report.problem {
            return Err(AppError::Witness(format!("the log does not verify: {p}")));
        }
        let last = self
            .inner
            .store
            .last_audit_checkpoint()
            .await?
            .ok_or(AppError::NotFound(Missing::AuditCheckpoint))?;
        append_witness(&log.cfg.witness, std::slice::from_ref(&last.note))?;
        tracing::warn!(
            size = last.size,
            "audit log: a new witness file was started"
        );
        Ok(CheckpointInfo {
            size: last.size as u64,
            root: hash_of(&last.root)?,
            note: last.note,
        })
    }

    /// The subtree hashes of `ranges`, from the leaf hashes recorded when the entries were
    /// sealed (one pass, streaming). Whatever they give is checked against the signed root
    /// before anyone sees it.
    async fn hash_ranges(&self, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, AppError> {
        let mut h = audit::RangeHasher::new(ranges);
        let mut after = 0i64;
        while !h.is_complete() {
            let leaves = self.inner.store.audit_leaves(after, PAGE).await?;
            let Some(last) = leaves.last().map(|(s, _)| *s) else {
                break;
            };
            for (seq, leaf) in &leaves {
                if h.is_complete() {
                    break;
                }
                if *seq as u64 != h.fed() + 1 {
                    return Err(AppError::Store(StoreError::Corrupt("audit leaves missing")));
                }
                h.push(hash_of(leaf)?);
            }
            after = last;
        }
        h.finish().map_err(|_| {
            AppError::Store(StoreError::Corrupt("audit log shorter than its checkpoint"))
        })
    }

    /// An inclusion proof of event `entry` (from 1) in the latest checkpoint, from the leaves
    /// recorded at sealing and checked against the signed root; checking it needs only the
    /// verifier key.
    pub async fn prove_audit(&self, entry: u64) -> Result<InclusionProof, AppError> {
        let store = &self.inner.store;
        let cp = store
            .last_audit_checkpoint()
            .await?
            .filter(|c| entry >= 1 && c.size as u64 >= entry)
            .ok_or(AppError::NotFound(Missing::AuditEntry))?;
        let size = cp.size as u64;
        let ranges = merkle::inclusion_ranges(entry - 1, size)
            .map_err(|_| AppError::NotFound(Missing::AuditEntry))?;
        let event = store
            .audit_events(entry as i64 - 1, 1)
            .await?
            .into_iter()
            .next()
            .filter(|(s, _)| *s as u64 == entry)
            .ok_or(AppError::NotFound(Missing::AuditEntry))?;
        let path = self.hash_ranges(&ranges).await?;
        let proof = InclusionProof {
            entry: audit_event(event.0, &event.1).encode(),
            index: entry - 1,
            path,
            checkpoint_note: cp.note,
        };
        // Never hand out a proof that does not hold (a tampered database).
        proof.check(&self.inner.log.verifier()?).map_err(|_| {
            AppError::Store(StoreError::Corrupt(
                "audit log does not match its checkpoint",
            ))
        })?;
        Ok(proof)
    }
}

/// Seals every `interval` (the first time after one: a short command seals once, when it
/// ends).
pub(crate) fn start_sequencer(k: &Kernel) {
    k.every(k.inner.log.cfg.interval, |k| async move {
        let sealed = k
            .inner
            .log
            .integrate(&k.inner.store, k.now().0, false)
            .await;
        if let Err(e) = sealed {
            tracing::error!(error = %e, "audit sequencer");
        }
    });
}
