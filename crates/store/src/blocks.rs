//! Declaration lines stored in blocks: up to [`BLOCK_LINES`] lines of one declaration per row
//! of `declaration_line_blocks`, sorted by person, sealed together.
//!
//! A block's `data` is, all integers little-endian:
//!
//! ```text
//! version: u8 = 2
//! n: u32                          lines in the block
//! n × (person: i64, line: i64)    the directory: sorted by person, in plaintext (the
//!                                 career and the import's checks find persons without keys)
//! sealed                          one ciphertext of n × (len: u16, payload), the lines in
//!                                 directory order, bound to everything before it
//! ```
//!
//! The ciphertext is made and opened by the caller, which holds the keys: this module sees the
//! plaintext only as bytes passed through (kept in [`Zeroizing`] buffers). Binding the
//! directory into the ciphertext means that no line can be moved to another person or number,
//! and a payload's length is not visible (only the block's).
//!
//! The row is keyed by (declaration, last person of the block): an import writes blocks in
//! that order, so both B-trees only append; a person's line in a declaration is in the first
//! block whose last person is at or after them.

use crate::{Result, StoreError};
use std::ops::Range;
use zeroize::{Zeroize, Zeroizing};

/// Most lines in one block.
/// 64 lines of about 100 bytes: a career lookup reads and opens about 6 KiB per declaration of
/// a large employer, while small employers (most of them) still need one row per declaration.
pub const BLOCK_LINES: usize = 64;

const VERSION: u8 = 2;
/// Room made for a line's payload before it is written (an e-BDS record is 260 characters).
const LINE_ROOM: usize = 1024;
const ENTRY: usize = 8 + 8;
const HEAD: usize = 1 + 4;

/// One row of `declaration_line_blocks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineBlock {
    pub declaration_id: i64,
    pub last_person: i64,
    pub period: i64,
    pub lines: i64,
    pub data: Vec<u8>,
}

/// The lines of one declaration, gathered in plaintext, then sealed into blocks
/// ([`LineBlocks::seal`]).
#[derive(Default)]
pub struct LineBlocks {
    /// (person, line number, payload's range in `payloads`).
    entries: Vec<(i64, i64, Range<usize>)>,
    payloads: Zeroizing<Vec<u8>>,
}

impl LineBlocks {
    /// Adds line number `line` of `person`, its payload written by `write` (appending to the
    /// buffer it is given).
    pub fn push(&mut self, person: i64, line: i64, write: impl FnOnce(&mut Vec<u8>)) {
        reserve_wiped(&mut self.payloads, LINE_ROOM);
        let start = self.payloads.len();
        write(&mut self.payloads);
        self.entries
            .push((person, line, start..self.payloads.len()));
    }

    /// Sorts the lines by person, cuts them into blocks of at most [`BLOCK_LINES`] and seals
    /// each with `seal(context, plaintext)`, the context being the block's bytes before its
    /// ciphertext. Empties `self` for the next declaration. A person twice in one declaration
    /// is a conflict (the import refuses it before; this is the backstop).
    pub fn seal<E: From<StoreError>>(
        &mut self,
        declaration_id: i64,
        period: i64,
        mut seal: impl FnMut(&[u8], &[u8]) -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<Vec<LineBlock>, E> {
        let sealed = self.seal_all(declaration_id, period, &mut seal);
        self.clear();
        sealed
    }

    fn seal_all<E: From<StoreError>>(
        &mut self,
        declaration_id: i64,
        period: i64,
        seal: &mut impl FnMut(&[u8], &[u8]) -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<Vec<LineBlock>, E> {
        self.entries.sort_unstable_by_key(|e| e.0);
        if self.entries.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(StoreError::Conflict("declared_twice").into());
        }
        let mut out = Vec::with_capacity(self.entries.len().div_ceil(BLOCK_LINES));
        let mut plain = Zeroizing::new(Vec::new());
        for part in self.entries.chunks(BLOCK_LINES) {
            plain.zeroize();
            reserve_wiped(&mut plain, part.iter().map(|e| 2 + e.2.len()).sum());
            let mut data = Vec::with_capacity(HEAD + part.len() * ENTRY);
            data.push(VERSION);
            data.extend_from_slice(&(part.len() as u32).to_le_bytes());
            for (person, line, range) in part {
                data.extend_from_slice(&person.to_le_bytes());
                data.extend_from_slice(&line.to_le_bytes());
                let len = u16::try_from(range.len())
                    .map_err(|_| StoreError::Corrupt("declaration line too long"))?;
                plain.extend_from_slice(&len.to_le_bytes());
                plain.extend_from_slice(&self.payloads[range.clone()]);
            }
            let sealed = seal(&data, &plain)?;
            data.extend_from_slice(&sealed);
            out.push(LineBlock {
                declaration_id,
                last_person: part[part.len() - 1].0,
                period,
                lines: part.len() as i64,
                data,
            });
        }
        Ok(out)
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.payloads.zeroize();
    }
}

/// Makes room for `extra` more bytes in a plaintext buffer without leaving a copy behind:
/// when it must grow, a larger buffer is allocated and the old one is wiped as it is dropped
/// (a `Vec` growing by itself frees its old buffer as it is).
fn reserve_wiped(buf: &mut Zeroizing<Vec<u8>>, extra: usize) {
    if buf.capacity() - buf.len() < extra {
        let mut bigger = Zeroizing::new(Vec::with_capacity(
            (buf.len() + extra).max(2 * buf.capacity()),
        ));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
}

/// A block opened: its lines in person order.
pub struct OpenedBlock {
    entries: Vec<(i64, i64, Range<usize>)>,
    plain: Zeroizing<Vec<u8>>,
}

impl OpenedBlock {
    /// (person, line number, payload) of each line, by person.
    pub fn lines(&self) -> impl Iterator<Item = (i64, i64, &[u8])> {
        self.entries
            .iter()
            .map(|(p, l, r)| (*p, *l, &self.plain[r.clone()]))
    }

    /// One person's line, if the block holds one: (line number, payload).
    pub fn line_of(&self, person: i64) -> Option<(i64, &[u8])> {
        self.lines()
            .find(|(p, _, _)| *p == person)
            .map(|(_, l, payload)| (l, payload))
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("declaration line block")
}

fn read_i64(b: &[u8]) -> Result<i64> {
    Ok(i64::from_le_bytes(b.try_into().map_err(|_| corrupt())?))
}

/// Where a block's ciphertext begins (after its directory), checked against its length.
fn directory_end(data: &[u8]) -> Result<usize> {
    if data.len() < HEAD || data[0] != VERSION {
        return Err(corrupt());
    }
    let n = u32::from_le_bytes(data[1..HEAD].try_into().map_err(|_| corrupt())?) as usize;
    n.checked_mul(ENTRY)
        .and_then(|t| t.checked_add(HEAD))
        .filter(|end| *end < data.len())
        .ok_or_else(corrupt)
}

/// A block's directory, (person, line number) in order, and where its ciphertext begins.
fn directory(data: &[u8]) -> Result<(Vec<(i64, i64)>, usize)> {
    let end = directory_end(data)?;
    let dir = data[HEAD..end]
        .chunks_exact(ENTRY)
        .map(|e| Ok((read_i64(&e[..8])?, read_i64(&e[8..])?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((dir, end))
}

/// A block's context (everything its ciphertext is bound to) and its ciphertext.
pub fn sealed_part(data: &[u8]) -> Result<(&[u8], &[u8])> {
    Ok(data.split_at(directory_end(data)?))
}

/// The block with its ciphertext replaced (a rotation's re-encryption).
pub fn with_sealed(data: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    let (context, _) = sealed_part(data)?;
    let mut out = Vec::with_capacity(context.len() + sealed.len());
    out.extend_from_slice(context);
    out.extend_from_slice(sealed);
    Ok(out)
}

/// Opens a block with `open(context, ciphertext)` and checks the plaintext against the
/// directory.
pub fn open_block<E: From<StoreError>>(
    data: &[u8],
    open: impl FnOnce(&[u8], &[u8]) -> std::result::Result<Vec<u8>, E>,
) -> std::result::Result<OpenedBlock, E> {
    let (dir, end) = directory(data)?;
    let plain = Zeroizing::new(open(&data[..end], &data[end..])?);
    let mut entries = Vec::with_capacity(dir.len());
    let mut at = 0usize;
    for (person, line) in dir {
        let len = plain
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(corrupt)?;
        let range = at + 2..at + 2 + len;
        if range.end > plain.len() {
            return Err(corrupt().into());
        }
        at = range.end;
        entries.push((person, line, range));
    }
    if at != plain.len() {
        return Err(corrupt().into());
    }
    Ok(OpenedBlock { entries, plain })
}

/// The persons of a block, without opening it.
pub fn persons(data: &[u8]) -> Result<Vec<i64>> {
    Ok(directory(data)?.0.into_iter().map(|(p, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the keyring: the plaintext reversed, then the context's length and a
    /// checksum of the context, so that a changed context fails to open.
    fn seal(context: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut out: Vec<u8> = plain.iter().rev().copied().collect();
        out.extend_from_slice(&(context.len() as u32).to_le_bytes());
        out.push(
            context
                .iter()
                .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(*b)),
        );
        Ok(out)
    }

    fn open(context: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let (body, tail) = sealed
            .split_at_checked(sealed.len().checked_sub(5).ok_or_else(corrupt)?)
            .ok_or_else(corrupt)?;
        if seal(context, &[])? != tail {
            return Err(StoreError::Corrupt("does not open"));
        }
        Ok(body.iter().rev().copied().collect())
    }

    fn payload(line: i64) -> String {
        format!("line {line}")
    }

    fn sealed(declaration_id: i64, lines: &[(i64, i64)]) -> Vec<LineBlock> {
        let mut b = LineBlocks::default();
        for (person, line) in lines {
            b.push(*person, *line, |out| {
                out.extend_from_slice(payload(*line).as_bytes())
            });
        }
        b.seal(declaration_id, 202610, seal).unwrap()
    }

    #[test]
    fn blocks_round_trip_sorted_by_person_and_split_at_the_limit() {
        // 600 lines in file order (persons unsorted).
        let lines: Vec<(i64, i64)> = (0..600).map(|k| ((k * 7919) % 1000 + 1, 100 + k)).collect();
        let blocks = sealed(7, &lines);
        let mut want = vec![BLOCK_LINES as i64; 600 / BLOCK_LINES];
        want.push((600 % BLOCK_LINES) as i64);
        assert_eq!(blocks.iter().map(|b| b.lines).collect::<Vec<_>>(), want);
        let mut back = Vec::new();
        let mut last = 0;
        for b in &blocks {
            assert_eq!((b.declaration_id, b.period), (7, 202610));
            let opened = open_block(&b.data, open).unwrap();
            let got: Vec<(i64, i64, String)> = opened
                .lines()
                .map(|(p, l, x)| (p, l, String::from_utf8(x.to_vec()).unwrap()))
                .collect();
            assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
            assert_eq!(got.last().unwrap().0, b.last_person);
            assert!(got[0].0 > last);
            last = b.last_person;
            assert_eq!(
                persons(&b.data).unwrap(),
                got.iter().map(|g| g.0).collect::<Vec<_>>()
            );
            back.extend(got);
        }
        back.sort_by_key(|l| l.1);
        assert_eq!(
            back,
            lines
                .iter()
                .map(|(p, l)| (*p, *l, payload(*l)))
                .collect::<Vec<_>>()
        );
        // One person's line is found in its block, and only there.
        let (person, line) = lines[123];
        let home = blocks.iter().find(|b| b.last_person >= person).unwrap();
        let opened = open_block(&home.data, open).unwrap();
        assert_eq!(
            opened.line_of(person),
            Some((line, payload(line).as_bytes()))
        );
        assert_eq!(opened.line_of(1001), None);
        // A person twice in a declaration is refused, and the builder is empty again.
        let mut b = LineBlocks::default();
        b.push(4, 1, |_| {});
        b.push(4, 2, |_| {});
        assert!(matches!(
            b.seal(9, 202610, seal),
            Err(StoreError::Conflict("declared_twice"))
        ));
        assert!(b.seal(9, 202610, seal).unwrap().is_empty());
    }

    #[test]
    fn the_directory_is_bound_to_the_ciphertext() {
        let b = &sealed(1, &[(2, 3), (4, 5)])[0];
        // Another person or line number in the directory: the ciphertext no longer opens.
        for at in [HEAD, HEAD + 8, HEAD + ENTRY] {
            let mut moved = b.data.clone();
            moved[at] ^= 1;
            assert!(open_block(&moved, open).is_err(), "changed at {at}");
        }
        // Re-sealed in place (a rotation), it opens to the same lines.
        let (context, ct) = sealed_part(&b.data).unwrap();
        assert_eq!(context.len(), HEAD + 2 * ENTRY);
        let again = with_sealed(
            &b.data,
            &seal(context, &open(context, ct).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(again, b.data);
    }

    #[test]
    fn a_damaged_block_is_an_error_not_a_panic() {
        let b = &sealed(1, &[(2, 3), (4, 5)])[0];
        for cut in 0..b.data.len() {
            assert!(open_block(&b.data[..cut], open).is_err(), "cut at {cut}");
        }
        let mut huge = b.data.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(open_block(&huge, open).is_err());
        assert!(persons(&huge).is_err());
        let mut version = b.data.clone();
        version[0] = 1;
        assert!(open_block(&version, open).is_err());
        assert!(persons(&version).is_err());
        // A plaintext that does not match the directory (a line too many or too few).
        let (context, _) = sealed_part(&b.data).unwrap();
        for plain in [
            &b"\x01\x00a"[..],
            b"\x01\x00a\x01\x00b\x01\x00c",
            b"\x05\x00ab",
        ] {
            let data = with_sealed(&b.data, &seal(context, plain).unwrap()).unwrap();
            assert!(open_block(&data, open).is_err());
        }
    }
}
