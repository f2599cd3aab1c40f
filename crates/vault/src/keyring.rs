//! Versioned data keys, field encryption bound to its place, blind indexes and pseudonyms.

use crate::xchacha::{self, NONCE_LEN, TAG_LEN};
use crate::{KeyEncryptionKey, Random, Secret32, VaultError};
use hkdf::Hkdf;
use hmac::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;

/// Bytes kept of a blind index (HMAC-SHA-256 truncated): 128 bits, so candidates rarely collide;
/// lookups still decrypt and compare every candidate.
pub const BLIND_INDEX_LEN: usize = 16;

/// Ciphertexts of exactly their plaintext's length (read, no longer written).
const FORMAT_V1: u8 = 0x01;
/// Ciphertexts of a plaintext padded to a multiple of [`PAD_BUCKET`] bytes: a dump shows a
/// value's length only to the bucket.
const FORMAT_V2: u8 = 0x02;
/// The length buckets of padded plaintexts.
pub const PAD_BUCKET: usize = 32;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// An encrypted column: the table and column names are bound into every ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Column {
    pub table: &'static str,
    pub column: &'static str,
}

/// A data key as stored: its id and its wrapping by the key-encryption key.
#[derive(Debug, Clone)]
pub struct WrappedKey {
    pub id: u32,
    pub wrapped: Vec<u8>,
}

/// Derives a subkey: HKDF-SHA-256 with the table as salt and a labelled column as info.
fn derive(root: &Secret32, salt: &str, label: &str, column: &str) -> Result<Secret32, VaultError> {
    let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), root.expose());
    let mut out = [0u8; 32];
    hk.expand_multi_info(&[label.as_bytes(), b"\0", column.as_bytes()], &mut out)
        .map_err(|_| VaultError::Format)?;
    let s = Secret32::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(s)
}

/// The unwrapped keys, with a subkey per (data key, column) and an HMAC per indexed column,
/// all derived once at start.
pub struct Keyring {
    primary: u32,
    ciphers: HashMap<(u32, Column), Secret32>,
    indexes: HashMap<Column, Hmac<Sha256>>,
    pseudonyms: Hmac<Sha256>,
    row_ids: Hmac<Sha256>,
    random: Arc<dyn Random>,
}

/// The first keyed person row id ([`Keyring::person_id`]): ids at or above it are keyed, ids
/// below it are serials (rows written before ids were keyed).
pub const PERSON_ID_BASE: i64 = 1 << PERSON_ID_BITS;
const PERSON_ID_BITS: u32 = 52;
const HALF_BITS: u32 = PERSON_ID_BITS / 2;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
/// Rounds of the Feistel network: past the four that make a pseudorandom permutation.
const ROUNDS: u8 = 8;

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A new data key, wrapped for storage.
    pub fn new_data_key(
        kek: &dyn KeyEncryptionKey,
        id: u32,
        random: &dyn Random,
    ) -> Result<WrappedKey, VaultError> {
        let dek = Secret32::generate(random)?;
        Ok(WrappedKey {
            id,
            wrapped: kek.wrap(id, &dek)?,
        })
    }

    /// Unwraps `keys` and derives the subkeys of `encrypted` and `indexed` columns. New
    /// ciphertexts are made with `primary`, which must be one of `keys`; every key decrypts.
    pub fn open(
        kek: &dyn KeyEncryptionKey,
        keys: &[WrappedKey],
        primary: u32,
        encrypted: &[Column],
        indexed: &[Column],
        random: Arc<dyn Random>,
    ) -> Result<Keyring, VaultError> {
        if !keys.iter().any(|k| k.id == primary) {
            return Err(VaultError::UnknownKey(primary));
        }
        let mut ciphers = HashMap::new();
        for k in keys {
            let dek = kek.unwrap(k.id, &k.wrapped)?;
            for c in encrypted {
                ciphers.insert(
                    (k.id, *c),
                    derive(&dek, c.table, "daman:fenc:v1", c.column)?,
                );
            }
        }
        let root = kek.index_root()?;
        let mut indexes = HashMap::new();
        for c in indexed {
            let sub = derive(&root, c.table, "daman:bidx:v1", c.column)?;
            indexes.insert(
                *c,
                <Hmac<Sha256> as KeyInit>::new_from_slice(sub.expose())
                    .map_err(|_| VaultError::Format)?,
            );
        }
        let sub = derive(&root, "audit", "daman:pseudonym:v1", "subject")?;
        let pseudonyms = <Hmac<Sha256> as KeyInit>::new_from_slice(sub.expose())
            .map_err(|_| VaultError::Format)?;
        let sub = derive(&root, "persons", "daman:rowid:v1", "id")?;
        let row_ids = <Hmac<Sha256> as KeyInit>::new_from_slice(sub.expose())
            .map_err(|_| VaultError::Format)?;
        Ok(Keyring {
            primary,
            ciphers,
            indexes,
            pseudonyms,
            row_ids,
            random,
        })
    }

    pub fn primary_key_id(&self) -> u32 {
        self.primary
    }

    /// The highest key id this keyring decrypts with.
    pub fn newest_key_id(&self) -> u32 {
        self.ciphers
            .keys()
            .map(|(k, _)| *k)
            .max()
            .unwrap_or(self.primary)
    }

    /// The key id a ciphertext names (`None` if it is not one).
    pub fn key_id_of(blob: &[u8]) -> Option<u32> {
        (blob.len() >= HEADER_LEN + TAG_LEN && matches!(blob[0], FORMAT_V1 | FORMAT_V2))
            .then(|| u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]))
    }

    /// Whether `blob` is under the primary key or a newer one: nothing for a rotation to do.
    pub fn is_current(&self, blob: &[u8]) -> bool {
        Self::key_id_of(blob).is_some_and(|k| k >= self.primary)
    }

    /// `blob` re-encrypted under the primary key, bound to the same column and row, in its own
    /// format (so of its own length: declarations, which never change, let a rotation through
    /// only so), or `None` if it is under the primary key or a newer one (a rotation never
    /// moves a ciphertext back to an older key). The plaintext never leaves this function (and is wiped).
    pub fn rekey(&self, col: Column, row: i64, blob: &[u8]) -> Result<Option<Vec<u8>>, VaultError> {
        self.rekey_bound(col, row, &[], blob)
    }

    /// [`Keyring::rekey`] of a ciphertext made by [`Keyring::encrypt_bound`] with `context`.
    pub fn rekey_bound(
        &self,
        col: Column,
        row: i64,
        context: &[u8],
        blob: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        if self.is_current(blob) {
            return Ok(None);
        }
        let plain = zeroize::Zeroizing::new(self.decrypt_bound(col, row, context, blob)?);
        self.seal(blob[0], col, row, context, &plain).map(Some)
    }

    /// `blob`, sealed for row `old`, sealed again for row `new` of the same column (under the
    /// primary key, in its own format): what renumbering a row takes, since the row id is
    /// bound into every ciphertext. The plaintext never leaves this function (and is wiped).
    pub fn rebind(
        &self,
        col: Column,
        old: i64,
        new: i64,
        blob: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let plain = zeroize::Zeroizing::new(self.decrypt_bound(col, old, &[], blob)?);
        self.seal(blob[0], col, new, &[], &plain)
    }

    /// The associated data: format, table, column, row and key id, then the caller's
    /// `context` (empty for a plain field). A column is always sealed with a context or
    /// always without, so the fixed-length fields before it keep the encoding unambiguous.
    fn aad(format: u8, col: Column, row: i64, key_id: u32, context: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32 + col.table.len() + col.column.len() + context.len());
        // The format is bound too: a padded ciphertext relabelled unpadded fails to open.
        aad.extend_from_slice(if format == FORMAT_V1 {
            b"daman.v1\0"
        } else {
            b"daman.v2\0"
        });
        aad.extend_from_slice(col.table.as_bytes());
        aad.push(0);
        aad.extend_from_slice(col.column.as_bytes());
        aad.push(0);
        aad.extend_from_slice(&row.to_be_bytes());
        aad.extend_from_slice(&key_id.to_be_bytes());
        aad.extend_from_slice(context);
        aad
    }

    /// Encrypts `plain` for `col` of row `row` under the primary key:
    /// `0x02 | key id (4, BE) | nonce (24) | ciphertext | tag (16)`, the plaintext padded
    /// (ISO/IEC 7816-4: `0x80` then zeros) to the next multiple of [`PAD_BUCKET`] bytes, so
    /// that two values whose lengths differ by less than a bucket seal to one length.
    pub fn encrypt(&self, col: Column, row: i64, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.encrypt_bound(col, row, &[], plain)
    }

    /// [`Keyring::encrypt`], the ciphertext also bound to `context`: bytes stored beside it in
    /// plaintext (a block's directory of persons and line numbers) that must not be changed
    /// without the ciphertext failing to decrypt.
    pub fn encrypt_bound(
        &self,
        col: Column,
        row: i64,
        context: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.seal(FORMAT_V2, col, row, context, plain)
    }

    /// Seals under the primary key in `format`: padded ([`FORMAT_V2`], what daman writes), or
    /// not ([`FORMAT_V1`], only to re-encrypt a ciphertext written before padding).
    fn seal(
        &self,
        format: u8,
        col: Column,
        row: i64,
        context: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let key_id = self.primary;
        let key = self
            .ciphers
            .get(&(key_id, col))
            .ok_or(VaultError::UnknownColumn(col.table, col.column))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce)?;
        let aad = Self::aad(format, col, row, key_id, context);
        // Padded and sealed in place, in the one buffer returned.
        let padded = if format == FORMAT_V2 {
            (plain.len() / PAD_BUCKET + 1) * PAD_BUCKET
        } else {
            plain.len()
        };
        let mut out = Vec::with_capacity(HEADER_LEN + padded + TAG_LEN);
        out.push(format);
        out.extend_from_slice(&key_id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        if format == FORMAT_V2 {
            out.push(0x80);
            out.resize(HEADER_LEN + padded, 0);
        }
        let tag = xchacha::seal_in_place(key.expose(), &nonce, &aad, &mut out[HEADER_LEN..])?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts what [`Keyring::encrypt`] produced for the same column and row, under whichever
    /// key id the ciphertext names.
    pub fn decrypt(&self, col: Column, row: i64, blob: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.decrypt_bound(col, row, &[], blob)
    }

    /// Decrypts what [`Keyring::encrypt_bound`] produced for the same column, row and context.
    pub fn decrypt_bound(
        &self,
        col: Column,
        row: i64,
        context: &[u8],
        blob: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let format = blob.first().copied().ok_or(VaultError::Format)?;
        if blob.len() < HEADER_LEN + TAG_LEN || !matches!(format, FORMAT_V1 | FORMAT_V2) {
            return Err(VaultError::Format);
        }
        let key_id = u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]);
        let nonce: [u8; NONCE_LEN] = blob[5..HEADER_LEN]
            .try_into()
            .map_err(|_| VaultError::Format)?;
        let key = match self.ciphers.get(&(key_id, col)) {
            Some(c) => c,
            None if self.ciphers.keys().any(|(k, _)| *k == key_id) => {
                return Err(VaultError::UnknownColumn(col.table, col.column));
            }
            None => return Err(VaultError::UnknownKey(key_id)),
        };
        let aad = Self::aad(format, col, row, key_id, context);
        let mut plain = xchacha::open(key.expose(), &nonce, &aad, &blob[HEADER_LEN..])?;
        if format == FORMAT_V2 {
            // Authenticated, so well formed unless the key's holder wrote it wrong.
            let end = plain
                .iter()
                .rposition(|b| *b != 0)
                .ok_or(VaultError::Format)?;
            if plain[end] != 0x80 {
                return Err(VaultError::Format);
            }
            plain.truncate(end);
        }
        Ok(plain)
    }

    /// The blind index of `value` in `col`: HMAC-SHA-256 under the column's index key, truncated.
    /// Callers normalise the value first (one canonical form per identifier).
    pub fn blind_index(
        &self,
        col: Column,
        value: &[u8],
    ) -> Result<[u8; BLIND_INDEX_LEN], VaultError> {
        let mut mac = self
            .indexes
            .get(&col)
            .ok_or(VaultError::UnknownColumn(col.table, col.column))?
            .clone();
        mac.update(value);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&full[..BLIND_INDEX_LEN]);
        Ok(out)
    }

    /// A keyed pseudonym for naming a subject in the audit log without naming the person.
    pub fn pseudonym(&self, kind: &str, id: i64) -> [u8; BLIND_INDEX_LEN] {
        let mut mac = self.pseudonyms.clone();
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(&id.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&full[..BLIND_INDEX_LEN]);
        out
    }

    /// A person's pseudonym: over their serial ([`Keyring::person_serial`]), so one person
    /// keeps one pseudonym whether their row id is keyed or not.
    pub fn person_pseudonym(&self, id: i64) -> [u8; BLIND_INDEX_LEN] {
        self.pseudonym("person", self.person_serial(id))
    }

    /// The row id of the person with `serial` (the counter's number, in `[0, 2^52)`): a keyed
    /// permutation of the serial (an 8-round Feistel network over two 26-bit halves, rounds
    /// keyed by HMAC-SHA-256 under a key derived from the index root, not in the database),
    /// plus [`PERSON_ID_BASE`]. Without the key the id says nothing of the serial, so nothing of
    /// the immatriculation number handed out with it; ids stay below 2^53 (exact in JSON).
    pub fn person_id(&self, serial: i64) -> Result<i64, VaultError> {
        let v = u64::try_from(serial).map_err(|_| VaultError::Format)?;
        if v >= 1 << PERSON_ID_BITS {
            return Err(VaultError::Format);
        }
        let (mut l, mut r) = (v >> HALF_BITS, v & HALF_MASK);
        for round in 0..ROUNDS {
            let t = l ^ self.row_id_round(round, r);
            l = r;
            r = t;
        }
        Ok(PERSON_ID_BASE + ((l << HALF_BITS) | r) as i64)
    }

    /// The serial of the person whose row id is `id`: the inverse of [`Keyring::person_id`]
    /// for a keyed id, `id` itself for an id below [`PERSON_ID_BASE`].
    pub fn person_serial(&self, id: i64) -> i64 {
        if !(PERSON_ID_BASE..2 * PERSON_ID_BASE).contains(&id) {
            return id;
        }
        let v = (id - PERSON_ID_BASE) as u64;
        let (mut l, mut r) = (v >> HALF_BITS, v & HALF_MASK);
        for round in (0..ROUNDS).rev() {
            let t = r ^ self.row_id_round(round, l);
            r = l;
            l = t;
        }
        ((l << HALF_BITS) | r) as i64
    }

    fn row_id_round(&self, round: u8, half: u64) -> u64 {
        let mut mac = self.row_ids.clone();
        mac.update(&[round]);
        mac.update(&half.to_be_bytes());
        let full = mac.finalize().into_bytes();
        u64::from_be_bytes([
            full[0], full[1], full[2], full[3], full[4], full[5], full[6], full[7],
        ]) & HALF_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyDir, KeyFileKek, OsRandom};

    const CIN: Column = Column {
        table: "persons",
        column: "cin",
    };
    const RIB: Column = Column {
        table: "persons",
        column: "rib",
    };
    const OTHER: Column = Column {
        table: "employers",
        column: "cin",
    };

    /// A keyring whose primary is the newest of `keys`.
    fn ring(dir: &std::path::Path, keys: &[WrappedKey]) -> Keyring {
        let kek = KeyFileKek::open(
            &KeyDir::open(&dir.join("keys")).unwrap(),
            Arc::new(OsRandom),
        )
        .unwrap();
        let primary = keys.iter().map(|k| k.id).max().unwrap();
        Keyring::open(
            &kek,
            keys,
            primary,
            &[CIN, RIB, OTHER],
            &[CIN],
            Arc::new(OsRandom),
        )
        .unwrap()
    }

    fn setup() -> (tempfile::TempDir, Vec<WrappedKey>) {
        let tmp = tempfile::tempdir().unwrap();
        let kek = KeyFileKek::open(
            &KeyDir::open(&tmp.path().join("keys")).unwrap(),
            Arc::new(OsRandom),
        )
        .unwrap();
        let k1 = Keyring::new_data_key(&kek, 1, &OsRandom).unwrap();
        (tmp, vec![k1])
    }

    #[test]
    fn values_are_padded_to_length_buckets() {
        let (tmp, keys) = setup();
        let r = ring(tmp.path(), &keys);
        let len = |v: &[u8]| r.encrypt(OTHER, 1, v).unwrap().len();
        // Lengths that differ by less than a bucket seal to one length; the next bucket is
        // 32 bytes longer (a value of exactly 32 needs its padding byte in the next one).
        let overhead = HEADER_LEN + TAG_LEN;
        assert_eq!(len(b""), overhead + PAD_BUCKET);
        assert_eq!(len(b"ALI"), len(b"BENJELLOUN ABDELKRIM"));
        assert_eq!(len(&[b'x'; 31]), overhead + PAD_BUCKET);
        assert_eq!(len(&[b'x'; 32]), overhead + 2 * PAD_BUCKET);
        for n in [0usize, 1, 30, 31, 32, 33, 200] {
            let v: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let ct = r.encrypt(OTHER, 1, &v).unwrap();
            assert_eq!(r.decrypt(OTHER, 1, &ct).unwrap(), v, "{n} bytes");
            // Trailing zeros and 0x80 in the value itself survive the padding.
            let mut w = v.clone();
            w.extend_from_slice(&[0x80, 0, 0]);
            let ct = r.encrypt(OTHER, 1, &w).unwrap();
            assert_eq!(r.decrypt(OTHER, 1, &ct).unwrap(), w);
        }
        // A ciphertext written before padding still reads; relabelling a padded one unpadded
        // fails.
        let old = r.seal(FORMAT_V1, OTHER, 1, &[], b"ALI").unwrap();
        assert_eq!(old.len(), HEADER_LEN + 3 + TAG_LEN);
        assert_eq!(r.decrypt(OTHER, 1, &old).unwrap(), b"ALI");
        let mut relabelled = r.encrypt(OTHER, 1, b"ALI").unwrap();
        relabelled[0] = FORMAT_V1;
        assert_eq!(r.decrypt(OTHER, 1, &relabelled), Err(VaultError::Decrypt));
    }

    #[test]
    fn round_trip_and_binding_to_row_column_and_key() {
        let (tmp, keys) = setup();
        let r = ring(tmp.path(), &keys);
        let ct = r.encrypt(CIN, 42, b"AB123456").unwrap();
        assert_eq!(r.decrypt(CIN, 42, &ct).unwrap(), b"AB123456");
        assert_eq!(
            r.decrypt(CIN, 43, &ct),
            Err(VaultError::Decrypt),
            "another row"
        );
        assert_eq!(
            r.decrypt(RIB, 42, &ct),
            Err(VaultError::Decrypt),
            "another column"
        );
        assert_eq!(
            r.decrypt(OTHER, 42, &ct),
            Err(VaultError::Decrypt),
            "another table"
        );
        let mut tampered = ct.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(r.decrypt(CIN, 42, &tampered), Err(VaultError::Decrypt));
        let mut relabelled = ct.clone();
        relabelled[4] = 9;
        assert_eq!(
            r.decrypt(CIN, 42, &relabelled),
            Err(VaultError::UnknownKey(9))
        );
        assert!(!ct.windows(8).any(|w| w == b"AB123456"));
        // Bound to a context: that context and no other, and never without one.
        let bound = r.encrypt_bound(CIN, 42, b"directory", b"AB123456").unwrap();
        assert_eq!(
            r.decrypt_bound(CIN, 42, b"directory", &bound).unwrap(),
            b"AB123456"
        );
        for other in [&b"directorz"[..], b"director", b""] {
            assert_eq!(
                r.decrypt_bound(CIN, 42, other, &bound),
                Err(VaultError::Decrypt)
            );
        }
        assert_eq!(r.decrypt(CIN, 42, &bound), Err(VaultError::Decrypt));
        assert_eq!(
            r.decrypt_bound(CIN, 42, &[], &ct).unwrap(),
            b"AB123456",
            "an empty context is no context"
        );
        assert_ne!(
            r.encrypt(CIN, 42, b"AB123456").unwrap(),
            ct,
            "fresh nonce each time"
        );
    }

    #[test]
    fn rebinding_moves_a_ciphertext_to_another_row() {
        let (tmp, keys) = setup();
        let r = ring(tmp.path(), &keys);
        let ct = r.encrypt(CIN, 7, b"AB123456").unwrap();
        let moved = r.rebind(CIN, 7, 1 << 52, &ct).unwrap();
        assert_eq!(moved.len(), ct.len());
        assert_eq!(r.decrypt(CIN, 1 << 52, &moved).unwrap(), b"AB123456");
        assert_eq!(r.decrypt(CIN, 7, &moved), Err(VaultError::Decrypt));
        assert_eq!(
            r.rebind(CIN, 8, 9, &ct),
            Err(VaultError::Decrypt),
            "not its row"
        );
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let (tmp, mut keys) = setup();
        let old = ring(tmp.path(), &keys)
            .encrypt(RIB, 1, b"011519000001205000534921")
            .unwrap();
        let kek = KeyFileKek::open(
            &KeyDir::open(&tmp.path().join("keys")).unwrap(),
            Arc::new(OsRandom),
        )
        .unwrap();
        keys.push(Keyring::new_data_key(&kek, 2, &OsRandom).unwrap());
        let r = ring(tmp.path(), &keys);
        assert_eq!(r.primary_key_id(), 2);
        assert_eq!(
            r.decrypt(RIB, 1, &old).unwrap(),
            b"011519000001205000534921"
        );
        assert_eq!(r.encrypt(RIB, 1, b"x").unwrap()[1..5], 2u32.to_be_bytes());

        // Re-encryption: to the primary key, same length, same binding; once only.
        let new = r.rekey(RIB, 1, &old).unwrap().unwrap();
        assert_eq!(Keyring::key_id_of(&new), Some(2));
        assert_eq!(Keyring::key_id_of(&old), Some(1));
        assert_eq!(new.len(), old.len());
        assert_eq!(
            r.decrypt(RIB, 1, &new).unwrap(),
            b"011519000001205000534921"
        );
        assert_eq!(r.decrypt(RIB, 2, &new), Err(VaultError::Decrypt));
        assert_eq!(r.rekey(RIB, 1, &new).unwrap(), None);
        assert_eq!(r.rekey(RIB, 2, &old), Err(VaultError::Decrypt));
        // One written before padding stays unpadded, of its length (a declaration's
        // triggers let a rotation change nothing else).
        let unpadded = ring(tmp.path(), &keys[..1])
            .seal(FORMAT_V1, RIB, 1, &[], b"011519000001205000534921")
            .unwrap();
        let moved = r.rekey(RIB, 1, &unpadded).unwrap().unwrap();
        assert_eq!((moved[0], moved.len()), (FORMAT_V1, unpadded.len()));
        assert_eq!(Keyring::key_id_of(&moved), Some(2));
        assert_eq!(
            r.decrypt(RIB, 1, &moved).unwrap(),
            b"011519000001205000534921"
        );

        // A key being distributed decrypts but does not encrypt; one not in the set is refused.
        let kek = KeyFileKek::open(
            &KeyDir::open(&tmp.path().join("keys")).unwrap(),
            Arc::new(OsRandom),
        )
        .unwrap();
        let r1 = Keyring::open(&kek, &keys, 1, &[RIB], &[], Arc::new(OsRandom)).unwrap();
        assert_eq!((r1.primary_key_id(), r1.newest_key_id()), (1, 2));
        assert_eq!(
            r1.rekey(RIB, 1, &new).unwrap(),
            None,
            "never back to an older key"
        );
        assert_eq!(
            r1.decrypt(RIB, 1, &new).unwrap(),
            b"011519000001205000534921"
        );
        assert_eq!(
            Keyring::key_id_of(&r1.encrypt(RIB, 1, b"x").unwrap()),
            Some(1)
        );
        assert_eq!(
            Keyring::open(&kek, &keys, 3, &[RIB], &[], Arc::new(OsRandom)).err(),
            Some(VaultError::UnknownKey(3))
        );
    }

    #[test]
    fn blind_index_is_keyed_and_per_column() {
        let (tmp, keys) = setup();
        let r = ring(tmp.path(), &keys);
        assert_eq!(
            r.blind_index(CIN, b"AB123456").unwrap(),
            r.blind_index(CIN, b"AB123456").unwrap()
        );
        assert_ne!(
            r.blind_index(CIN, b"AB123456").unwrap(),
            r.blind_index(CIN, b"AB123457").unwrap()
        );
        assert_eq!(
            r.blind_index(RIB, b"x"),
            Err(VaultError::UnknownColumn("persons", "rib"))
        );
        let other = tempfile::tempdir().unwrap();
        let kek2 = KeyFileKek::open(
            &KeyDir::open(&other.path().join("keys")).unwrap(),
            Arc::new(OsRandom),
        )
        .unwrap();
        let k = Keyring::new_data_key(&kek2, 1, &OsRandom).unwrap();
        let r2 = Keyring::open(&kek2, &[k], 1, &[CIN], &[CIN], Arc::new(OsRandom)).unwrap();
        assert_ne!(
            r.blind_index(CIN, b"AB123456").unwrap(),
            r2.blind_index(CIN, b"AB123456").unwrap()
        );
        assert_ne!(r.pseudonym("person", 1), r2.pseudonym("person", 1));
        assert_ne!(r.person_id(1).unwrap(), r2.person_id(1).unwrap());
    }

    #[test]
    fn person_ids_are_a_keyed_permutation_of_serials() {
        let dir = tempfile::tempdir().unwrap();
        let kek = KeyFileKek::open(
            &KeyDir::open(&dir.path().join("keys")).unwrap(),
            Arc::new(OsRandom),
        )
        .unwrap();
        let k = Keyring::new_data_key(&kek, 1, &OsRandom).unwrap();
        let r = Keyring::open(&kek, &[k], 1, &[CIN], &[CIN], Arc::new(OsRandom)).unwrap();
        let ids: Vec<i64> = (1..=2000).map(|s| r.person_id(s).unwrap()).collect();
        let mut seen = ids.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ids.len(), "one id per serial");
        for (s, id) in (1..=2000).zip(&ids) {
            assert!((PERSON_ID_BASE..1 << 53).contains(id), "{id}");
            assert_eq!(r.person_serial(*id), s);
            assert_eq!(r.person_pseudonym(*id), r.pseudonym("person", s));
        }
        // An id below the base is a serial (a row written before), itself.
        assert_eq!(r.person_serial(17), 17);
        assert_eq!(r.person_pseudonym(17), r.pseudonym("person", 17));
        // Consecutive serials: ids in no order (about half of the steps go down).
        let down = ids.windows(2).filter(|w| w[1] < w[0]).count();
        assert!((800..1200).contains(&down), "{down} of 1999 steps down");
        assert_eq!(r.person_id(-1), Err(VaultError::Format));
        assert_eq!(r.person_id(PERSON_ID_BASE), Err(VaultError::Format));
    }
}
