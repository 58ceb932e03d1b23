//! Proofs (API section 7): RFC 9162 consistency proofs, and inclusion proofs
//! for many leaves at once that share their sibling hashes.
//!
//! Both sides are here so that the database (which proves) and the
//! `audit-log` command (which checks) agree by construction on which
//! subtrees a proof carries and in what order. A proof is a list of subtree
//! hashes; the prover asks `inclusion_subtrees` / `consistency_subtrees`
//! which subtrees (as leaf ranges `[start, end)`) to hash, the verifier
//! consumes the hashes in the same order.

use crate::tree::{node_hash, Hash};

/// A range of leaves `[start, end)` whose RFC 9162 subtree hash (MTH) a
/// proof carries.
pub type Subtree = (u64, u64);

/// RFC 9162's split point: the largest power of two smaller than `n` (n > 1).
pub fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The subtrees a multi-leaf inclusion proof carries for these leaf indexes
/// (sorted, distinct, below `size`) in a tree of `size` leaves: every
/// maximal subtree of the RFC 9162 recursion that holds none of them.
///
/// Order: at each node, first what the children holding known leaves need
/// (left before right), then the hash of a child holding none. For one leaf
/// that is RFC 9162's inclusion path (section 2.1.3.1), bottom-up.
pub fn inclusion_subtrees(size: u64, known: &[u64]) -> Result<Vec<Subtree>, String> {
    inclusion_subtrees_of(size, known, |&index| index)
}

/// `inclusion_subtrees` for leaves kept in some other shape (sorted by the
/// index `index_of` gives): the prover keeps a few bytes per leaf, not a copy
/// of every index.
pub fn inclusion_subtrees_of<K>(
    size: u64,
    known: &[K],
    index_of: impl Fn(&K) -> u64 + Copy,
) -> Result<Vec<Subtree>, String> {
    check_known(size, known, index_of)?;
    let mut out = Vec::new();
    if size > 0 && !known.is_empty() {
        collect_inclusion(0, size, known, index_of, &mut out);
    }
    Ok(out)
}

fn collect_inclusion<K>(
    start: u64,
    end: u64,
    known: &[K],
    index_of: impl Fn(&K) -> u64 + Copy,
    out: &mut Vec<Subtree>,
) {
    if end - start == 1 {
        return;
    }
    let middle = start + split(end - start);
    let cut = known.partition_point(|k| index_of(k) < middle);
    let (left, right) = known.split_at(cut);
    if !left.is_empty() {
        collect_inclusion(start, middle, left, index_of, out);
    }
    if !right.is_empty() {
        collect_inclusion(middle, end, right, index_of, out);
    }
    if left.is_empty() {
        out.push((start, middle));
    }
    if right.is_empty() {
        out.push((middle, end));
    }
}

/// The root of a tree of `size` leaves from some of its leaves (index and
/// hash, sorted by index, distinct) and the hashes `inclusion_subtrees`
/// named, in its order. Every hash must be used.
pub fn root_from_inclusion(
    size: u64,
    known: &[(u64, Hash)],
    proof: &[Hash],
) -> Result<Hash, String> {
    root_from_inclusion_of(size, known, |(index, _)| *index, |(_, hash)| *hash, proof)
}

/// `root_from_inclusion` for leaves kept in some other shape: `index_of` and
/// `hash_of` give each one's index (sorted, distinct) and hash.
pub fn root_from_inclusion_of<K>(
    size: u64,
    known: &[K],
    index_of: impl Fn(&K) -> u64 + Copy,
    hash_of: impl Fn(&K) -> Hash + Copy,
    proof: &[Hash],
) -> Result<Hash, String> {
    check_known(size, known, index_of)?;
    if known.is_empty() {
        return Err("an inclusion proof needs at least one leaf".into());
    }
    let mut hashes = proof.iter();
    let root = fold_inclusion(0, size, known, index_of, hash_of, &mut hashes)?;
    if hashes.next().is_some() {
        return Err(format!(
            "the proof has more hashes than a tree of {size} leaves needs for these leaves"
        ));
    }
    Ok(root)
}

fn fold_inclusion<K>(
    start: u64,
    end: u64,
    known: &[K],
    index_of: impl Fn(&K) -> u64 + Copy,
    hash_of: impl Fn(&K) -> Hash + Copy,
    proof: &mut std::slice::Iter<'_, Hash>,
) -> Result<Hash, String> {
    if end - start == 1 {
        return Ok(hash_of(&known[0]));
    }
    let middle = start + split(end - start);
    let cut = known.partition_point(|k| index_of(k) < middle);
    let (left, right) = known.split_at(cut);
    let left_hash = if left.is_empty() {
        None
    } else {
        Some(fold_inclusion(
            start, middle, left, index_of, hash_of, proof,
        )?)
    };
    let right_hash = if right.is_empty() {
        None
    } else {
        Some(fold_inclusion(
            middle, end, right, index_of, hash_of, proof,
        )?)
    };
    let mut next = || {
        proof
            .next()
            .copied()
            .ok_or_else(|| "the proof has fewer hashes than the tree needs".to_string())
    };
    let left_hash = match left_hash {
        Some(hash) => hash,
        None => next()?,
    };
    let right_hash = match right_hash {
        Some(hash) => hash,
        None => next()?,
    };
    Ok(node_hash(&left_hash, &right_hash))
}

fn check_known<K>(size: u64, known: &[K], index_of: impl Fn(&K) -> u64) -> Result<(), String> {
    if known
        .windows(2)
        .any(|pair| index_of(&pair[0]) >= index_of(&pair[1]))
    {
        return Err("leaf indexes must be sorted and distinct".into());
    }
    if let Some(last) = known.last() {
        let last = index_of(last);
        if last >= size {
            return Err(format!("leaf {last} is beyond a tree of {size} leaves"));
        }
    }
    Ok(())
}

/// The subtrees of RFC 9162's consistency proof (section 2.1.4.1) between
/// the tree of `old` leaves and the tree of `new` leaves, in order. Empty
/// when `old` is 0 or equals `new`.
pub fn consistency_subtrees(old: u64, new: u64) -> Result<Vec<Subtree>, String> {
    if old > new {
        return Err(format!(
            "a tree of {new} leaves cannot extend a tree of {old} leaves"
        ));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old, 0, new, true, &mut out);
    }
    Ok(out)
}

/// SUBPROOF(m, D[start:end], b), with m counted from `start`.
fn subproof(m: u64, start: u64, end: u64, whole_old_tree: bool, out: &mut Vec<Subtree>) {
    let n = end - start;
    if m == n {
        if !whole_old_tree {
            out.push((start, end));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, whole_old_tree, out);
        out.push((start + k, end));
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// Checks a consistency proof as RFC 9162 section 2.1.4.2 says: the tree of
/// `old` leaves with root `old_root` is a prefix of the tree of `new` leaves
/// with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), String> {
    if old > new {
        return Err(format!(
            "a tree of {new} leaves cannot extend a tree of {old} leaves"
        ));
    }
    if old == new {
        if !proof.is_empty() {
            return Err("a consistency proof between equal sizes is empty".into());
        }
        if old_root != new_root {
            return Err(format!("two different roots for the same tree size {old}"));
        }
        return Ok(());
    }
    if old == 0 {
        // Every tree extends the empty one.
        if !proof.is_empty() {
            return Err("a consistency proof from the empty tree is empty".into());
        }
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let mut first_node = old - 1;
    let mut second_node = new - 1;
    while first_node & 1 == 1 {
        first_node >>= 1;
        second_node >>= 1;
    }
    let (first, rest) = path.split_first().ok_or("the consistency proof is empty")?;
    let mut first_root = *first;
    let mut second_root = *first;
    for hash in rest {
        if second_node == 0 {
            return Err("the consistency proof is too long".into());
        }
        if first_node & 1 == 1 || first_node == second_node {
            first_root = node_hash(hash, &first_root);
            second_root = node_hash(hash, &second_root);
            if first_node & 1 == 0 {
                while first_node & 1 == 0 && first_node != 0 {
                    first_node >>= 1;
                    second_node >>= 1;
                }
            }
        } else {
            second_root = node_hash(&second_root, hash);
        }
        first_node >>= 1;
        second_node >>= 1;
    }
    if second_node != 0 {
        return Err("the consistency proof is too short".into());
    }
    if first_root != *old_root {
        return Err(format!(
            "the proof does not lead to the root of the tree of {old} leaves"
        ));
    }
    if second_root != *new_root {
        return Err(format!(
            "the proof does not lead to the root of the tree of {new} leaves"
        ));
    }
    Ok(())
}

/// A subtree `[start, end)` of the RFC 9162 recursion as perfect subtrees
/// `(height, index)` (leaves `index * 2^height ..`), left to right: its
/// hash is `combine` of theirs. What lets a prover answer from stored nodes.
pub fn perfect_pieces(start: u64, end: u64) -> Vec<(u32, u64)> {
    let mut pieces = Vec::new();
    let mut at = start;
    while at < end {
        // The largest aligned power of two that starts here and fits.
        let mut height = if at == 0 { 63 } else { at.trailing_zeros() };
        while height > 0 && (1u64 << height) > end - at {
            height -= 1;
        }
        pieces.push((height, at >> height));
        at += 1 << height;
    }
    pieces
}

/// The hash of a subtree from the hashes of its `perfect_pieces`, in order:
/// RFC 9162's right edge folds from the right.
pub fn combine(pieces: &[Hash]) -> Hash {
    let (last, rest) = pieces.split_last().expect("a subtree has a piece");
    rest.iter()
        .rev()
        .fold(*last, |right, left| node_hash(left, &right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{leaf_hash, root};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn mth(all: &[Hash], (start, end): Subtree) -> Hash {
        root(&all[start as usize..end as usize])
    }

    /// RFC 9162 section 2.1.3.1's PATH, written straight from the text.
    fn rfc_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n == 1 {
            return vec![];
        }
        let k = split(n as u64) as usize;
        if m < k {
            let mut path = rfc_path(m, &d[..k]);
            path.push(root(&d[k..]));
            path
        } else {
            let mut path = rfc_path(m - k, &d[k..]);
            path.push(root(&d[..k]));
            path
        }
    }

    #[test]
    fn one_leaf_gives_the_rfc_inclusion_path() {
        for n in 1..40u64 {
            let all = leaves(n);
            for m in 0..n {
                let subtrees = inclusion_subtrees(n, &[m]).unwrap();
                let hashes: Vec<Hash> = subtrees.iter().map(|s| mth(&all, *s)).collect();
                assert_eq!(hashes, rfc_path(m as usize, &all), "leaf {m} of {n}");
                assert_eq!(
                    root_from_inclusion(n, &[(m, all[m as usize])], &hashes).unwrap(),
                    root(&all)
                );
            }
        }
    }

    #[test]
    fn many_leaves_share_their_proof() {
        let n = 1000u64;
        let all = leaves(n);
        let mut seed = 7u64;
        for round in 0..200 {
            // A deterministic pseudo-random subset, from sparse to dense.
            let mut known = vec![];
            for i in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if (seed >> 33) % 200 < round {
                    known.push(i);
                }
            }
            if known.is_empty() {
                continue;
            }
            let subtrees = inclusion_subtrees(n, &known).unwrap();
            let hashes: Vec<Hash> = subtrees.iter().map(|s| mth(&all, *s)).collect();
            let with_hashes: Vec<(u64, Hash)> =
                known.iter().map(|&i| (i, all[i as usize])).collect();
            assert_eq!(
                root_from_inclusion(n, &with_hashes, &hashes).unwrap(),
                root(&all)
            );
            // Shared: never more than one path per leaf.
            assert!(hashes.len() <= known.len() * 10);
            // Any changed leaf, proof hash, missing or extra hash fails.
            let mut changed = with_hashes.clone();
            changed[0].1[0] ^= 1;
            assert_ne!(
                root_from_inclusion(n, &changed, &hashes).unwrap(),
                root(&all)
            );
            if !hashes.is_empty() {
                let mut forged = hashes.clone();
                forged[hashes.len() / 2][5] ^= 1;
                assert_ne!(
                    root_from_inclusion(n, &with_hashes, &forged).unwrap(),
                    root(&all)
                );
                assert!(root_from_inclusion(n, &with_hashes, &hashes[1..]).is_err());
            }
            let mut longer = hashes.clone();
            longer.push(all[0]);
            assert!(root_from_inclusion(n, &with_hashes, &longer).is_err());
        }
        // A whole contiguous stretch needs only the hashes around it.
        let stretch: Vec<u64> = (300..420).collect();
        assert!(inclusion_subtrees(n, &stretch).unwrap().len() <= 2 * 10);
    }

    #[test]
    fn bad_leaf_sets_are_refused() {
        assert!(inclusion_subtrees(10, &[3, 3]).is_err());
        assert!(inclusion_subtrees(10, &[4, 3]).is_err());
        assert!(inclusion_subtrees(10, &[10]).is_err());
        assert!(root_from_inclusion(10, &[], &[]).is_err());
    }

    #[test]
    fn consistency_proofs_verify_between_every_pair_of_sizes() {
        let all = leaves(70);
        for new in 0..=70u64 {
            let new_root = root(&all[..new as usize]);
            for old in 0..=new {
                let old_root = root(&all[..old as usize]);
                let subtrees = consistency_subtrees(old, new).unwrap();
                let proof: Vec<Hash> = subtrees.iter().map(|s| mth(&all, *s)).collect();
                verify_consistency(old, new, &old_root, &new_root, &proof)
                    .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
                if old > 0 && old < new {
                    let mut forged = proof.clone();
                    let last = forged.len() - 1;
                    forged[last][0] ^= 1;
                    assert!(verify_consistency(old, new, &old_root, &new_root, &forged).is_err());
                    let mut other_old = old_root;
                    other_old[31] ^= 1;
                    assert!(verify_consistency(old, new, &other_old, &new_root, &proof).is_err());
                    assert!(
                        verify_consistency(old, new, &old_root, &new_root, &proof[1..]).is_err()
                    );
                    let mut longer = proof.clone();
                    longer.push(all[0]);
                    assert!(verify_consistency(old, new, &old_root, &new_root, &longer).is_err());
                }
            }
        }
        assert!(consistency_subtrees(5, 4).is_err());
        let r = root(&all[..4]);
        assert!(verify_consistency(5, 4, &r, &r, &[]).is_err());
        let mut other = r;
        other[0] ^= 1;
        assert!(verify_consistency(4, 4, &r, &other, &[]).is_err());
    }

    /// RFC 6962's reference consistency proofs over its 8 test leaves (the
    /// certificate-transparency reference implementation's vectors): the
    /// proof sizes and the subtrees they are made of.
    #[test]
    fn consistency_proofs_have_the_rfc_shape() {
        assert_eq!(consistency_subtrees(1, 1).unwrap(), vec![]);
        assert_eq!(
            consistency_subtrees(1, 8).unwrap(),
            vec![(1, 2), (2, 4), (4, 8)]
        );
        assert_eq!(
            consistency_subtrees(6, 8).unwrap(),
            vec![(4, 6), (6, 8), (0, 4)]
        );
        assert_eq!(consistency_subtrees(2, 5).unwrap(), vec![(2, 4), (4, 5)]);
        assert_eq!(
            consistency_subtrees(3, 7).unwrap(),
            vec![(2, 3), (3, 4), (0, 2), (4, 7)]
        );
    }

    #[test]
    fn perfect_pieces_rebuild_any_recursion_subtree() {
        let all = leaves(300);
        for end in 1..=300u64 {
            for start in [0u64, 256, 128, 64, 192, 288] {
                if start >= end {
                    continue;
                }
                // Only subtrees of the recursion: start aligned to a power
                // of two at least the range's size, or the tree's right edge.
                let pieces = perfect_pieces(start, end);
                let hashes: Vec<Hash> = pieces
                    .iter()
                    .map(|&(h, i)| root(&all[(i << h) as usize..((i + 1) << h) as usize]))
                    .collect();
                if start == 0 || (end - start) <= (1 << start.trailing_zeros()) {
                    assert_eq!(combine(&hashes), root(&all[start as usize..end as usize]));
                }
            }
        }
        assert_eq!(perfect_pieces(0, 13), vec![(3, 0), (2, 2), (0, 12)]);
    }
}
