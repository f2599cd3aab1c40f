//! The inclusion-proof bundle `daman audit prove` writes and `daman audit check-proof` checks:
//! one entry, its inclusion path and the signed checkpoint it leads to, as text. Checking it
//! needs only the log's verifier key: no database and no personal data. Modelled on
//! c2sp.org/tlog-proof, with the entry's leaf bytes carried in the bundle:
//!
//! ```text
//! daman.audit/proof@v1
//! entry <base64 leaf bytes>
//! index <leaf index, from 0>
//! <base64 hash>          one line per hash of the inclusion path
//!
//! <signed checkpoint note>
//! ```

use crate::Event;
use crate::merkle::{self, Hash, ProofError};
use crate::note::{Checkpoint, NoteError, NoteVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

const HEADER: &str = "daman.audit/proof@v1";

/// An entry, its inclusion path, and the signed checkpoint of the tree it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub entry: Vec<u8>,
    pub index: u64,
    pub path: Vec<Hash>,
    pub checkpoint_note: String,
}

/// Why a bundle is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    #[error("not a daman audit proof: {0}")]
    Malformed(&'static str),
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("the entry is not an audit event")]
    Entry,
    #[error("the entry says it is number {seq}, the proof is for leaf {index}")]
    WrongIndex { seq: u64, index: u64 },
    #[error("the inclusion proof: {0}")]
    Proof(#[from] ProofError),
}

impl InclusionProof {
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{HEADER}\nentry {}\nindex {}\n",
            B64.encode(&self.entry),
            self.index
        );
        for h in &self.path {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint_note);
        out
    }

    pub fn parse(text: &str) -> Result<InclusionProof, ProofFileError> {
        let bad = ProofFileError::Malformed;
        let Some((head, note)) = text.split_once("\n\n") else {
            return Err(bad("no blank line before the checkpoint"));
        };
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("the first line must be daman.audit/proof@v1"));
        }
        let entry = lines
            .next()
            .and_then(|l| l.strip_prefix("entry "))
            .and_then(|b| B64.decode(b).ok())
            .ok_or(bad("the second line must be 'entry <base64>'"))?;
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .and_then(|n| n.parse().ok())
            .ok_or(bad("the third line must be 'index <number>'"))?;
        let path = lines
            .map(|l| B64.decode(l).ok().and_then(|h| h.try_into().ok()))
            .collect::<Option<Vec<Hash>>>()
            .ok_or(bad("a path line is not a base64 SHA-256 hash"))?;
        Ok(InclusionProof {
            entry,
            index,
            path,
            checkpoint_note: note.to_string(),
        })
    }

    /// Checks the bundle against the log's key: the checkpoint is signed by it, the entry is an
    /// event numbered `index + 1`, and the path leads from the entry to the checkpoint's root.
    pub fn check(&self, verifier: &NoteVerifier) -> Result<(Event, Checkpoint), ProofFileError> {
        let checkpoint = Checkpoint::open(&self.checkpoint_note, verifier)?;
        let event = Event::decode(&self.entry).map_err(|_| ProofFileError::Entry)?;
        if self.index.checked_add(1) != Some(event.seq) {
            return Err(ProofFileError::WrongIndex {
                seq: event.seq,
                index: self.index,
            });
        }
        merkle::verify_inclusion(
            self.index,
            checkpoint.size,
            &merkle::leaf_hash(&self.entry),
            &self.path,
            &checkpoint.root,
        )?;
        Ok((event, checkpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Frontier, NoteSigner};

    fn log(n: u64) -> Vec<Event> {
        (1..=n)
            .map(|seq| Event {
                seq,
                at: 1_790_000_000 + seq as i64,
                principal_id: Some(3),
                role: "agent".into(),
                action: "reveal".into(),
                purpose: Some("registration".into()),
                subject: Some(vec![seq as u8; 16]),
                fields: 3,
                detail: None,
                outcome: "allow".into(),
                request_id: format!("r{seq}"),
            })
            .collect()
    }

    fn bundle(events: &[Event], entry: u64, signer: &NoteSigner) -> InclusionProof {
        let leaves: Vec<Hash> = events.iter().map(Event::leaf_hash).collect();
        let mut f = Frontier::new();
        leaves.iter().for_each(|l| f.push(*l));
        let c = Checkpoint {
            origin: signer.name().into(),
            size: f.size(),
            root: f.root(),
        };
        let ranges = merkle::inclusion_ranges(entry - 1, f.size()).unwrap();
        InclusionProof {
            entry: events[entry as usize - 1].encode(),
            index: entry - 1,
            path: merkle::hash_ranges(&ranges, leaves).unwrap(),
            checkpoint_note: signer.sign(&c.body()).unwrap(),
        }
    }

    #[test]
    fn a_bundle_round_trips_and_checks_with_the_key_alone() {
        let signer = NoteSigner::new("daman.test/audit", &[5; 32]).unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let events = log(13);
        for entry in [1, 7, 13] {
            let p = bundle(&events, entry, &signer);
            let text = p.to_text();
            let back = InclusionProof::parse(&text).unwrap();
            assert_eq!(back, p);
            let (e, c) = back.check(&verifier).unwrap();
            assert_eq!(e, events[entry as usize - 1]);
            assert_eq!(c.size, 13);
        }
    }

    #[test]
    fn a_changed_bundle_is_refused() {
        let signer = NoteSigner::new("daman.test/audit", &[5; 32]).unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let events = log(13);
        let p = bundle(&events, 6, &signer);
        // Another entry's content under this entry's number.
        let mut forged = events[5].clone();
        forged.outcome = "deny".into();
        let q = InclusionProof {
            entry: forged.encode(),
            ..p.clone()
        };
        assert_eq!(
            q.check(&verifier).unwrap_err(),
            ProofFileError::Proof(ProofError::RootMismatch)
        );
        // Another entry (its own bytes) presented as this one.
        let q = InclusionProof {
            entry: events[6].encode(),
            ..p.clone()
        };
        assert!(matches!(
            q.check(&verifier),
            Err(ProofFileError::WrongIndex { seq: 7, index: 5 })
        ));
        // Another key.
        let other = NoteSigner::new("daman.test/audit", &[6; 32]).unwrap();
        let q = bundle(&events, 6, &other);
        assert!(matches!(
            q.check(&verifier),
            Err(ProofFileError::Checkpoint(_))
        ));
        // A truncated path.
        let q = InclusionProof {
            path: p.path[1..].to_vec(),
            ..p
        };
        assert!(q.check(&verifier).is_err());
        assert!(InclusionProof::parse("nonsense").is_err());
    }
}
