//! Typed reads over any key-value view (the live database or a snapshot).

use crate::{
    b256_from, meta_keys, slot_key, trie::NodeReader, Result, StorageError, StoredBody, StoredReceipts,
    Table, TxLocation,
};
use alloy_consensus::Header;
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::Decodable;
use alloy_trie::TrieAccount;

/// Raw point reads from one table.
pub trait KvRead {
    /// The value under `key` in `table`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
}

fn decode<T: Decodable>(what: &str, bytes: &[u8]) -> Result<T> {
    T::decode(&mut &bytes[..]).map_err(|e| StorageError::Corrupt(format!("{what}: {e}")))
}

/// Typed chain and state reads, available on every [`KvRead`].
pub trait ChainReader: KvRead {
    /// Hash of the head block.
    fn head_hash(&self) -> Result<B256> {
        self.get(Table::Meta, meta_keys::HEAD)?
            .and_then(|b| b256_from(&b))
            .ok_or_else(|| StorageError::Corrupt("no head".into()))
    }

    /// The head block header and its hash.
    fn head(&self) -> Result<(B256, Header)> {
        let hash = self.head_hash()?;
        let header =
            self.header(&hash)?.ok_or_else(|| StorageError::Corrupt("head header missing".into()))?;
        Ok((hash, header))
    }

    /// Genesis hash recorded in the datadir.
    fn genesis_hash(&self) -> Result<Option<B256>> {
        Ok(self.get(Table::Meta, meta_keys::GENESIS_HASH)?.and_then(|b| b256_from(&b)))
    }

    /// Header by block hash.
    fn header(&self, hash: &B256) -> Result<Option<Header>> {
        self.get(Table::Headers, hash.as_slice())?.map(|b| decode("header", &b)).transpose()
    }

    /// Canonical block hash at a height.
    fn block_hash(&self, number: u64) -> Result<Option<B256>> {
        Ok(self.get(Table::Canonical, &number.to_be_bytes())?.and_then(|b| b256_from(&b)))
    }

    /// Canonical header at a height, with its hash.
    fn header_by_number(&self, number: u64) -> Result<Option<(B256, Header)>> {
        let Some(hash) = self.block_hash(number)? else { return Ok(None) };
        Ok(self.header(&hash)?.map(|h| (hash, h)))
    }

    /// Body (transactions and senders) by block hash.
    fn body(&self, hash: &B256) -> Result<Option<StoredBody>> {
        self.get(Table::Bodies, hash.as_slice())?.map(|b| decode("body", &b)).transpose()
    }

    /// Receipts by block hash.
    fn receipts(&self, hash: &B256) -> Result<Option<StoredReceipts>> {
        self.get(Table::Receipts, hash.as_slice())?.map(|b| decode("receipts", &b)).transpose()
    }

    /// Where a transaction was included, if it was.
    fn tx_location(&self, tx_hash: &B256) -> Result<Option<TxLocation>> {
        match self.get(Table::TxLookup, tx_hash.as_slice())? {
            None => Ok(None),
            Some(b) => TxLocation::decode(&b)
                .map(Some)
                .ok_or_else(|| StorageError::Corrupt("tx lookup entry".into())),
        }
    }

    /// Account in the latest state.
    fn account(&self, address: &Address) -> Result<Option<TrieAccount>> {
        self.get(Table::Accounts, address.as_slice())?.map(|b| decode("account", &b)).transpose()
    }

    /// Storage slot value in the latest state (zero when unset).
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256> {
        match self.get(Table::StorageSlots, &slot_key(address, slot))? {
            None => Ok(U256::ZERO),
            // At most 32 bytes; a longer record is corrupt (and would panic `from_be_slice`).
            Some(b) => U256::try_from_be_slice(&b)
                .ok_or_else(|| StorageError::Corrupt(format!("storage value of {} bytes", b.len()))),
        }
    }

    /// Bytecode by code hash.
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>> {
        Ok(self.get(Table::Code, code_hash.as_slice())?.map(Bytes::from))
    }

    /// Consensus log index of the last applied entry (0 when none).
    fn applied_index(&self) -> Result<u64> {
        Ok(self
            .get(Table::Meta, meta_keys::APPLIED_INDEX)?
            .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or_default())
    }
}

impl<T: KvRead + ?Sized> ChainReader for T {}

/// Any key-value view can serve trie nodes.
pub struct TrieNodes<'a, T: ?Sized>(pub &'a T);

impl<T: KvRead + ?Sized> NodeReader for TrieNodes<'_, T> {
    fn trie_node(&self, hash: &B256) -> Result<Option<Vec<u8>>> {
        self.0.get(Table::TrieNodes, hash.as_slice())
    }
}

/// The state as of a past block: account and storage reads are answered from the state trie
/// under `state_root` (trie nodes are kept, so every block's state stays readable); other tables
/// read through. Implements [`KvRead`], so [`ChainReader`] and EVM execution work on it as on
/// the latest state.
pub struct StateAt<'a, R: ?Sized> {
    inner: &'a R,
    state_root: B256,
}

impl<'a, R: KvRead + ?Sized> StateAt<'a, R> {
    /// The state under `state_root`, read through `inner`.
    pub fn new(inner: &'a R, state_root: B256) -> Self {
        Self { inner, state_root }
    }

    fn trie_account(&self, address: &[u8]) -> Result<Option<Vec<u8>>> {
        let nodes = TrieNodes(self.inner);
        crate::trie::Trie::new(self.state_root, &nodes).get(&alloy_primitives::keccak256(address))
    }
}

impl<R: KvRead + ?Sized> KvRead for StateAt<'_, R> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match table {
            Table::Accounts => self.trie_account(key),
            Table::StorageSlots if key.len() == 52 => {
                let Some(account) = self.trie_account(&key[..20])? else { return Ok(None) };
                let account: TrieAccount = decode("account", &account)?;
                let nodes = TrieNodes(self.inner);
                let trie = crate::trie::Trie::new(account.storage_root, &nodes);
                let Some(value) = trie.get(&alloy_primitives::keccak256(&key[20..]))? else {
                    return Ok(None);
                };
                let value: U256 = decode("storage value", &value)?;
                Ok(Some(value.to_be_bytes::<32>().to_vec()))
            }
            _ => self.inner.get(table, key),
        }
    }
}
