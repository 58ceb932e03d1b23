//! RFC 9162 Merkle tree hashing with SHA-256 (section 2.1.1): leaves are
//! hashed with a 0x00 prefix, interior nodes with 0x01, and the tree of n
//! leaves splits at the largest power of two below n.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(leaf_data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(leaf_data);
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the tree whose leaves have these hashes (MTH): SHA-256 of
/// nothing for no leaf. Recursive, O(n): what verification recomputes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let split = largest_power_of_two_below(n);
            node_hash(&root(&leaves[..split]), &root(&leaves[split..]))
        }
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The right edge of a growing tree: the roots of its perfect subtrees,
/// largest (leftmost) first, one per bit of the size. Appending a leaf
/// merges equal-sized subtrees like a binary counter's carries; the root is
/// the fold of the subtrees from the right. So a seal appends its leaves and
/// computes the new root without reading the tree's earlier leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    subtrees: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier stored earlier: `size` leaves, and the roots of its
    /// perfect subtrees, largest first (as `subtrees()` gives them).
    pub fn from_parts(size: u64, subtrees: Vec<Hash>) -> Result<Self, String> {
        if subtrees.len() != size.count_ones() as usize {
            return Err(format!(
                "a tree of {size} leaves has {} perfect subtrees, not {}",
                size.count_ones(),
                subtrees.len()
            ));
        }
        Ok(Frontier { size, subtrees })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn subtrees(&self) -> &[Hash] {
        &self.subtrees
    }

    /// Appends a leaf by its hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Appends a leaf by its hash, and tells `completed` of every perfect
    /// subtree this completes, as (height, index, hash): the subtree of
    /// height h and index i holds leaves `i * 2^h .. (i + 1) * 2^h`. A seal
    /// stores some of them so that proofs need not reread old leaves.
    pub fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut carry = leaf;
        // Each trailing one bit of the size is a subtree of the same height
        // as the carry: merge them.
        let mut size = self.size;
        let mut height = 0;
        while size & 1 == 1 {
            let left = self.subtrees.pop().expect("one subtree per one bit");
            carry = node_hash(&left, &carry);
            size >>= 1;
            height += 1;
            completed(height, ((self.size + 1) >> height) - 1, &carry);
        }
        self.subtrees.push(carry);
        self.size += 1;
    }

    /// The root of the tree so far (RFC 9162's MTH).
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        match subtrees.next() {
            None => Sha256::digest([]).into(),
            Some(last) => subtrees.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(hash: &Hash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 6962's reference test leaves and the roots of their first 1 to 8
    /// (the certificate-transparency reference implementation's vectors,
    /// checked here against an independent computation in Python).
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

    #[test]
    fn the_empty_tree_is_the_hash_of_nothing() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(hex(&root(&[])), empty);
        assert_eq!(hex(&Frontier::new().root()), empty);
    }

    #[test]
    fn roots_match_the_reference_vectors() {
        let leaves: Vec<Hash> = LEAVES.iter().map(|data| leaf_hash(data)).collect();
        let mut frontier = Frontier::new();
        for (n, expected) in ROOTS.iter().enumerate() {
            frontier.push(leaves[n]);
            assert_eq!(hex(&root(&leaves[..=n])), *expected, "{} leaves", n + 1);
            assert_eq!(
                hex(&frontier.root()),
                *expected,
                "{} leaves, frontier",
                n + 1
            );
        }
    }

    #[test]
    fn the_frontier_agrees_with_the_recursive_root_at_every_size() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        for n in 0..leaves.len() {
            assert_eq!(frontier.root(), root(&leaves[..n]), "{n} leaves");
            assert_eq!(
                frontier.subtrees().len(),
                frontier.size().count_ones() as usize
            );
            frontier.push(leaves[n]);
        }
        // Stored and restored, it goes on from where it was.
        let mut restored =
            Frontier::from_parts(frontier.size(), frontier.subtrees().to_vec()).unwrap();
        let extra = leaf_hash(b"one more");
        restored.push(extra);
        let mut all = leaves.clone();
        all.push(extra);
        assert_eq!(restored.root(), root(&all));
        assert!(Frontier::from_parts(5, vec![extra]).is_err());
    }

    #[test]
    fn completed_subtrees_are_reported_with_their_place() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        let mut reported = vec![];
        for leaf in &leaves {
            frontier.push_with(*leaf, |height, index, hash| {
                reported.push((height, index, *hash))
            });
        }
        // One per perfect subtree of height 1 or more inside 40 leaves.
        assert_eq!(reported.len(), 20 + 10 + 5 + 2 + 1);
        for (height, index, hash) in reported {
            let start = (index << height) as usize;
            assert_eq!(
                hash,
                root(&leaves[start..start + (1 << height)]),
                "{height}/{index}"
            );
        }
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        let a = leaf_hash(b"a");
        // A node hash never equals the leaf hash of its children's concatenation.
        let mut joined = vec![];
        joined.extend_from_slice(&a);
        joined.extend_from_slice(&a);
        assert_ne!(node_hash(&a, &a), leaf_hash(&joined));
    }
}
