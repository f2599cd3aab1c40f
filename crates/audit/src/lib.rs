//! The verifiable audit log's pure parts: RFC 6962 Merkle hashing and proofs
//! ([`merkle`]), C2SP signed notes and checkpoints ([`note`]), the leaf encoding of an
//! event ([`event`]) and the offline inclusion-proof bundle ([`proof`]). No I/O: the store
//! keeps the events, the application sequences and signs them (docs/audit.md).

pub mod event;
pub mod merkle;
pub mod note;
pub mod proof;

pub use event::Event;
pub use merkle::{Frontier, Hash, ProofError, RangeHasher};
pub use note::{Checkpoint, NoteError, NoteSigner, NoteVerifier};
pub use proof::{InclusionProof, ProofFileError};
