//! Incremental Merkle-Patricia trie over nodes stored by hash (Ethereum Yellow Paper, appendix D).
//!
//! Nodes whose RLP is 32 bytes or longer are stored under their keccak-256 hash; shorter nodes
//! are embedded in their parent, as the spec requires. An update loads only the nodes on the
//! paths of the changed keys, and [`Trie::commit`] re-hashes only those: the cost of a block's
//! state root grows with the keys it changes, not with the size of the state. Node encoding and
//! decoding come from `alloy-trie`, except branch nodes, which are encoded here because a
//! branch may carry a value (a key that is a prefix of another). The state and storage tries use
//! 32-byte hashed keys (secure trie), where that never happens; keys of any length
//! ([`Trie::set_bytes`]) are what the reference vectors (ethereum/tests `TrieTests`) exercise.

use crate::{Result, StorageError};
use alloy_primitives::{keccak256, B256};
use alloy_rlp::Decodable;
use alloy_rlp::EMPTY_STRING_CODE;
use alloy_trie::{
    nodes::{ExtensionNode, LeafNode, RlpNode, TrieNode},
    Nibbles, EMPTY_ROOT_HASH,
};

/// Read access to stored trie nodes.
pub trait NodeReader {
    /// The RLP of the node with this hash, if stored.
    fn trie_node(&self, hash: &B256) -> Result<Option<Vec<u8>>>;
}

/// Trie nodes created by a commit: (hash, RLP) pairs to persist.
pub type NewNodes = Vec<(B256, Vec<u8>)>;

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Leaf(Nibbles, Vec<u8>),
    Extension(Nibbles, Box<Node>),
    /// Sixteen children and the value of the key that ends here, if any.
    Branch(Box<[Node; 16]>, Option<Vec<u8>>),
    /// A stored subtree that has not been loaded (unchanged so far).
    Hash(B256),
}

fn empty_children() -> Box<[Node; 16]> {
    Box::new(std::array::from_fn(|_| Node::Empty))
}

/// A Merkle-Patricia trie rooted at a stored root, with in-memory pending changes.
#[derive(Debug)]
pub struct Trie<'r, R: ?Sized> {
    root: Node,
    reader: &'r R,
}

impl<'r, R: NodeReader + ?Sized> Trie<'r, R> {
    /// Opens the trie with this root (may be [`EMPTY_ROOT_HASH`]).
    pub fn new(root: B256, reader: &'r R) -> Self {
        let root = if root == EMPTY_ROOT_HASH { Node::Empty } else { Node::Hash(root) };
        Self { root, reader }
    }

    fn load(&self, hash: &B256) -> Result<Node> {
        let rlp = self
            .reader
            .trie_node(hash)?
            .ok_or_else(|| StorageError::Corrupt(format!("missing trie node {hash}")))?;
        decode_node(&rlp)
    }

    /// Reads the value stored under a 32-byte key (already hashed by the caller).
    pub fn get(&self, key: &B256) -> Result<Option<Vec<u8>>> {
        self.get_bytes(key.as_slice())
    }

    /// Reads the value stored under a key of any length.
    pub fn get_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let path = Nibbles::unpack(key);
        let mut node = std::borrow::Cow::Borrowed(&self.root);
        let mut pos = 0;
        loop {
            let next = match node.as_ref() {
                Node::Empty => return Ok(None),
                Node::Hash(h) => self.load(h)?,
                Node::Leaf(k, v) => {
                    return Ok((path.slice(pos..) == *k).then(|| v.clone()));
                }
                Node::Extension(k, child) => {
                    if !path.slice(pos..).starts_with(k) {
                        return Ok(None);
                    }
                    pos += k.len();
                    (**child).clone()
                }
                Node::Branch(children, value) => {
                    let Some(i) = path.get(pos) else { return Ok(value.clone()) };
                    pos += 1;
                    children[i as usize].clone()
                }
            };
            node = std::borrow::Cow::Owned(next);
        }
    }

    /// Sets `key` to `value` (a non-empty RLP value), or removes it when `value` is empty.
    pub fn set(&mut self, key: &B256, value: Vec<u8>) -> Result<()> {
        self.set_bytes(key.as_slice(), value)
    }

    /// [`Trie::set`] for a key of any length (a key may be a prefix of another).
    pub fn set_bytes(&mut self, key: &[u8], value: Vec<u8>) -> Result<()> {
        let path = Nibbles::unpack(key);
        let root = std::mem::replace(&mut self.root, Node::Empty);
        self.root =
            if value.is_empty() { self.remove_at(root, &path)? } else { self.insert_at(root, &path, value)? };
        Ok(())
    }

    fn insert_at(&self, node: Node, path: &Nibbles, value: Vec<u8>) -> Result<Node> {
        Ok(match node {
            Node::Empty => Node::Leaf(*path, value),
            Node::Hash(h) => return self.insert_at(self.load(&h)?, path, value),
            Node::Leaf(k, v) => {
                if k == *path {
                    return Ok(Node::Leaf(k, value));
                }
                let p = k.common_prefix_length(path);
                let (mut children, mut here) = (empty_children(), None);
                place(&mut children, &mut here, k.slice(p..), v);
                place(&mut children, &mut here, path.slice(p..), value);
                wrap_extension(path.slice(..p), Node::Branch(children, here))
            }
            Node::Extension(k, child) => {
                let p = k.common_prefix_length(path);
                if p == k.len() {
                    let child = self.insert_at(*child, &path.slice(p..), value)?;
                    return Ok(Node::Extension(k, Box::new(child)));
                }
                let (mut children, mut here) = (empty_children(), None);
                children[k.get_unchecked(p) as usize] = wrap_extension(k.slice(p + 1..), *child);
                place(&mut children, &mut here, path.slice(p..), value);
                wrap_extension(k.slice(..p), Node::Branch(children, here))
            }
            Node::Branch(mut children, here) => {
                let Some(i) = path.get(0) else { return Ok(Node::Branch(children, Some(value))) };
                let i = i as usize;
                let child = std::mem::replace(&mut children[i], Node::Empty);
                children[i] = self.insert_at(child, &path.slice(1..), value)?;
                Node::Branch(children, here)
            }
        })
    }

    fn remove_at(&self, node: Node, path: &Nibbles) -> Result<Node> {
        Ok(match node {
            Node::Empty => Node::Empty,
            Node::Hash(h) => {
                let loaded = self.load(&h)?;
                // Keep the unloaded form when the key is absent, so the subtree is not re-hashed.
                if !self.contains(&loaded, path)? {
                    return Ok(Node::Hash(h));
                }
                return self.remove_at(loaded, path);
            }
            Node::Leaf(k, v) => {
                if k == *path {
                    Node::Empty
                } else {
                    Node::Leaf(k, v)
                }
            }
            Node::Extension(k, child) => {
                if !path.starts_with(&k) {
                    return Ok(Node::Extension(k, child));
                }
                let child = self.remove_at(*child, &path.slice(k.len()..))?;
                self.merge_extension(k, child)?
            }
            Node::Branch(mut children, mut here) => {
                match path.get(0) {
                    None => here = None,
                    Some(i) => {
                        let child = std::mem::replace(&mut children[i as usize], Node::Empty);
                        children[i as usize] = self.remove_at(child, &path.slice(1..))?;
                    }
                }
                let mut remaining = children.iter().enumerate().filter(|(_, c)| !matches!(c, Node::Empty));
                let first = remaining.next().map(|(i, _)| i);
                match (first, remaining.next(), here) {
                    // Only the value is left: a leaf with an empty remaining path.
                    (None, _, Some(value)) => Node::Leaf(Nibbles::default(), value),
                    (None, _, None) => Node::Empty,
                    (Some(only), None, None) => {
                        // A branch with one child collapses into that child, prefixed by its nibble.
                        let child = std::mem::replace(&mut children[only], Node::Empty);
                        let nibble = Nibbles::from_nibbles_unchecked([only as u8]);
                        self.merge_extension(nibble, child)?
                    }
                    (_, _, here) => Node::Branch(children, here),
                }
            }
        })
    }

    /// `prefix` followed by `child`, normalised (extensions never point at leaves or extensions).
    fn merge_extension(&self, prefix: Nibbles, child: Node) -> Result<Node> {
        Ok(match child {
            Node::Empty => Node::Empty,
            Node::Hash(h) => return self.merge_extension(prefix, self.load(&h)?),
            Node::Leaf(k, v) => Node::Leaf(prefix.join(&k), v),
            Node::Extension(k, c) => Node::Extension(prefix.join(&k), c),
            branch @ Node::Branch(..) => Node::Extension(prefix, Box::new(branch)),
        })
    }

    fn contains(&self, node: &Node, path: &Nibbles) -> Result<bool> {
        Ok(match node {
            Node::Empty => false,
            Node::Hash(h) => self.contains(&self.load(h)?, path)?,
            Node::Leaf(k, _) => k == path,
            Node::Extension(k, c) => path.starts_with(k) && self.contains(c, &path.slice(k.len()..))?,
            Node::Branch(children, here) => match path.get(0) {
                Some(i) => self.contains(&children[i as usize], &path.slice(1..))?,
                None => here.is_some(),
            },
        })
    }

    /// Hashes every changed node, appends the new stored nodes to `out` and returns the root.
    /// The trie stays usable; its changed nodes are replaced by their hashes.
    pub fn commit(&mut self, out: &mut NewNodes) -> B256 {
        let root = std::mem::replace(&mut self.root, Node::Empty);
        let hash = match root {
            Node::Empty => EMPTY_ROOT_HASH,
            Node::Hash(h) => h,
            node => {
                let mut buf = Vec::with_capacity(128);
                encode_node(&node, &mut buf, out);
                let hash = keccak256(&buf);
                // The root is always referenced by hash, even when shorter than 32 bytes.
                out.push((hash, buf));
                hash
            }
        };
        self.root = if hash == EMPTY_ROOT_HASH { Node::Empty } else { Node::Hash(hash) };
        hash
    }
}

/// Puts `value` under the remaining path `rest` of a new branch: the branch's own value when
/// `rest` is empty, else a leaf in the child slot of its first nibble.
fn place(children: &mut [Node; 16], here: &mut Option<Vec<u8>>, rest: Nibbles, value: Vec<u8>) {
    match rest.get(0) {
        None => *here = Some(value),
        Some(i) => children[i as usize] = Node::Leaf(rest.slice(1..), value),
    }
}

fn wrap_extension(prefix: Nibbles, child: Node) -> Node {
    if prefix.is_empty() {
        child
    } else {
        Node::Extension(prefix, Box::new(child))
    }
}

/// RLP-encodes `node` into `buf`, storing its descendants that are referenced by hash.
fn encode_node(node: &Node, buf: &mut Vec<u8>, out: &mut NewNodes) {
    use alloy_rlp::Encodable;
    match node {
        Node::Empty | Node::Hash(_) => unreachable!("encode_node is only called on loaded nodes"),
        Node::Leaf(k, v) => LeafNode::new(*k, v.clone()).encode(buf),
        Node::Extension(k, child) => {
            ExtensionNode::new(*k, child_ref(child, out)).encode(buf);
        }
        Node::Branch(children, value) => {
            // [child_0, ..., child_15, value]: an absent child or value is the empty string.
            let refs: Vec<Option<RlpNode>> =
                children.iter().map(|c| (!matches!(c, Node::Empty)).then(|| child_ref(c, out))).collect();
            let value_length = value.as_ref().map_or(1, |v| v.as_slice().length());
            let payload_length =
                refs.iter().map(|r| r.as_ref().map_or(1, |r| r.len())).sum::<usize>() + value_length;
            alloy_rlp::Header { list: true, payload_length }.encode(buf);
            for r in &refs {
                match r {
                    Some(r) => buf.extend_from_slice(r),
                    None => buf.push(EMPTY_STRING_CODE),
                }
            }
            match value {
                Some(v) => v.as_slice().encode(buf),
                None => buf.push(EMPTY_STRING_CODE),
            }
        }
    }
}

/// A child's reference in its parent: the child's RLP when shorter than 32 bytes, else its hash.
fn child_ref(node: &Node, out: &mut NewNodes) -> RlpNode {
    if let Node::Hash(h) = node {
        return RlpNode::word_rlp(h);
    }
    let mut buf = Vec::with_capacity(64);
    encode_node(node, &mut buf, out);
    let reference = RlpNode::from_rlp(&buf);
    if let Some(hash) = reference.as_hash() {
        out.push((hash, buf));
    }
    reference
}

fn decode_node(rlp: &[u8]) -> Result<Node> {
    let corrupt = |e: alloy_rlp::Error| StorageError::Corrupt(format!("bad trie node: {e}"));
    if let Some(items) = branch_items(rlp).map_err(corrupt)? {
        let mut children = empty_children();
        for (i, item) in items[..16].iter().enumerate() {
            if *item != [EMPTY_STRING_CODE] {
                children[i] = decode_ref(&RlpNode::from_raw_rlp(item).map_err(corrupt)?)?;
            }
        }
        let value = match items[16] {
            [EMPTY_STRING_CODE] => None,
            mut item => Some(alloy_rlp::Header::decode_bytes(&mut item, false).map_err(corrupt)?.to_vec()),
        };
        return Ok(Node::Branch(children, value));
    }
    let node = TrieNode::decode(&mut &rlp[..]).map_err(corrupt)?;
    Ok(match node {
        TrieNode::EmptyRoot => Node::Empty,
        TrieNode::Leaf(l) => Node::Leaf(l.key, l.value),
        TrieNode::Extension(e) => Node::Extension(e.key, Box::new(decode_ref(&e.child)?)),
        // `branch_items` takes every 17-item list; alloy-trie has no other branch form.
        TrieNode::Branch(_) => return Err(StorageError::Corrupt("bad trie node: branch".into())),
    })
}

/// The 17 items of a branch node's RLP list (each item's own RLP), or `None` when `rlp` is not
/// a 17-item list (a leaf, an extension or the empty root).
fn branch_items(rlp: &[u8]) -> alloy_rlp::Result<Option<Vec<&[u8]>>> {
    let mut buf = rlp;
    let header = alloy_rlp::Header::decode(&mut buf)?;
    if !header.list {
        return Ok(None);
    }
    let mut payload = &buf[..header.payload_length];
    let mut items = Vec::with_capacity(17);
    while !payload.is_empty() {
        let start = payload;
        let item = alloy_rlp::Header::decode(&mut payload)?;
        payload = &payload[item.payload_length..];
        items.push(&start[..start.len() - payload.len()]);
        if items.len() > 17 {
            return Err(alloy_rlp::Error::Custom("invalid number of items in the list"));
        }
    }
    Ok((items.len() == 17).then_some(items))
}

fn decode_ref(r: &RlpNode) -> Result<Node> {
    match r.as_hash() {
        Some(h) => Ok(Node::Hash(h)),
        None => decode_node(r),
    }
}

/// The Merkle proof of `key` in the trie with root `root` (EIP-1186): the RLP of every node on
/// the key's path that is referenced by hash, root first; nodes embedded in their parent are
/// inside the parent's RLP. The proof also proves absence when the key is not in the trie.
pub fn proof<R: NodeReader + ?Sized>(reader: &R, root: B256, key: &B256) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if root == EMPTY_ROOT_HASH {
        return Ok(out);
    }
    let load = |hash: &B256| {
        reader.trie_node(hash)?.ok_or_else(|| StorageError::Corrupt(format!("missing trie node {hash}")))
    };
    let path = Nibbles::unpack(key);
    let mut pos = 0;
    let mut rlp = load(&root)?;
    out.push(rlp.clone());
    loop {
        let node =
            TrieNode::decode(&mut &rlp[..]).map_err(|e| StorageError::Corrupt(format!("trie node: {e}")))?;
        let child = match node {
            TrieNode::Branch(branch) => {
                let Some(nibble) = path.get(pos) else { return Ok(out) };
                pos += 1;
                if !branch.state_mask.is_bit_set(nibble) {
                    return Ok(out);
                }
                // Children are stored for the set bits only, in nibble order.
                let index = (0..nibble).filter(|i| branch.state_mask.is_bit_set(*i)).count();
                branch.stack[index].clone()
            }
            TrieNode::Extension(ext) => {
                if !path.slice(pos..).starts_with(&ext.key) {
                    return Ok(out);
                }
                pos += ext.key.len();
                ext.child
            }
            TrieNode::Leaf(_) | TrieNode::EmptyRoot => return Ok(out),
        };
        rlp = match child.as_hash() {
            Some(hash) => {
                let node = load(&hash)?;
                out.push(node.clone());
                node
            }
            None => child.to_vec(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use std::collections::{BTreeMap, HashMap};

    #[derive(Default)]
    struct MemNodes(HashMap<B256, Vec<u8>>);
    impl NodeReader for MemNodes {
        fn trie_node(&self, hash: &B256) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(hash).cloned())
        }
    }

    fn reference_root(map: &BTreeMap<B256, U256>) -> B256 {
        alloy_trie::root::storage_root_unhashed(map.iter().map(|(k, v)| (*k, *v)))
    }

    /// Random inserts, overwrites and deletions over many commits must always give the root
    /// that alloy-trie's hash builder computes from scratch, and reads must see every value.
    #[test]
    fn incremental_root_matches_hash_builder() {
        let mut nodes = MemNodes::default();
        let mut model = BTreeMap::new();
        let mut root = EMPTY_ROOT_HASH;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..60 {
            let mut trie = Trie::new(root, &nodes);
            for _ in 0..(1 + next() % 40) {
                // Small key space so that overwrites and deletions of existing keys are common.
                let slot = U256::from(next() % 300);
                let value = if next() % 4 == 0 { U256::ZERO } else { U256::from(next() % 1_000 + 1) };
                let value = if round % 10 == 9 { U256::ZERO } else { value };
                let mut enc = Vec::new();
                if !value.is_zero() {
                    alloy_rlp::Encodable::encode(&value, &mut enc);
                    model.insert(B256::from(slot.to_be_bytes()), value);
                } else {
                    model.remove(&B256::from(slot.to_be_bytes()));
                }
                // alloy's `storage_root_unhashed` hashes keys; do the same here.
                trie.set(&keccak256(B256::from(slot.to_be_bytes())), enc).unwrap();
            }
            let mut out = NewNodes::new();
            root = trie.commit(&mut out);
            nodes.0.extend(out);
            assert_eq!(root, reference_root(&model), "round {round}");
            let trie = Trie::new(root, &nodes);
            for (k, v) in &model {
                let got = trie.get(&keccak256(k)).unwrap().unwrap();
                assert_eq!(U256::decode(&mut &got[..]).unwrap(), *v);
            }
        }
    }

    /// Proofs of present and absent keys verify against the root with alloy-trie's verifier,
    /// including small values embedded in their branch.
    #[test]
    fn proofs_verify_for_present_and_absent_keys() {
        let mut nodes = MemNodes::default();
        let mut trie = Trie::new(EMPTY_ROOT_HASH, &nodes);
        let value = |i: u64| {
            let mut enc = Vec::new();
            alloy_rlp::Encodable::encode(&U256::from(i * 7 + 1), &mut enc);
            enc
        };
        for i in 0..500u64 {
            trie.set(&keccak256(i.to_be_bytes()), value(i)).unwrap();
        }
        let mut out = NewNodes::new();
        let root = trie.commit(&mut out);
        nodes.0.extend(out);
        for i in [0u64, 1, 77, 499, 500, 10_000] {
            let key = keccak256(i.to_be_bytes());
            let nodes_on_path: Vec<alloy_primitives::Bytes> =
                proof(&nodes, root, &key).unwrap().into_iter().map(Into::into).collect();
            let expected = (i < 500).then(|| value(i));
            alloy_trie::proof::verify_proof(root, Nibbles::unpack(key), expected, &nodes_on_path)
                .unwrap_or_else(|e| panic!("key {i}: {e:?}"));
        }
        assert!(proof(&nodes, EMPTY_ROOT_HASH, &B256::ZERO).unwrap().is_empty());
    }

    /// The cost of an update is bounded by the path length, whatever the size of the trie.
    #[test]
    fn one_key_update_touches_only_its_path() {
        struct Counting<'a>(&'a MemNodes, std::cell::Cell<usize>);
        impl NodeReader for Counting<'_> {
            fn trie_node(&self, hash: &B256) -> Result<Option<Vec<u8>>> {
                self.1.set(self.1.get() + 1);
                self.0.trie_node(hash)
            }
        }
        let mut nodes = MemNodes::default();
        let mut trie = Trie::new(EMPTY_ROOT_HASH, &nodes);
        for i in 0..20_000u64 {
            trie.set(&keccak256(i.to_be_bytes()), vec![0x01]).unwrap();
        }
        let mut out = NewNodes::new();
        let root = trie.commit(&mut out);
        nodes.0.extend(out);

        let counting = Counting(&nodes, std::cell::Cell::new(0));
        let mut trie = Trie::new(root, &counting);
        trie.set(&keccak256(7u64.to_be_bytes()), vec![0x02]).unwrap();
        let mut out = NewNodes::new();
        trie.commit(&mut out);
        // 20,000 keys give a path of ~4-5 stored nodes; 8 leaves room for extension nodes.
        assert!(counting.1.get() <= 8, "{} node reads", counting.1.get());
        assert!(out.len() <= 8, "{} new nodes", out.len());
    }

    /// Stored nodes are read back from disk: any bytes decode to a node or a `Corrupt` error,
    /// never a panic (lists claiming more than they hold, 17-item lists with values, garbage).
    #[test]
    fn arbitrary_node_bytes_decode_or_error() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..300usize {
            for _ in 0..40 {
                let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if let Some(first) = bytes.first_mut() {
                    *first = 0xc0 | (*first & 0x3f);
                }
                let _ = decode_node(&bytes);
            }
        }
        assert!(decode_node(&[0xf8, 0xff, 0x80]).is_err());
        assert!(decode_node(&[0xd1, 0x80]).is_err());
        let mut branch = vec![0xd3];
        branch.extend([0x80; 16]);
        branch.extend([0x82, 0xab, 0xcd]);
        assert!(matches!(decode_node(&branch), Ok(Node::Branch(_, Some(v))) if v == [0xab, 0xcd]));
    }

    #[test]
    fn deleting_everything_gives_the_empty_root() {
        let mut nodes = MemNodes::default();
        let mut trie = Trie::new(EMPTY_ROOT_HASH, &nodes);
        let keys: Vec<B256> = (0..50u64).map(|i| keccak256(i.to_be_bytes())).collect();
        for k in &keys {
            trie.set(k, vec![0x01]).unwrap();
        }
        let mut out = NewNodes::new();
        let root = trie.commit(&mut out);
        nodes.0.extend(out);
        let mut trie = Trie::new(root, &nodes);
        for k in &keys {
            trie.set(k, vec![]).unwrap();
        }
        assert_eq!(trie.commit(&mut NewNodes::new()), EMPTY_ROOT_HASH);
    }
}
