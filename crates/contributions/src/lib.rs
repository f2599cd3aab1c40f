//! Contributions: what employers declare and owe. Préétablis issued from the registry, e-BDS
//! declarations imported and checked against them (every error at once; a file accepted whole
//! or not at all; the same file twice changes nothing), contributions computed from the dated
//! rate table, each accepted declaration posted to the double-entry ledger in the same
//! transaction, rectifications that keep the history, rejections kept for the employer,
//! careers, and every file written back byte for byte. Design: docs/declarations.md.
//!
//! Module map, bottom up (each uses only those before it): `codec` (what the sealed columns
//! hold) · `model` (receipts, outcomes) · `rejections` · `pipeline` (batches, ids, what a
//! batch in flight accepted) · `context` (what the registry says of a batch) · `check` (a
//! file against it) · `accept` (the rows an accepted file writes) · `preetabli` · `import` ·
//! `rectify` · `career` · `reading` (receipts, files and lines back) · `renumber` (persons'
//! keyed ids in what the service keeps, migration 0025).
//!
//! The import's sets and maps hash with foldhash: SipHash was 3 % of an import's CPU. Its seed
//! is random per process, so colliding keys cannot be chosen in advance by whoever writes a file.

mod accept;
mod career;
mod check;
mod codec;
mod context;
mod import;
mod model;
mod pipeline;
mod preetabli;
mod reading;
mod rectify;
mod rejections;
mod renumber;

pub use career::CareerLine;
pub use model::{
    ControlSums, DeclarationSummary, ErrorView, ImportFile, ImportOutcome, ParsedFile,
};
pub use pipeline::{
    BatchCut, IMPORT_BATCH_BYTES, IMPORT_BATCH_FILES, IdPool, InFlight, PreparedImport, Unwritten,
    import_batches,
};
pub use rejections::RejectionView;

use kernel::Kernel;

/// The contributions service over the kernel.
#[derive(Clone)]
pub struct Contributions {
    pub(crate) k: Kernel,
}

impl Contributions {
    pub fn new(k: Kernel) -> Contributions {
        Contributions { k }
    }
}
