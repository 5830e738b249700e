//! ethereum/tests `TrieTests` (tests/fixtures/ethereum/ethereum-tests/TrieTests) through
//! Fogchain's tries.
//!
//! Every vector runs through `fogchain_storage::trie::Trie` — the incremental trie every block's
//! state root comes from — with deletions and updates in the vectors' order, the nodes persisted
//! and reloaded between steps, and each value read back: the secure-trie vectors with keys hashed
//! by keccak-256 (as the state and storage tries), the plain ones with their keys as they are
//! (keys of any length, values in branch nodes). The plain vectors whose keys are prefix-free
//! also run through alloy-trie's `HashBuilder`, which computes the transactions, receipts and
//! withdrawals roots. `trietestnextprev.json` tests key iteration, which neither trie offers;
//! it is not run.

use alloy_primitives::{keccak256, B256};
use alloy_trie::{HashBuilder, Nibbles};
use fogchain_storage::{
    trie::{NewNodes, NodeReader, Trie},
    Result,
};
use serde_json::Value;
use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
};

fn vectors(name: &str) -> BTreeMap<String, Value> {
    let path = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../tests/fixtures/ethereum/ethereum-tests/TrieTests")
    .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A fixture string as bytes: `0x`-prefixed hex, or the string's own bytes.
fn bytes(s: &str) -> Vec<u8> {
    match s.strip_prefix("0x") {
        Some(hex) => alloy_primitives::hex::decode(hex).unwrap(),
        None => s.as_bytes().to_vec(),
    }
}

/// A vector's (key, value) steps in order; an empty value deletes.
type Steps = [(Vec<u8>, Vec<u8>)];

/// The `in` of a vector as ordered (key, value) steps; an empty value deletes.
fn steps(input: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let value = |v: &Value| v.as_str().map(bytes).unwrap_or_default();
    match input {
        Value::Array(pairs) => pairs.iter().map(|p| (bytes(p[0].as_str().unwrap()), value(&p[1]))).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (bytes(k), value(v))).collect(),
        other => panic!("unexpected input {other}"),
    }
}

fn root_of(vector: &Value) -> B256 {
    vector["root"].as_str().unwrap().parse().unwrap()
}

#[derive(Default)]
struct MemNodes(HashMap<B256, Vec<u8>>);

impl NodeReader for MemNodes {
    fn trie_node(&self, hash: &B256) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(hash).cloned())
    }
}

/// Applies the steps to the stored trie, committing and reopening from the stored nodes after
/// every step (so loads of hashed nodes are exercised), reads every final value back, and
/// returns the root. The final root must also come out the same with one commit of all steps.
fn stored_root(steps: &Steps) -> B256 {
    let mut nodes = MemNodes::default();
    let mut root = alloy_trie::EMPTY_ROOT_HASH;
    let mut last: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (key, value) in steps {
        let mut new = NewNodes::new();
        let mut trie = Trie::new(root, &nodes);
        trie.set_bytes(key, value.clone()).unwrap();
        root = trie.commit(&mut new);
        nodes.0.extend(new);
        last.insert(key.clone(), value.clone());
    }
    let trie = Trie::new(root, &nodes);
    for (key, value) in &last {
        let want = (!value.is_empty()).then(|| value.clone());
        assert_eq!(trie.get_bytes(key).unwrap(), want, "value of {key:02x?}");
    }
    let empty = MemNodes::default();
    let mut all = Trie::new(alloy_trie::EMPTY_ROOT_HASH, &empty);
    for (key, value) in steps {
        all.set_bytes(key, value.clone()).unwrap();
    }
    assert_eq!(all.commit(&mut NewNodes::new()), root, "one-commit and step-wise roots differ");
    root
}

fn secure_root(steps: &Steps) -> B256 {
    let hashed: Vec<_> = steps.iter().map(|(k, v)| (keccak256(k).to_vec(), v.clone())).collect();
    stored_root(&hashed)
}

/// The root of the final key set through alloy-trie's `HashBuilder` (keys in nibble order), when
/// no key is a prefix of another (the builder's domain); else through the stored trie only.
fn plain_root(steps: &Steps) -> B256 {
    let stored = stored_root(steps);
    let mut last: BTreeMap<Nibbles, Vec<u8>> = BTreeMap::new();
    for (key, value) in steps {
        let path = Nibbles::unpack(key);
        if value.is_empty() {
            last.remove(&path);
        } else {
            last.insert(path, value.clone());
        }
    }
    let keys: Vec<&Nibbles> = last.keys().collect();
    if keys.windows(2).any(|w| w[1].starts_with(w[0])) {
        return stored;
    }
    let mut builder = HashBuilder::default();
    for (path, value) in &last {
        builder.add_leaf(*path, value);
    }
    assert_eq!(builder.root(), stored, "HashBuilder and the stored trie differ");
    stored
}

fn run(file: &str, root: fn(&Steps) -> B256) -> usize {
    let vectors = vectors(file);
    assert!(!vectors.is_empty(), "{file} has no vectors");
    for (name, vector) in &vectors {
        let got = root(&steps(&vector["in"]));
        assert_eq!(got, root_of(vector), "{file} {name}");
    }
    vectors.len()
}

#[test]
fn secure_trie_vectors_through_the_state_trie() {
    let n = run("trietest_secureTrie.json", secure_root)
        + run("trieanyorder_secureTrie.json", secure_root)
        + run("hex_encoded_securetrie_test.json", secure_root);
    assert!(n >= 10, "only {n} vectors ran");
}

#[test]
fn plain_trie_vectors_through_the_stored_trie_and_the_root_builder() {
    let n = run("trietest.json", plain_root) + run("trieanyorder.json", plain_root);
    assert!(n >= 10, "only {n} vectors ran");
}
