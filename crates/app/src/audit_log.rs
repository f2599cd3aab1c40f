//! The verifiable audit log (docs/audit.md): the sequencer that integrates appended events into
//! an RFC 6962 tree and signs C2SP checkpoints, the witness file it appends them to, and the
//! verifier and prover behind `daman audit`.
//!
//! Events are appended by [`crate::AuditWriter`] (group commit), numbered densely in commit
//! order. One sequencer at a time (on PostgreSQL, the node holding its advisory lock) reads the
//! events after the last checkpoint, computes their leaf hashes, and records them with a new
//! checkpoint signed by a key kept in the key directory, never in the database; the signed note
//! is then appended to the witness file (fsync), which in production lives on another machine's
//! disk. Before signing, the sequencer checks that the database still holds the last checkpoint
//! the witness file has: it never signs a tree that does not extend what it signed before.

use crate::{App, AppError};
use audit::merkle::{self, Hash};
use audit::{Checkpoint, Event, Frontier, InclusionProof, NoteSigner, NoteVerifier};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::{AuditCheckpointRow, AuditRow, Session, Store, StoreError};
use tokio::sync::Mutex;

/// Events read per query when integrating or verifying.
const PAGE: i64 = 10_000;

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
const SIGNING_KEY: &str = "audit-signing";

pub(crate) struct AuditLog {
    cfg: AuditLogConfig,
    signer: NoteSigner,
    /// The session holding the sequencer's lock (PostgreSQL), once taken; one integration at a
    /// time in this process.
    sequencer: Mutex<Option<Session>>,
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
    /// The first bad entry, when it can be named; else the range it lies in.
    pub first_entry: u64,
    pub last_entry: u64,
    pub what: String,
}

impl LogProblem {
    fn at(entry: u64, what: String) -> LogProblem {
        LogProblem {
            first_entry: entry,
            last_entry: entry,
            what,
        }
    }
}

impl std::fmt::Display for LogProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first_entry == self.last_entry {
            write!(f, "entry {}: {}", self.first_entry, self.what)
        } else {
            write!(
                f,
                "an entry between {} and {}: {}",
                self.first_entry, self.last_entry, self.what
            )
        }
    }
}

/// An event as the tree hashes it.
pub(crate) fn event_of(seq: i64, r: &AuditRow) -> Event {
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
pub fn read_witness(path: &Path) -> Result<String, AppError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(witness_err(path, "cannot read", e)),
    }
}

/// The last checkpoint of a witness file that `verifier` accepts, reading only its end.
fn last_witnessed(path: &Path, verifier: &NoteVerifier) -> Result<Option<Checkpoint>, AppError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(witness_err(path, "cannot open", e)),
    };
    let len = f
        .metadata()
        .map_err(|e| witness_err(path, "cannot read", e))?
        .len();
    // A checkpoint note is a few hundred bytes: the last 8 KiB hold the last complete one.
    let from = len.saturating_sub(8192);
    f.seek(SeekFrom::Start(from))
        .map_err(|e| witness_err(path, "cannot read", e))?;
    let mut tail = String::new();
    f.read_to_string(&mut tail)
        .map_err(|e| witness_err(path, "cannot read", e))?;
    Ok(audit::note::split_notes(&tail)
        .into_iter()
        .rev()
        .find_map(|n| Checkpoint::open(n, verifier).ok()))
}

fn append_witness(path: &Path, notes: &[String]) -> Result<(), AppError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| witness_err(dir, "cannot create", e))?;
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

fn hash_of(b: &[u8]) -> Result<Hash, AppError> {
    b.try_into()
        .map_err(|_| AppError::Store(StoreError::Corrupt("audit hash")))
}

impl AuditLog {
    pub(crate) fn open(cfg: AuditLogConfig, seed: &[u8; 32]) -> Result<AuditLog, AppError> {
        let signer = NoteSigner::new(&cfg.origin, seed)
            .map_err(|_| AppError::Witness(format!("bad audit origin {:?}", cfg.origin)))?;
        Ok(AuditLog {
            cfg,
            signer,
            sequencer: Mutex::new(None),
        })
    }

    pub(crate) fn signing_key_name() -> &'static str {
        SIGNING_KEY
    }

    fn verifier(&self) -> Result<NoteVerifier, AppError> {
        NoteVerifier::parse(&self.signer.verifier_key())
            .map_err(|_| AppError::Internal("audit verifier key"))
    }

    /// Integrates every event appended since the last checkpoint and signs a checkpoint of
    /// them; `None` when there was nothing new, or when another node is the sequencer.
    pub(crate) async fn integrate(
        &self,
        store: &Store,
        now: i64,
    ) -> Result<Option<CheckpointInfo>, AppError> {
        let mut held = self.sequencer.lock().await;
        if held.is_none() {
            let mut s = store.session().await?;
            if !s.try_lock_sequencer().await? {
                return Ok(None);
            }
            *held = Some(s);
        }
        let verifier = self.verifier()?;
        let mut signed = None;
        loop {
            let last = store.last_audit_checkpoint().await?;
            self.check_against_witness(store, last.as_ref(), &verifier)
                .await?;
            let (mut frontier, size) = match &last {
                Some(c) => (
                    Frontier::from_bytes(&c.frontier)
                        .ok_or(AppError::Store(StoreError::Corrupt("audit frontier")))?,
                    c.size,
                ),
                None => (Frontier::new(), 0),
            };
            if frontier.size() != size as u64 {
                return Err(AppError::Store(StoreError::Corrupt("audit frontier")));
            }
            let events = store.audit_events(size, PAGE).await?;
            if events.is_empty() {
                return Ok(signed);
            }
            let mut leaves = Vec::with_capacity(events.len());
            for (seq, row) in &events {
                if *seq as u64 != frontier.size() + 1 {
                    tracing::error!(
                        expected = frontier.size() + 1,
                        found = seq,
                        "audit log: an entry is missing; no checkpoint signed"
                    );
                    return Err(AppError::Witness(format!(
                        "audit entry {} is missing: nothing signed",
                        frontier.size() + 1
                    )));
                }
                let leaf = event_of(*seq, row).leaf_hash();
                frontier.push(leaf);
                leaves.push((*seq, leaf.to_vec()));
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
            match store.integrate_audit(&leaves, &row).await {
                Ok(()) => {}
                // Another sequencer got there first: start again from its checkpoint.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            append_witness(&self.cfg.witness, std::slice::from_ref(&note))?;
            signed = Some(CheckpointInfo {
                size: c.size,
                root: c.root,
                note,
            });
        }
    }

    /// The database's last checkpoint must be the witness file's last one, or extend it (the
    /// witness missed the latest: a crash between commit and append; those are appended now).
    /// Anything else means the database was rolled back or rewritten: nothing is signed.
    async fn check_against_witness(
        &self,
        store: &Store,
        last: Option<&AuditCheckpointRow>,
        verifier: &NoteVerifier,
    ) -> Result<(), AppError> {
        let witnessed = last_witnessed(&self.cfg.witness, verifier)?;
        let refuse = |why: &str| {
            tracing::error!(
                reason = why,
                "audit log: the database does not extend the witness file; no checkpoint signed"
            );
            Err(AppError::Witness(format!(
                "the audit log in the database does not extend the witness file ({why}): nothing signed; run daman audit verify"
            )))
        };
        let Some(w) = witnessed else {
            return Ok(());
        };
        let Some(last) = last else {
            return refuse("the database has no checkpoint");
        };
        if (last.size as u64) < w.size {
            return refuse("the database holds fewer entries than were witnessed");
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
        // Catch the witness up with checkpoints signed after it (each checked: signed by the
        // key and continuing the same tree is what verify establishes; here, the signature).
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

impl App {
    /// Integrates the events appended so far and signs a checkpoint of them (the sequencer
    /// does this every few seconds; commands call it before they exit).
    pub async fn checkpoint_audit(&self) -> Result<Option<CheckpointInfo>, AppError> {
        self.inner
            .log
            .integrate(&self.inner.store, self.now().0 / 1_000_000)
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

    /// Checks the whole log: every event's number (none missing), its leaf against the one
    /// recorded when it was integrated, every checkpoint in the database and every one in the
    /// witness file (signed by `verifier`, and its root recomputed from the events), and that
    /// the witness file's checkpoints follow one another (consistency). Stops at the first
    /// problem and names the entry (or the range it lies in).
    pub async fn verify_audit(
        &self,
        witness: &Path,
        verifier: &NoteVerifier,
    ) -> Result<VerifyReport, AppError> {
        let store = &self.inner.store;
        let mut report = VerifyReport {
            entries: 0,
            db_checkpoints: 0,
            witness_checkpoints: 0,
            problem: None,
        };
        // The witness file: every note signed, sizes never decreasing.
        let text = read_witness(witness)?;
        let mut witnessed: Vec<Checkpoint> = Vec::new();
        for (k, note) in audit::note::split_notes(&text).into_iter().enumerate() {
            let c = Checkpoint::open(note, verifier).map_err(|e| {
                AppError::Witness(format!("note {} of {}: {e}", k + 1, witness.display()))
            })?;
            if let Some(prev) = witnessed.last()
                && (c.size < prev.size || (c.size == prev.size && c.root != prev.root))
            {
                return Err(AppError::Witness(format!(
                    "note {} of {} does not follow the one before it",
                    k + 1,
                    witness.display()
                )));
            }
            witnessed.push(c);
        }
        let mut db_cps: std::collections::VecDeque<AuditCheckpointRow> = Default::default();
        let mut db_after = 0i64;
        let mut w = 0usize;
        // The last size whose root matched every checkpoint seen so far.
        let mut good_up_to = 0u64;
        let mut frontier = Frontier::new();
        let mut stored: std::collections::VecDeque<(i64, Vec<u8>)> = Default::default();
        let mut stored_after = 0i64;
        let (mut stored_done, mut db_done) = (false, false);
        let mut after = 0i64;
        'pages: loop {
            let events = store.audit_events(after, PAGE).await?;
            if events.is_empty() {
                break;
            }
            for (seq, row) in &events {
                let expected = frontier.size() + 1;
                if *seq as u64 != expected {
                    report.problem = Some(LogProblem::at(
                        expected,
                        "missing: deleted from the database".into(),
                    ));
                    break 'pages;
                }
                let leaf = event_of(*seq, row).leaf_hash();
                if stored.is_empty() && !stored_done {
                    stored.extend(store.audit_leaves(stored_after, PAGE).await?);
                    match stored.back() {
                        Some((s, _)) => stored_after = *s,
                        None => stored_done = true,
                    }
                }
                while stored.front().is_some_and(|(s, _)| *s < *seq) {
                    stored.pop_front();
                }
                if let Some((s, h)) = stored.front()
                    && *s == *seq
                {
                    if h[..] != leaf[..] {
                        report.problem = Some(LogProblem::at(
                            expected,
                            "changed: its content no longer hashes to the leaf recorded when it was sealed".into(),
                        ));
                        break 'pages;
                    }
                    stored.pop_front();
                }
                frontier.push(leaf);
                report.entries = frontier.size();
                let size = frontier.size();
                // Checkpoints at this size: the database's, then the witness file's.
                if db_cps.is_empty() && !db_done {
                    db_cps.extend(store.audit_checkpoints_after(db_after, 1_000).await?);
                    match db_cps.back() {
                        Some(c) => db_after = c.size,
                        None => db_done = true,
                    }
                }
                let mut root = None;
                while let Some(c) = db_cps.front()
                    && c.size as u64 <= size
                {
                    let c = db_cps.pop_front().ok_or(AppError::Internal("checkpoint"))?;
                    if c.size as u64 == size {
                        let r = *root.get_or_insert_with(|| frontier.root());
                        let signed = Checkpoint::open(&c.note, verifier).ok();
                        if signed.is_none_or(|s| s.size != size || s.root != r)
                            || c.root[..] != r[..]
                        {
                            report.problem = Some(LogProblem {
                                first_entry: good_up_to + 1,
                                last_entry: size,
                                what: format!(
                                    "the checkpoint of {size} entries in the database does not match the entries (or is not signed by the log key)"
                                ),
                            });
                            break 'pages;
                        }
                        report.db_checkpoints += 1;
                        good_up_to = size;
                    }
                }
                while let Some(c) = witnessed.get(w)
                    && c.size <= size
                {
                    if c.size == size {
                        let r = *root.get_or_insert_with(|| frontier.root());
                        if c.root != r {
                            report.problem = Some(LogProblem {
                                first_entry: good_up_to + 1,
                                last_entry: size,
                                what: format!(
                                    "the first {size} entries no longer match the checkpoint the witness file holds for them"
                                ),
                            });
                            break 'pages;
                        }
                        report.witness_checkpoints += 1;
                        good_up_to = size;
                    }
                    w += 1;
                }
            }
            after = events.last().map(|(s, _)| *s).unwrap_or(after);
        }
        if report.problem.is_none() {
            let n = frontier.size();
            if let Some(c) = witnessed.get(w) {
                report.problem = Some(LogProblem::at(
                    n + 1,
                    format!(
                        "missing: the witness file holds a checkpoint of {} entries, the database has {n}",
                        c.size
                    ),
                ));
            } else if let Some(c) = db_cps
                .front()
                .cloned()
                .or(store.audit_checkpoints_after(db_after, 1).await?.pop())
            {
                report.problem = Some(LogProblem::at(
                    n + 1,
                    format!(
                        "missing: the database holds a checkpoint of {} entries and only {n} entries",
                        c.size
                    ),
                ));
            }
        }
        // Consistency from each witnessed checkpoint to the next: implied when every root was
        // recomputed from the same entries; proven explicitly from the recomputed tree.
        if report.problem.is_none() && witnessed.len() >= 2 {
            self.check_witness_consistency(&witnessed, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn check_witness_consistency(
        &self,
        witnessed: &[Checkpoint],
        report: &mut VerifyReport,
    ) -> Result<(), AppError> {
        // Each pair's proof is hashed in its own pass over the events (the ranges of several
        // proofs overlap).
        let mut pairs: Vec<(&Checkpoint, &Checkpoint)> = witnessed
            .windows(2)
            .map(|p| (&p[0], &p[1]))
            .filter(|(a, b)| a.size != b.size)
            .collect();
        // Proving every pair on a long witness file costs a pass each: prove the first, the
        // last and up to 30 evenly spread pairs (all roots were recomputed above anyway).
        if pairs.len() > 32 {
            let step = pairs.len() / 30;
            let keep: Vec<_> = pairs
                .iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i == pairs.len() - 1)
                .map(|(_, p)| *p)
                .collect();
            pairs = keep;
        }
        for (a, b) in pairs {
            let ranges = merkle::consistency_ranges(a.size, b.size)
                .map_err(|_| AppError::Internal("consistency"))?;
            let proof = self.hash_ranges(&ranges).await?;
            if merkle::verify_consistency(a.size, b.size, &a.root, &b.root, &proof).is_err() {
                report.problem = Some(LogProblem {
                    first_entry: a.size + 1,
                    last_entry: b.size,
                    what: format!(
                        "the witnessed checkpoints of {} and {} entries are not consistent",
                        a.size, b.size
                    ),
                });
                return Ok(());
            }
        }
        Ok(())
    }

    /// The subtree hashes of `ranges`, from leaf hashes recomputed from the events (one pass
    /// over them, streaming).
    async fn hash_ranges(&self, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, AppError> {
        let mut h = audit::RangeHasher::new(ranges);
        let mut after = 0i64;
        while !h.is_complete() {
            let events = self.inner.store.audit_events(after, PAGE).await?;
            if events.is_empty() {
                break;
            }
            for (seq, row) in &events {
                if h.is_complete() {
                    break;
                }
                h.push(event_of(*seq, row).leaf_hash());
            }
            after = events.last().map(|(s, _)| *s).unwrap_or(after);
        }
        h.finish().map_err(|_| {
            AppError::Store(StoreError::Corrupt("audit log shorter than its checkpoint"))
        })
    }

    /// An inclusion proof of event `entry` (from 1) in the latest checkpoint that holds it,
    /// recomputed from the events; checking it needs only the verifier key.
    pub async fn prove_audit(&self, entry: u64) -> Result<InclusionProof, AppError> {
        let store = &self.inner.store;
        let cp = store
            .last_audit_checkpoint()
            .await?
            .filter(|c| entry >= 1 && c.size as u64 >= entry)
            .ok_or(AppError::NotFound("audit entry in a checkpoint"))?;
        let size = cp.size as u64;
        let ranges = merkle::inclusion_ranges(entry - 1, size)
            .map_err(|_| AppError::NotFound("audit entry in a checkpoint"))?;
        let event = store
            .audit_events(entry as i64 - 1, 1)
            .await?
            .into_iter()
            .next()
            .filter(|(s, _)| *s as u64 == entry)
            .ok_or(AppError::NotFound("audit entry"))?;
        let path = self.hash_ranges(&ranges).await?;
        let proof = InclusionProof {
            entry: event_of(event.0, &event.1).encode(),
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

/// Runs the sequencer every `interval` for as long as the application lives (a weak handle:
/// it stops when the last [`App`] is dropped).
pub(crate) fn start_sequencer(app: &App) {
    let weak = std::sync::Arc::downgrade(&app.inner);
    let interval = app.inner.log.cfg.interval;
    tokio::spawn(async move {
        // The first seal after one interval: a short command seals once, when it ends.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let app = App { inner };
            if let Err(e) = app.checkpoint_audit().await {
                tracing::error!(error = %e, "audit sequencer");
            }
        }
    });
}
