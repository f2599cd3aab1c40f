//! Declaration lines stored in blocks: up to [`BLOCK_LINES`] lines of one declaration per row
//! of `declaration_line_blocks`, sorted by person.
//!
//! A block's `data` is, all integers little-endian:
//!
//! ```text
//! version: u8 = 1
//! n: u32                                   lines in the block
//! n × (person: i64, line: i64, len: u32)   sorted by person, in plaintext (as the former
//!                                          person and line-number columns were)
//! n ciphertexts, concatenated              each bound to its own line number by the caller
//! ```
//!
//! The row is keyed by (declaration, last person of the block): an import writes blocks in
//! that order, so both B-trees only append; a person's line in a declaration is in the first
//! block whose last person is at or after them.

use crate::{DeclarationLineRow, Result, StoreError};

/// Most lines in one block.
/// 64 lines of about 250 bytes: a career lookup reads about 16 KiB per declaration of a
/// large employer, while small employers (most of them) still need one row per declaration.
pub const BLOCK_LINES: usize = 64;

const VERSION: u8 = 1;
const ENTRY: usize = 8 + 8 + 4;

/// One row of `declaration_line_blocks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub declaration_id: i64,
    pub last_person: i64,
    pub period: i64,
    pub lines: i64,
    pub data: Vec<u8>,
}

/// Groups lines into blocks: by declaration, sorted by person, at most [`BLOCK_LINES`] each.
/// A person twice in one declaration is a conflict (the import refuses it before; this is the
/// backstop the database's key used to be).
pub(crate) fn blocks_of(lines: &[DeclarationLineRow]) -> Result<Vec<Block>> {
    let mut sorted: Vec<&DeclarationLineRow> = lines.iter().collect();
    sorted.sort_unstable_by_key(|l| (l.declaration_id, l.person_id));
    if sorted
        .windows(2)
        .any(|w| (w[0].declaration_id, w[0].person_id) == (w[1].declaration_id, w[1].person_id))
    {
        return Err(StoreError::Conflict("declared_twice"));
    }
    let mut out = Vec::new();
    for group in sorted.chunk_by(|a, b| a.declaration_id == b.declaration_id) {
        for part in group.chunks(BLOCK_LINES) {
            out.push(encode(part));
        }
    }
    Ok(out)
}

fn encode(part: &[&DeclarationLineRow]) -> Block {
    let body: usize = part.iter().map(|l| l.data.len()).sum();
    let mut data = Vec::with_capacity(1 + 4 + part.len() * ENTRY + body);
    data.push(VERSION);
    data.extend_from_slice(&(part.len() as u32).to_le_bytes());
    for l in part {
        data.extend_from_slice(&l.person_id.to_le_bytes());
        data.extend_from_slice(&l.id.to_le_bytes());
        data.extend_from_slice(&(l.data.len() as u32).to_le_bytes());
    }
    for l in part {
        data.extend_from_slice(&l.data);
    }
    Block {
        declaration_id: part[0].declaration_id,
        last_person: part[part.len() - 1].person_id,
        period: part[0].period,
        lines: part.len() as i64,
        data,
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("declaration line block")
}

/// The (person, line number, ciphertext range) entries of a block, checked.
pub(crate) fn entries(data: &[u8]) -> Result<Vec<(i64, i64, std::ops::Range<usize>)>> {
    let (&version, rest) = data.split_first().ok_or_else(corrupt)?;
    if version != VERSION || rest.len() < 4 {
        return Err(corrupt());
    }
    let n = u32::from_le_bytes(rest[..4].try_into().map_err(|_| corrupt())?) as usize;
    let table = 5usize;
    let mut offset = n
        .checked_mul(ENTRY)
        .and_then(|t| t.checked_add(table))
        .filter(|end| *end <= data.len())
        .ok_or_else(corrupt)?;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let e = &data[table + k * ENTRY..table + (k + 1) * ENTRY];
        let person = i64::from_le_bytes(e[..8].try_into().map_err(|_| corrupt())?);
        let line = i64::from_le_bytes(e[8..16].try_into().map_err(|_| corrupt())?);
        let len = u32::from_le_bytes(e[16..20].try_into().map_err(|_| corrupt())?) as usize;
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= data.len())
            .ok_or_else(corrupt)?;
        out.push((person, line, offset..end));
        offset = end;
    }
    if offset != data.len() {
        return Err(corrupt());
    }
    Ok(out)
}

/// Every line of a block.
pub(crate) fn decode(
    declaration_id: i64,
    period: i64,
    data: &[u8],
) -> Result<Vec<DeclarationLineRow>> {
    Ok(entries(data)?
        .into_iter()
        .map(|(person_id, id, range)| DeclarationLineRow {
            id,
            declaration_id,
            person_id,
            period,
            data: data[range].to_vec(),
        })
        .collect())
}

/// The persons of a block, without copying the ciphertexts.
pub(crate) fn persons(data: &[u8]) -> Result<Vec<i64>> {
    Ok(entries(data)?.into_iter().map(|(p, _, _)| p).collect())
}

/// One person's line in a block, if it holds one.
pub(crate) fn line_of(
    declaration_id: i64,
    period: i64,
    data: &[u8],
    person_id: i64,
) -> Result<Option<DeclarationLineRow>> {
    Ok(decode(declaration_id, period, data)?
        .into_iter()
        .find(|l| l.person_id == person_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(declaration_id: i64, person_id: i64, id: i64) -> DeclarationLineRow {
        DeclarationLineRow {
            id,
            declaration_id,
            person_id,
            period: 202610,
            data: format!("ciphertext of line {id}").into_bytes(),
        }
    }

    #[test]
    fn blocks_round_trip_sorted_by_person_and_split_at_the_limit() {
        // Declaration 7 in file order (persons unsorted), 600 lines; declaration 8, one line.
        let mut lines: Vec<DeclarationLineRow> = (0..600)
            .map(|k| line(7, (k * 7919) % 1000 + 1, 100 + k))
            .collect();
        lines.push(line(8, 5, 700));
        let blocks = blocks_of(&lines).unwrap();
        let mut want = vec![(7, BLOCK_LINES as i64); 600 / BLOCK_LINES];
        want.push((7, (600 % BLOCK_LINES) as i64));
        want.push((8, 1));
        assert_eq!(
            blocks
                .iter()
                .map(|b| (b.declaration_id, b.lines))
                .collect::<Vec<_>>(),
            want
        );
        let mut back = Vec::new();
        let mut last = 0;
        for b in &blocks {
            let got = decode(b.declaration_id, b.period, &b.data).unwrap();
            assert!(got.windows(2).all(|w| w[0].person_id < w[1].person_id));
            assert_eq!(got.last().unwrap().person_id, b.last_person);
            if b.declaration_id == 7 {
                assert!(got[0].person_id > last);
                last = b.last_person;
            }
            back.extend(got);
        }
        back.sort_by_key(|l| l.id);
        assert_eq!(back, lines);
        // One person's line is found in its block, and only there.
        let l = &lines[123];
        let home = blocks
            .iter()
            .find(|b| b.declaration_id == 7 && b.last_person >= l.person_id)
            .unwrap();
        assert_eq!(
            line_of(7, 202610, &home.data, l.person_id)
                .unwrap()
                .as_ref(),
            Some(l)
        );
        let last = blocks.last().unwrap();
        assert_eq!(line_of(8, 202610, &last.data, l.person_id).unwrap(), None);
        assert_eq!(persons(&last.data).unwrap(), vec![5]);
        // A person twice in a declaration is refused.
        assert!(matches!(
            blocks_of(&[line(9, 4, 1), line(9, 4, 2)]),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn a_damaged_block_is_an_error_not_a_panic() {
        let b = &blocks_of(&[line(1, 2, 3), line(1, 4, 5)]).unwrap()[0];
        for cut in 0..b.data.len() {
            assert!(decode(1, 202610, &b.data[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = b.data.clone();
        longer.push(0);
        assert!(decode(1, 202610, &longer).is_err());
        let mut huge = b.data.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(1, 202610, &huge).is_err());
        let mut version = b.data.clone();
        version[0] = 2;
        assert!(decode(1, 202610, &version).is_err());
    }
}
