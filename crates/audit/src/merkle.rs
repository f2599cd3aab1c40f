//! RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`; the tree over `n` leaves splits at the largest power of
//! two smaller than `n` and is never padded. Proofs are produced from ranges of leaves: a proof
//! names the ranges whose subtree hashes it needs ([`inclusion_ranges`],
//! [`consistency_ranges`]), and [`hash_ranges`] computes them in one pass over the leaf hashes,
//! so a log kept in a database never needs the whole tree in memory.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the older tree ({old}) is larger than the newer one ({new})")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The right edge of a tree being built leaf by leaf: the roots of its complete subtrees,
/// largest first (one per bit set in the number of leaves). Appending is O(1) amortised and
/// the root is O(log n); the frontier is all a sequencer needs to carry from one checkpoint to
/// the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (leaves under it, subtree root), largest first.
    nodes: Vec<(u64, Hash)>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// How many leaves have been appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf by its hash ([`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (1u64, leaf);
        while let Some(&(width, left)) = self.nodes.last() {
            if width != node.0 {
                break;
            }
            self.nodes.pop();
            node = (width * 2, node_hash(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The tree hash of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut root)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            root = node_hash(left, &root);
        }
        root
    }

    /// The frontier as bytes: the size (8 bytes, big-endian), then each subtree root.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.nodes.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        for (_, h) in &self.nodes {
            out.extend_from_slice(h);
        }
        out
    }

    /// The inverse of [`Frontier::to_bytes`]; `None` if the bytes are not a frontier.
    pub fn from_bytes(b: &[u8]) -> Option<Frontier> {
        let (size, rest) = b.split_first_chunk::<8>()?;
        let size = u64::from_be_bytes(*size);
        if rest.len() != 32 * size.count_ones() as usize {
            return None;
        }
        let mut nodes = Vec::new();
        let mut hashes = rest.chunks_exact(32);
        for bit in (0..64).rev() {
            let width = 1u64 << bit;
            if size & width != 0 {
                nodes.push((width, hashes.next()?.try_into().ok()?));
            }
        }
        Some(Frontier { size, nodes })
    }
}

/// The ranges of leaves (`[start, end)`) whose subtree hashes make up the inclusion proof of
/// leaf `index` in a tree of `size` leaves (RFC 9162 §2.1.3.1), in proof order.
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Ok(out)
}

fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m - lo < k {
        path(m, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        path(m, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// The ranges of leaves whose subtree hashes make up the proof that the tree of `old` leaves
/// is a prefix of the tree of `new` leaves (RFC 9162 §2.1.4.1), in proof order.
pub fn consistency_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old, 0, new, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push((lo, hi));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, whole, out);
        out.push((lo + k, hi));
    } else {
        subproof(m - k, lo + k, hi, false, out);
        out.push((lo, lo + k));
    }
}

/// Computes the subtree hash of each of a set of non-overlapping ranges of leaves, fed the leaf
/// hashes in order from leaf 0: one pass, memory O(ranges × log n), so a log of millions of
/// entries can be proven from a database cursor.
#[derive(Debug, Clone)]
pub struct RangeHasher {
    ranges: Vec<(u64, u64)>,
    /// Range indexes sorted by start.
    order: Vec<usize>,
    trees: Vec<Frontier>,
    next: usize,
    seen: u64,
    end: u64,
}

impl RangeHasher {
    pub fn new(ranges: &[(u64, u64)]) -> RangeHasher {
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| ranges[i].0);
        debug_assert!(
            order.windows(2).all(|w| ranges[w[0]].1 <= ranges[w[1]].0),
            "ranges overlap"
        );
        RangeHasher {
            ranges: ranges.to_vec(),
            order,
            trees: vec![Frontier::new(); ranges.len()],
            next: 0,
            seen: 0,
            end: ranges.iter().map(|r| r.1).max().unwrap_or(0),
        }
    }

    /// How many leaves have been fed.
    pub fn fed(&self) -> u64 {
        self.seen
    }

    /// Whether every leaf the ranges need has been fed.
    pub fn is_complete(&self) -> bool {
        self.seen >= self.end
    }

    /// Feeds the next leaf hash (leaf number `seen`).
    pub fn push(&mut self, leaf: Hash) {
        let i = self.seen;
        self.seen += 1;
        while self.next < self.order.len() && self.ranges[self.order[self.next]].1 <= i {
            self.next += 1;
        }
        if let Some(&r) = self.order.get(self.next)
            && self.ranges[r].0 <= i
        {
            self.trees[r].push(leaf);
        }
    }

    /// The hash of each range, in the order the ranges were given.
    pub fn finish(self) -> Result<Vec<Hash>, ProofError> {
        if !self.is_complete() {
            return Err(ProofError::WrongLength);
        }
        Ok(self.trees.iter().map(Frontier::root).collect())
    }
}

/// The subtree hash of each range, from the leaf hashes given in order from leaf 0 (at least
/// up to the end of the last range). The ranges must not overlap.
pub fn hash_ranges(
    ranges: &[(u64, u64)],
    leaves: impl IntoIterator<Item = Hash>,
) -> Result<Vec<Hash>, ProofError> {
    let mut h = RangeHasher::new(ranges);
    for leaf in leaves {
        if h.is_complete() {
            break;
        }
        h.push(leaf);
    }
    h.finish()
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks a consistency proof between a tree of `old` leaves and one of `new` leaves (RFC 9162
/// §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Hash {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    // transparency-dev/merkle testonly/constants.go: leaves and the root of each prefix.
    const LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn leaves(n: usize) -> Vec<Hash> {
        LEAVES[..n].iter().map(|l| leaf_hash(l)).collect()
    }

    fn prove_inclusion(index: u64, all: &[Hash]) -> Vec<Hash> {
        let ranges = inclusion_ranges(index, all.len() as u64).unwrap();
        hash_ranges(&ranges, all.iter().copied()).unwrap()
    }

    fn prove_consistency(old: u64, all: &[Hash]) -> Vec<Hash> {
        let ranges = consistency_ranges(old, all.len() as u64).unwrap();
        hash_ranges(&ranges, all.iter().copied()).unwrap()
    }

    fn root_of(all: &[Hash]) -> Hash {
        let mut f = Frontier::new();
        for l in all {
            f.push(*l);
        }
        f.root()
    }

    #[test]
    fn the_transparency_dev_roots() {
        assert_eq!(
            vault_hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut f = Frontier::new();
        for (i, l) in LEAVES.iter().enumerate() {
            f.push(leaf_hash(l));
            assert_eq!(f.root(), h(ROOTS[i]), "root of {} leaves", i + 1);
            assert_eq!(f.size(), i as u64 + 1);
            let back = Frontier::from_bytes(&f.to_bytes()).unwrap();
            assert_eq!(back, f);
        }
    }

    fn vault_hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn the_transparency_dev_inclusion_proofs() {
        let all = leaves(8);
        let proof = prove_inclusion(5, &all);
        assert_eq!(
            proof,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
        verify_inclusion(5, 8, &all[5], &proof, &h(ROOTS[7])).unwrap();
        assert_eq!(
            verify_inclusion(4, 8, &all[5], &proof, &h(ROOTS[7])),
            Err(ProofError::RootMismatch)
        );
        let proof = prove_inclusion(2, &all[..3]);
        assert_eq!(proof, vec![h(ROOTS[1])]);
        verify_inclusion(2, 3, &all[2], &proof, &h(ROOTS[2])).unwrap();
        // A one-leaf tree: the empty proof.
        verify_inclusion(0, 1, &all[0], &[], &h(ROOTS[0])).unwrap();
        assert_eq!(
            verify_inclusion(1, 1, &all[0], &[], &h(ROOTS[0])),
            Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
        );
    }

    #[test]
    fn the_transparency_dev_consistency_proofs() {
        let all = leaves(8);
        let proof = prove_consistency(6, &all);
        assert_eq!(
            proof,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
        verify_consistency(6, 8, &h(ROOTS[5]), &h(ROOTS[7]), &proof).unwrap();
        assert_eq!(
            verify_consistency(6, 8, &h(ROOTS[4]), &h(ROOTS[7]), &proof),
            Err(ProofError::RootMismatch)
        );
        let proof = prove_consistency(2, &all[..5]);
        assert_eq!(
            proof,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ]
        );
        verify_consistency(2, 5, &h(ROOTS[1]), &h(ROOTS[4]), &proof).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// For every m <= n and every leaf of the tree of n, the proofs hold; after any leaf is
        /// changed they do not.
        #[test]
        fn proofs_hold_and_break_when_a_leaf_changes(
            data in proptest::collection::vec(any::<u32>(), 1..70),
            pick in any::<prop::sample::Index>(),
        ) {
            let all: Vec<Hash> = data.iter().map(|x| leaf_hash(&x.to_be_bytes())).collect();
            let n = all.len() as u64;
            let root = root_of(&all);
            for m in 0..=n {
                let old_root = root_of(&all[..m as usize]);
                let proof = prove_consistency(m, &all);
                prop_assert_eq!(verify_consistency(m, n, &old_root, &root, &proof), Ok(()));
                if m < n {
                    let proof = prove_inclusion(m, &all);
                    prop_assert_eq!(verify_inclusion(m, n, &all[m as usize], &proof, &root), Ok(()));
                }
            }
            // Change one leaf: every consistency proof from a tree containing it fails, and the
            // changed leaf cannot be proven in the real tree.
            let i = pick.index(all.len());
            let mut forged = all.clone();
            forged[i] = leaf_hash(b"forged");
            let forged_root = root_of(&forged);
            prop_assert_ne!(forged_root, root);
            for m in (i as u64 + 1)..=n {
                let old_root = root_of(&all[..m as usize]);
                let proof = prove_consistency(m, &forged);
                prop_assert!(verify_consistency(m, n, &old_root, &forged_root, &proof).is_err());
            }
            let proof = prove_inclusion(i as u64, &forged);
            prop_assert!(verify_inclusion(i as u64, n, &forged[i], &proof, &root).is_err());
        }
    }
}
