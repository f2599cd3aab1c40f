//! `daman audit verify`: the whole log recomputed from the database's entries in one pass
//! and checked against what was recorded when it was sealed, against the database's signed
//! checkpoints and against the witness file's (with consistency proofs for a sample of the
//! witnessed steps). Stops at the first problem and names the entry, or the narrowest range
//! the evidence allows.

use crate::sequencer::{LogProblem, PAGE, VerifyReport, audit_event, read_witness};
use crate::{AppError, Kernel};
use audit::merkle;
use audit::{Checkpoint, Frontier, NoteVerifier};
use std::collections::VecDeque;
use std::path::Path;
use store::{AuditCheckpointRow, AuditRow, Store};

/// Steps between consecutive witnessed checkpoints whose consistency proofs `verify` builds
/// and checks: the first, the last and a few between (each costs a subtree hash per entry).
const CONSISTENCY_SAMPLE: usize = 6;

type ConsistencyCheck = ((Checkpoint, Checkpoint), audit::RangeHasher);

fn consistency_sample(witnessed: &[Checkpoint]) -> Result<Vec<ConsistencyCheck>, AppError> {
    let steps: Vec<(&Checkpoint, &Checkpoint)> = witnessed
        .windows(2)
        .map(|p| (&p[0], &p[1]))
        .filter(|(a, b)| a.size != b.size)
        .collect();
    let every = steps.len().div_ceil(CONSISTENCY_SAMPLE).max(1);
    steps
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i + 1 == steps.len())
        .map(|(_, (a, b))| {
            let ranges = merkle::consistency_ranges(a.size, b.size)
                .map_err(|_| AppError::Internal("consistency"))?;
            Ok((
                ((*a).clone(), (*b).clone()),
                audit::RangeHasher::new(&ranges),
            ))
        })
        .collect()
}

/// The witness file's checkpoints: every note signed by the key, sizes never decreasing; or
/// the first note that is not.
fn witnessed(
    witness: &Path,
    verifier: &NoteVerifier,
) -> Result<Result<Vec<Checkpoint>, LogProblem>, AppError> {
    let text = read_witness(witness)?;
    let mut witnessed: Vec<Checkpoint> = Vec::new();
    for (k, note) in audit::note::split_notes(&text).into_iter().enumerate() {
        let fault = match Checkpoint::open(note, verifier) {
            Err(e) => Some(format!("is not a checkpoint signed by the key ({e})")),
            Ok(c) => match witnessed.last() {
                Some(prev)
                    if c.size < prev.size || (c.size == prev.size && c.root != prev.root) =>
                {
                    Some("does not extend the one before it".to_string())
                }
                _ => {
                    witnessed.push(c);
                    None
                }
            },
        };
        if let Some(f) = fault {
            return Ok(Err(LogProblem {
                entries: None,
                what: format!(
                    "note {} of the witness file {} {f}",
                    k + 1,
                    witness.display()
                ),
            }));
        }
    }
    Ok(Ok(witnessed))
}

/// One pass over the log: the tree recomputed so far, and where each kind of evidence
/// (leaves recorded at sealing, the database's checkpoints, the witness file's) has been
/// read up to.
struct Pass<'a> {
    store: &'a Store,
    verifier: &'a NoteVerifier,
    report: VerifyReport,
    frontier: Frontier,
    /// Entries sealed according to the database's last checkpoint.
    sealed: u64,
    /// The last size whose root matched every checkpoint seen so far.
    good_up_to: u64,
    witnessed: Vec<Checkpoint>,
    /// The next witnessed checkpoint to compare.
    w: usize,
    proofs: Vec<ConsistencyCheck>,
    /// Leaves recorded when sealed, read a page ahead.
    stored: VecDeque<(i64, Vec<u8>)>,
    stored_after: i64,
    stored_done: bool,
    /// The database's checkpoints, read a page ahead.
    db_cps: VecDeque<AuditCheckpointRow>,
    db_after: i64,
    db_done: bool,
}

impl Pass<'_> {
    /// Entry `seq`: numbered next, hashing to the leaf recorded for it, then the checkpoints
    /// of the tree's new size.
    async fn entry(&mut self, seq: i64, row: &AuditRow) -> Result<Option<LogProblem>, AppError> {
        let expected = self.frontier.size() + 1;
        if seq as u64 != expected {
            return Ok(Some(LogProblem::at(
                expected,
                "missing: deleted from the database".into(),
            )));
        }
        let leaf = audit_event(seq, row).leaf_hash();
        if let Some(p) = self.recorded_leaf(seq, &leaf).await? {
            return Ok(Some(p));
        }
        self.frontier.push(leaf);
        for (_, h) in self.proofs.iter_mut() {
            if !h.is_complete() {
                h.push(leaf);
            }
        }
        self.report.entries = self.frontier.size();
        self.checkpoints_at(self.frontier.size()).await
    }

    /// The leaf recorded for `seq` when it was sealed: the same, and there for every sealed
    /// entry.
    async fn recorded_leaf(
        &mut self,
        seq: i64,
        leaf: &merkle::Hash,
    ) -> Result<Option<LogProblem>, AppError> {
        let expected = seq as u64;
        if self.stored.is_empty() && !self.stored_done {
            let page = self.store.audit_leaves(self.stored_after, PAGE).await?;
            self.stored.extend(page);
            match self.stored.back() {
                Some((s, _)) => self.stored_after = *s,
                None => self.stored_done = true,
            }
        }
        while self.stored.front().is_some_and(|(s, _)| *s < seq) {
            self.stored.pop_front();
        }
        match self.stored.front() {
            Some((s, h)) if *s == seq => {
                if h[..] != leaf[..] {
                    return Ok(Some(LogProblem::at(
                        expected,
                        "changed: its content no longer hashes to the leaf recorded when it was sealed".into(),
                    )));
                }
                self.stored.pop_front();
            }
            _ if expected <= self.sealed => {
                return Ok(Some(LogProblem::at(
                    expected,
                    "the leaf recorded when it was sealed was removed from the database".into(),
                )));
            }
            _ => {}
        }
        Ok(None)
    }

    /// Checkpoints at this size: the database's, then the witness file's. A mismatch lies
    /// after the last size that matched.
    async fn checkpoints_at(&mut self, size: u64) -> Result<Option<LogProblem>, AppError> {
        let first = self.good_up_to + 1;
        if self.db_cps.is_empty() && !self.db_done {
            let page = self
                .store
                .audit_checkpoints_after(self.db_after, 1_000)
                .await?;
            self.db_cps.extend(page);
            match self.db_cps.back() {
                Some(c) => self.db_after = c.size,
                None => self.db_done = true,
            }
        }
        let mut root = None;
        while let Some(c) = self.db_cps.front()
            && c.size as u64 <= size
        {
            let c = self
                .db_cps
                .pop_front()
                .ok_or(AppError::Internal("checkpoint"))?;
            if c.size as u64 == size {
                let r = *root.get_or_insert_with(|| self.frontier.root());
                let signed = Checkpoint::open(&c.note, self.verifier).ok();
                if signed.is_none_or(|s| s.size != size || s.root != r)
                    || c.root[..] != r[..]
                    || c.frontier != self.frontier.to_bytes()
                {
                    return Ok(Some(LogProblem::between(
                        first,
                        size,
                        format!(
                            "the checkpoint of {size} entries in the database does not match the entries (or is not signed by the log key)"
                        ),
                    )));
                }
                self.report.db_checkpoints += 1;
                self.good_up_to = size;
            }
        }
        while let Some(c) = self.witnessed.get(self.w)
            && c.size <= size
        {
            if c.size == size {
                let r = *root.get_or_insert_with(|| self.frontier.root());
                if c.root != r {
                    return Ok(Some(LogProblem::between(
                        first,
                        size,
                        format!(
                            "the first {size} entries no longer match the checkpoint the witness file holds for them"
                        ),
                    )));
                }
                self.report.witness_checkpoints += 1;
                self.good_up_to = size;
            }
            self.w += 1;
        }
        Ok(None)
    }

    /// After the last entry: a checkpoint (witnessed or in the database) of more entries
    /// than there are means entries were removed from the end.
    async fn beyond_the_end(&mut self) -> Result<Option<LogProblem>, AppError> {
        let n = self.frontier.size();
        let beyond = match self.witnessed.get(self.w) {
            Some(c) => Some(("the witness file", c.size)),
            None => self
                .db_cps
                .front()
                .cloned()
                .or(self
                    .store
                    .audit_checkpoints_after(self.db_after, 1)
                    .await?
                    .pop())
                .map(|c| ("the database", c.size as u64)),
        };
        Ok(beyond.map(|(whose, size)| {
            LogProblem::at(
                n + 1,
                format!(
                    "missing: {whose} holds a checkpoint of {size} entries, the database has {n}"
                ),
            )
        }))
    }
}

/// Consistency from each witnessed checkpoint to the next follows from every root being
/// recomputed from the same entries (each tree is a prefix of the next). The RFC 9162 proofs a
/// witness would check are also built from the recomputed tree and checked, for a sample of
/// steps (fed in the same pass).
fn consistency(proofs: Vec<ConsistencyCheck>) -> Option<LogProblem> {
    for ((a, b), hasher) in proofs {
        let checked = hasher.finish().ok().and_then(|proof| {
            merkle::verify_consistency(a.size, b.size, &a.root, &b.root, &proof).ok()
        });
        if checked.is_none() {
            return Some(LogProblem::between(
                a.size + 1,
                b.size,
                format!(
                    "the witnessed checkpoints of {} and {} entries are not consistent",
                    a.size, b.size
                ),
            ));
        }
    }
    None
}

impl Kernel {
    /// Checks the whole log: every event's number (none missing), its leaf against the one
    /// recorded when it was sealed (and that one is there, for every sealed entry), every
    /// checkpoint in the database (signed by `verifier`, its root and right edge recomputed from
    /// the events) and every one in the witness file (signed, in order, its root recomputed),
    /// and consistency proofs between witnessed checkpoints. Stops at the first problem and
    /// names the entry, or the narrowest range the evidence allows.
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
        let witnessed = match witnessed(witness, verifier)? {
            Ok(w) => w,
            Err(problem) => {
                report.problem = Some(problem);
                return Ok(report);
            }
        };
        let sealed = store
            .last_audit_checkpoint()
            .await?
            .map_or(0, |c| c.size as u64);
        let mut pass = Pass {
            store,
            verifier,
            report,
            frontier: Frontier::new(),
            sealed,
            good_up_to: 0,
            proofs: consistency_sample(&witnessed)?,
            witnessed,
            w: 0,
            stored: VecDeque::new(),
            stored_after: 0,
            stored_done: false,
            db_cps: VecDeque::new(),
            db_after: 0,
            db_done: false,
        };
        let mut problem = None;
        let mut after = 0i64;
        'pages: loop {
            let events = store.audit_events(after, PAGE).await?;
            if events.is_empty() {
                break;
            }
            for (seq, row) in &events {
                problem = pass.entry(*seq, row).await?;
                if problem.is_some() {
                    break 'pages;
                }
            }
            after = events.last().map(|(s, _)| *s).unwrap_or(after);
        }
        if problem.is_none() {
            problem = pass.beyond_the_end().await?;
        }
        let mut report = pass.report;
        if problem.is_none() {
            problem = consistency(pass.proofs);
        }
        report.problem = problem;
        Ok(report)
    }
}
