//! Genesis alloc -> state trie accounts and the reference state root.

use alloy_genesis::GenesisAccount;
use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_trie::{root::storage_root_unhashed, TrieAccount, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use std::collections::BTreeMap;

/// One account of the genesis alloc, normalised: storage slots with a zero value are dropped
/// (geth never stores them), values are `U256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocAccount {
    /// Nonce.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Runtime bytecode (empty for externally owned accounts).
    pub code: alloy_primitives::Bytes,
    /// Non-zero storage slots: slot -> value.
    pub storage: BTreeMap<U256, U256>,
}

impl AllocAccount {
    /// Normalises a geth alloc entry.
    pub fn from_genesis(account: &GenesisAccount) -> Self {
        let storage = account
            .storage
            .iter()
            .flatten()
            .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0)))
            .filter(|(_, v)| !v.is_zero())
            .collect();
        Self {
            nonce: account.nonce.unwrap_or_default(),
            balance: account.balance,
            code: account.code.clone().unwrap_or_default(),
            storage,
        }
    }

    /// keccak-256 of the code, or the empty-code hash.
    pub fn code_hash(&self) -> B256 {
        if self.code.is_empty() {
            KECCAK_EMPTY
        } else {
            keccak256(&self.code)
        }
    }

    /// Storage root computed from scratch (alloy-trie's hash builder).
    pub fn storage_root(&self) -> B256 {
        if self.storage.is_empty() {
            return EMPTY_ROOT_HASH;
        }
        storage_root_unhashed(self.storage.iter().map(|(k, v)| (B256::from(k.to_be_bytes()), *v)))
    }

    /// The account as it appears in the state trie.
    pub fn trie_account(&self) -> TrieAccount {
        // `..Default::default()` covers the field alloy-trie's `account-ext` feature adds.
        #[allow(clippy::needless_update)]
        TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root: self.storage_root(),
            code_hash: self.code_hash(),
            ..Default::default()
        }
    }
}

/// The state root of an alloc, computed from scratch with alloy-trie's hash builder: the
/// reference against which Fogchain's incremental trie is checked when a datadir is created.
pub fn alloc_state_root(alloc: &BTreeMap<Address, AllocAccount>) -> B256 {
    alloy_trie::root::state_root_unhashed(alloc.iter().map(|(a, acc)| (*a, acc.trie_account())))
}
