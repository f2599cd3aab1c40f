//! C2SP signed notes (Ed25519) and tlog checkpoints.
//!
//! A signed note is its text (lines ending in `\n`), a blank line, then one line per signature:
//! `— <key name> base64(key id || signature)`. An Ed25519 key's id is the first 4 bytes of
//! `SHA-256(name || 0x0A || 0x01 || public key)`, and its verifier key string is
//! `<name>+<hex key id>+base64(0x01 || public key)`. A checkpoint is a note whose text is the
//! log's origin, its size in decimal and its root hash in base64, one per line
//! (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

use crate::merkle::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature algorithm byte of Ed25519 note keys.
const ED25519: u8 = 0x01;

/// What is wrong with a note, a key or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    Key(&'static str),
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("the note carries no valid signature by {0}")]
    Unverified(String),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Signs notes with an Ed25519 key under a name (for a log: its origin).
pub struct NoteSigner {
    name: String,
    id: [u8; 4],
    key: SigningKey,
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<NoteSigner, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(
                "the name is empty or holds a space or a '+'",
            ));
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_string(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string an auditor needs: `<name>+<key id>+<public key>`.
    pub fn verifier_key(&self) -> String {
        let mut public = vec![ED25519];
        public.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex(&self.id), B64.encode(public))
    }

    /// `text` (non-empty, ending in a newline, with no blank line) signed.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() || !text.ends_with('\n') || text.contains("\n\n") {
            return Err(NoteError::Malformed(
                "the text must be lines ending in a newline, none blank",
            ));
        }
        let sig: Signature = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{text}\n— {} {}\n", self.name, B64.encode(blob)))
    }
}

/// Checks notes signed by one Ed25519 key.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// From a verifier key string `<name>+<hex key id>+base64(0x01 || public key)`.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::Key("expected <name>+<key id>+<key>"));
        };
        if !valid_name(name) {
            return Err(NoteError::Key("bad name"));
        }
        let raw = B64
            .decode(key)
            .map_err(|_| NoteError::Key("the key is not base64"))?;
        let Some((&ED25519, public)) = raw.split_first() else {
            return Err(NoteError::Key("not an Ed25519 key"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::Key("an Ed25519 key is 32 bytes"))?;
        let expected = key_id(name, &public);
        if !hex(&expected).eq_ignore_ascii_case(id) {
            return Err(NoteError::Key("the key id does not match the key"));
        }
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::Key("not a valid Ed25519 public key"))?;
        Ok(NoteVerifier {
            name: name.to_string(),
            id: expected,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The note's text, if one of its signatures is this key's and holds. Signatures by other
    /// keys (witnesses, a rotated key) are ignored.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let Some(split) = note.rfind("\n\n") else {
            return Err(NoteError::Malformed("no blank line before the signatures"));
        };
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the last signature line has no newline",
            ));
        }
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("— ") else {
                return Err(NoteError::Malformed(
                    "a signature line must start with '— '",
                ));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(NoteError::Malformed(
                    "a signature line is '— <name> <signature>'",
                ));
            };
            let blob = B64
                .decode(blob)
                .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
            if name != self.name || blob.len() != 68 || blob[..4] != self.id {
                continue;
            }
            let Ok(sig) = Signature::from_slice(&blob[4..]) else {
                continue;
            };
            if self.key.verify_strict(text.as_bytes(), &sig).is_ok() {
                return Ok(text);
            }
        }
        Err(NoteError::Unverified(self.name.clone()))
    }
}

/// A log's signed statement of its size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, one per line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint's text (extension lines, if any, are ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Checkpoint(
                "expected origin, size and root lines",
            ));
        };
        if origin.is_empty() {
            return Err(NoteError::Checkpoint("empty origin"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(NoteError::Checkpoint("the size is not a decimal number"));
        }
        let size = size
            .parse()
            .map_err(|_| NoteError::Checkpoint("the size is too large"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Checkpoint(
                "the root is not a base64 SHA-256 hash",
            ))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// Opens a signed checkpoint note with `verifier` and parses it; its origin must be the
    /// verifier's name.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
        let c = Checkpoint::parse(verifier.open(note)?)?;
        if c.origin != verifier.name() {
            return Err(NoteError::Checkpoint("the origin is not the key's name"));
        }
        Ok(c)
    }
}

/// Splits a file of signed notes written one after another (each ends with its signature
/// lines; a note's text never holds a blank line) into the notes.
pub fn split_notes(file: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_sigs = false;
    let mut pos = 0;
    for line in file.split_inclusive('\n') {
        let next = pos + line.len();
        if line == "\n" {
            in_sigs = true;
        } else if in_sigs && !line.starts_with("— ") {
            out.push(&file[start..pos]);
            start = pos;
            in_sigs = false;
        }
        pos = next;
    }
    if start < file.len() {
        out.push(&file[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note (and of c2sp.org/signed-note).
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn reference_signer() -> NoteSigner {
        let raw = B64
            .decode(
                SKEY.strip_prefix("PRIVATE+KEY+PeterNeumann+c74f20a3+")
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(raw[0], ED25519);
        NoteSigner::new("PeterNeumann", raw[1..].try_into().unwrap()).unwrap()
    }

    #[test]
    fn the_reference_note_byte_for_byte() {
        let s = reference_signer();
        assert_eq!(s.verifier_key(), VKEY);
        assert_eq!(s.sign(TEXT).unwrap(), SIGNED);
        let v = NoteVerifier::parse(VKEY).unwrap();
        assert_eq!(v.open(SIGNED).unwrap(), TEXT);
    }

    #[test]
    fn a_changed_note_or_another_key_is_refused() {
        let v = NoteVerifier::parse(VKEY).unwrap();
        let changed = SIGNED.replace("cryptography", "cryptographY");
        assert_eq!(
            v.open(&changed),
            Err(NoteError::Unverified("PeterNeumann".into()))
        );
        let other = NoteSigner::new("PeterNeumann", &[7; 32]).unwrap();
        assert_eq!(
            v.open(&other.sign(TEXT).unwrap()),
            Err(NoteError::Unverified("PeterNeumann".into()))
        );
        // A wrong key id in the key string.
        assert!(NoteVerifier::parse(&VKEY.replace("c74f20a3", "c74f20a4")).is_err());
        // A second, unknown signature is ignored.
        let cosigned = format!("{SIGNED}— witness.example AAAAAAAA\n");
        assert_eq!(v.open(&cosigned).unwrap(), TEXT);
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_bad_sizes() {
        let s = NoteSigner::new("daman.test/audit", &[1; 32]).unwrap();
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        let c = Checkpoint {
            origin: "daman.test/audit".into(),
            size: 42,
            root: [9; 32],
        };
        let note = s.sign(&c.body()).unwrap();
        assert_eq!(Checkpoint::open(&note, &v).unwrap(), c);
        let root = B64.encode([9u8; 32]);
        for bad in [
            format!("daman.test/audit\n042\n{root}\n"),
            format!("daman.test/audit\n-1\n{root}\n"),
            "daman.test/audit\n1\nAAAA\n".to_string(),
            "daman.test/audit\n1\n".to_string(),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
        // Signed by the key but for another origin.
        let other = Checkpoint {
            origin: "elsewhere".into(),
            ..c
        };
        assert!(Checkpoint::open(&s.sign(&other.body()).unwrap(), &v).is_err());
    }

    #[test]
    fn a_file_of_notes_splits_into_them() {
        let s = NoteSigner::new("log", &[2; 32]).unwrap();
        let a = s.sign("log\n1\nAAAA\n").unwrap();
        let b = s.sign("log\n2\nBBBB\n").unwrap();
        let file = format!("{a}{b}");
        assert_eq!(split_notes(&file), vec![a.as_str(), b.as_str()]);
        assert!(split_notes("").is_empty());
    }
}
