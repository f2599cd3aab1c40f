//! The import's pipeline: where batches end, ids reserved in blocks, and what batches prepared
//! but not yet written accepted (so the next one is checked against them).

use ebds::EbdsError;
use foldhash::{HashMap, HashMapExt, HashSet};
use std::collections::VecDeque;
use store::ImportBatch;

use crate::model::{DeclarationSummary, ImportOutcome};
use kernel::AppError;

/// Files imported per transaction by [`App::import_declarations`].
pub const IMPORT_BATCH_FILES: usize = 10_000;
/// Bytes of files per transaction: a batch closes with the file that reaches this many. A
/// batch of the largest employers' files is then no longer than one of small ones, so the
/// pipeline fills and drains quickly and memory is bounded by the bytes, not the files.
pub const IMPORT_BATCH_BYTES: u64 = 32 << 20;

/// Where an import's batches end, seen one file at a time: a batch closes with the file that
/// makes it [`IMPORT_BATCH_FILES`] files or [`IMPORT_BATCH_BYTES`] bytes.
#[derive(Debug, Default)]
pub struct BatchCut {
    pub(crate) files: usize,
    pub(crate) bytes: u64,
}

impl BatchCut {
    /// Counts a file of `size` bytes into the open batch; true if the batch closes with it
    /// (the next file opens another).
    pub fn add(&mut self, size: u64) -> bool {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(size);
        let full = self.files >= IMPORT_BATCH_FILES || self.bytes >= IMPORT_BATCH_BYTES;
        if full {
            *self = BatchCut::default();
        }
        full
    }
}

/// The batches of an import of files of these sizes, in order ([`BatchCut`]).
pub fn import_batches(sizes: &[u64]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut cut = BatchCut::default();
    let mut start = 0;
    for (i, size) in sizes.iter().enumerate() {
        if cut.add(*size) {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// What a prepared batch accepted, for checking the next batch before this one is committed.
#[derive(Debug, Default, Clone)]
pub struct InFlight {
    pub(crate) accepted: HashSet<(i64, i64, i64)>,
    pub(crate) digests: HashMap<Vec<u8>, DeclarationSummary>,
    pub(crate) declared: Declared,
}

/// Who was declared for an employer and a period (accepted before, or earlier in the import):
/// a list of persons for each (employer, period), added to once a file, not once a line (four
/// million lines a month). A file is checked against the set of its own employer and period,
/// built only when that employer already declared for the period.
#[derive(Debug, Default, Clone)]
pub(crate) struct Declared(pub(crate) HashMap<(i64, i64), Vec<i64>>);

impl Declared {
    pub(crate) fn add(
        &mut self,
        employer: i64,
        period: i64,
        persons: impl IntoIterator<Item = i64>,
    ) {
        self.0
            .entry((employer, period))
            .or_default()
            .extend(persons);
    }

    pub(crate) fn extend(&mut self, other: &Declared) {
        for (&(employer, period), persons) in &other.0 {
            self.add(employer, period, persons.iter().copied());
        }
    }

    /// The persons already declared for `employer` and `period`.
    pub(crate) fn of(&self, employer: i64, period: i64) -> HashSet<i64> {
        self.0
            .get(&(employer, period))
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets that `persons` were declared for `employer` and `period` (the declaration
    /// that declared them is being replaced).
    pub(crate) fn forget(&mut self, employer: i64, period: i64, persons: &HashSet<i64>) {
        if let Some(p) = self.0.get_mut(&(employer, period)) {
            p.retain(|x| !persons.contains(x));
        }
    }
}

/// What the batches of an import that may not be committed yet accepted, oldest first: at most
/// [`Unwritten::DEPTH`] of them. The next batch is checked against them as against the
/// database ([`App::prepare_import`]).
#[derive(Debug, Default)]
pub struct Unwritten(pub(crate) VecDeque<InFlight>);

impl Unwritten {
    /// Batches an import may have prepared and not committed when it prepares the next: the one
    /// being written and the one in the writer's queue of one (`daman ebds import`).
    pub const DEPTH: usize = 2;

    /// Adds the batch just prepared. The oldest beyond [`Unwritten::DEPTH`] is forgotten: it
    /// was committed before the writer took the batches after it.
    pub fn push(&mut self, batch: InFlight) {
        self.0.push_back(batch);
        while self.0.len() > Self::DEPTH {
            self.0.pop_front();
        }
    }
}

/// A batch checked and encrypted, ready to be written by [`App::commit_import`].
pub struct PreparedImport {
    pub(crate) outcomes: Vec<Option<ImportOutcome>>,
    /// The errors of each file rejected, kept once the batch is written ([`App::keep_rejection`]).
    pub(crate) rejections: Vec<Vec<EbdsError>>,
    pub(crate) batch: ImportBatch,
    pub in_flight: InFlight,
}

impl PreparedImport {
    /// Declaration lines the batch will write.
    pub fn lines(&self) -> usize {
        self.batch.blocks.iter().map(|b| b.lines as usize).sum()
    }
}

/// Ids taken from the database's counters in blocks, so that preparing a batch rarely needs the
/// write lock (taking a block does: it then waits for the batch being written, if any). Unused
/// ids are gaps, never reused.
pub struct IdPool {
    pub(crate) block: i64,
    pub(crate) ranges: HashMap<&'static str, (i64, i64)>,
}

impl IdPool {
    /// Takes exactly what is asked each time (single uploads).
    pub fn exact() -> IdPool {
        IdPool {
            block: 0,
            ranges: HashMap::new(),
        }
    }

    /// Takes at least `block` ids at a time (bulk imports).
    pub fn blocks(block: i64) -> IdPool {
        IdPool {
            block,
            ranges: HashMap::new(),
        }
    }

    /// Reserves `n` ids of counter `name` now (before a pipeline starts, so that preparing a
    /// batch does not wait for the write lock to take them).
    pub async fn reserve(
        &mut self,
        store: &store::Store,
        name: &'static str,
        n: i64,
    ) -> Result<(), AppError> {
        if n > 0 {
            let first = store.allocate(name, n).await?;
            self.ranges.insert(name, (first, first + n));
        }
        Ok(())
    }

    pub(crate) async fn take(
        &mut self,
        store: &store::Store,
        name: &'static str,
        n: i64,
    ) -> Result<i64, AppError> {
        let (next, end) = self.ranges.get(name).copied().unwrap_or((0, 0));
        if end - next >= n {
            self.ranges.insert(name, (next + n, end));
            return Ok(next);
        }
        let want = n.max(self.block);
        let first = store.allocate(name, want).await?;
        self.ranges.insert(name, (first + n, first + want));
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_batches_are_bounded_by_files_and_bytes_and_cover_every_file_once() {
        let half = IMPORT_BATCH_BYTES / 2;
        // A batch closes with the file that reaches the bound in bytes: a file larger than the
        // bound is alone.
        assert_eq!(
            import_batches(&[half, half - 1, 1, IMPORT_BATCH_BYTES * 3, 1, 1]),
            vec![0..3, 3..4, 4..6]
        );
        let small = vec![100u64; IMPORT_BATCH_FILES * 2 + 5];
        assert_eq!(
            import_batches(&small),
            vec![
                0..IMPORT_BATCH_FILES,
                IMPORT_BATCH_FILES..IMPORT_BATCH_FILES * 2,
                IMPORT_BATCH_FILES * 2..IMPORT_BATCH_FILES * 2 + 5
            ]
        );
        assert!(import_batches(&[]).is_empty());
    }
}
