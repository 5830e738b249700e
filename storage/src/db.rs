//! The RocksDB database: open, genesis initialisation, atomic block writes, snapshots.

use crate::{
    meta_keys, slot_key,
    trie::{NewNodes, Trie},
    ChainReader, KvRead, Result, StorageError, StoredBody, StoredReceipts, Table, TrieNodes, TxLocation,
    SCHEMA_VERSION,
};
use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rlp::{Decodable, Encodable};
use alloy_trie::{TrieAccount, EMPTY_ROOT_HASH};
use fogchain_genesis::ChainSpec;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use std::{path::Path, sync::Arc};

/// State-trie leaf value of an account: `rlp([nonce, balance, storageRoot, codeHash])`.
pub fn encode_account(account: &TrieAccount) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    account.encode(&mut out);
    out
}

/// Storage-trie leaf value of a slot: `rlp(value)`; empty for zero (the slot is removed).
pub fn encode_slot_value(value: &U256) -> Vec<u8> {
    if value.is_zero() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(33);
    value.encode(&mut out);
    out
}

/// State changes of one block, as produced by execution and written by [`Storage::write_block`].
#[derive(Debug, Clone, Default)]
pub struct StateChanges {
    /// Accounts whose storage was wiped before `storage` is applied (self-destructed or
    /// re-created accounts).
    pub wiped: Vec<Address>,
    /// Changed accounts: `None` deletes the account (EIP-161 empty or self-destructed).
    pub accounts: Vec<(Address, Option<TrieAccount>)>,
    /// Changed storage slots: (address, slot, new value); zero deletes the slot.
    pub storage: Vec<(Address, U256, U256)>,
    /// New contract code: (code hash, bytecode).
    pub codes: Vec<(B256, Bytes)>,
    /// New trie nodes of the account and storage tries.
    pub trie_nodes: NewNodes,
}

/// Everything one applied block writes, in one atomic batch.
#[derive(Debug, Clone)]
pub struct BlockWrite {
    /// Block hash.
    pub hash: B256,
    /// Header.
    pub header: Header,
    /// Transactions and senders.
    pub body: StoredBody,
    /// Receipts.
    pub receipts: StoredReceipts,
    /// State changes.
    pub state: StateChanges,
    /// Consensus log index that produced this block, recorded atomically with it.
    pub applied_index: Option<u64>,
}

/// One raw write of [`Storage::write_raw`].
#[derive(Debug, Clone)]
pub enum RawOp {
    /// Set `key` to `value`.
    Put(Table, Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Table, Vec<u8>),
    /// Remove keys in `[from, to)`.
    DeleteRange(Table, Vec<u8>, Vec<u8>),
}

/// Handle to a node's database. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Storage {
    db: Arc<DB>,
    sync_writes: bool,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("path", &self.db.path()).finish()
    }
}

/// Block cache shared by every column family, bytes (index and filter blocks are charged to it).
const BLOCK_CACHE_BYTES: usize = 32 << 20;
/// All memtables together, bytes: past it RocksDB flushes the largest one.
const MEMTABLES_BYTES: usize = 64 << 20;
/// One column family's memtable, bytes.
const CF_WRITE_BUFFER_BYTES: usize = 16 << 20;

impl Storage {
    /// Opens (or creates) the database in `path` for this chain spec. A new database is
    /// initialised with the genesis block and state; an existing one resumes from its head
    /// and is refused when it was made for another genesis.
    pub fn open(path: &Path, spec: &ChainSpec) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        opts.set_max_open_files(512);
        // A fixed memory budget: RocksDB's defaults give every column family its own 32 MiB
        // block cache and up to 2 x 64 MiB of memtables (14 families: over 2 GiB at worst).
        opts.set_db_write_buffer_size(MEMTABLES_BYTES);
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        let cfs = Table::ALL.iter().map(|t| {
            let mut cf = Options::default();
            cf.set_compression_type(rocksdb::DBCompressionType::Lz4);
            cf.set_write_buffer_size(CF_WRITE_BUFFER_BYTES);
            cf.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(t.name(), cf)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        let storage = Self { db: Arc::new(db), sync_writes: true };
        match storage.genesis_hash()? {
            Some(stored) if stored != spec.genesis_hash => {
                return Err(StorageError::GenesisMismatch {
                    path: path.display().to_string(),
                    stored,
                    expected: spec.genesis_hash,
                })
            }
            Some(_) => {
                let stored = storage
                    .get(Table::Meta, meta_keys::CHAIN_ID)?
                    .and_then(|b| b.try_into().ok().map(u64::from_be_bytes));
                if let Some(stored) = stored.filter(|id| *id != spec.chain_id()) {
                    return Err(StorageError::ChainIdMismatch {
                        path: path.display().to_string(),
                        stored,
                        expected: spec.chain_id(),
                    });
                }
                let version = storage
                    .get(Table::Meta, meta_keys::SCHEMA_VERSION)?
                    .and_then(|b| b.try_into().ok().map(u32::from_be_bytes))
                    .unwrap_or(1);
                match version {
                    1 => storage.build_log_index()?,
                    SCHEMA_VERSION => {}
                    other => {
                        return Err(StorageError::Corrupt(format!(
                            "database schema version {other} is newer than this build's {SCHEMA_VERSION}"
                        )))
                    }
                }
            }
            None => storage.init_genesis(spec)?,
        }
        Ok(storage)
    }

    /// Whether block writes are fsynced (default true). A Raft node turns it off: its fsynced
    /// Raft log is the durable record, and RocksDB's WAL keeps writes in order, so after a power
    /// loss the last unsynced blocks and their applied index are lost together and re-applied
    /// from the log. [`Self::write_raw`] takes its own `sync` flag.
    pub fn set_sync_writes(&mut self, sync: bool) {
        self.sync_writes = sync;
    }

    /// The RocksDB handle (for `stats.rs`).
    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    pub(crate) fn cf(&self, table: Table) -> &rocksdb::ColumnFamily {
        // Every table is created in `open`; a missing handle is a programming error.
        self.db.cf_handle(table.name()).expect("column family created at open")
    }

    fn init_genesis(&self, spec: &ChainSpec) -> Result<()> {
        let mut state = StateChanges::default();
        let nodes = TrieNodes(self);
        let mut accounts = Trie::new(EMPTY_ROOT_HASH, &nodes);
        for (address, alloc) in &spec.alloc {
            let mut storage_trie = Trie::new(EMPTY_ROOT_HASH, &nodes);
            for (slot, value) in &alloc.storage {
                storage_trie.set(&keccak256(slot.to_be_bytes::<32>()), encode_slot_value(value))?;
                state.storage.push((*address, *slot, *value));
            }
            let storage_root = storage_trie.commit(&mut state.trie_nodes);
            let code_hash = alloc.code_hash();
            if !alloc.code.is_empty() {
                state.codes.push((code_hash, alloc.code.clone()));
            }
            #[allow(clippy::needless_update)] // alloy-trie's `account-ext` adds a field
            let account = TrieAccount {
                nonce: alloc.nonce,
                balance: alloc.balance,
                storage_root,
                code_hash,
                ..Default::default()
            };
            accounts.set(&keccak256(address), encode_account(&account))?;
            state.accounts.push((*address, Some(account)));
        }
        let root = accounts.commit(&mut state.trie_nodes);
        if root != spec.genesis_header.state_root {
            return Err(StorageError::GenesisRoot { got: root, expected: spec.genesis_header.state_root });
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Table::Meta), meta_keys::GENESIS_HASH, spec.genesis_hash);
        batch.put_cf(self.cf(Table::Meta), meta_keys::SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes());
        batch.put_cf(self.cf(Table::Meta), meta_keys::CHAIN_ID, spec.chain_id().to_be_bytes());
        self.write_block_into(
            &mut batch,
            &BlockWrite {
                hash: spec.genesis_hash,
                header: spec.genesis_header.clone(),
                body: StoredBody::default(),
                receipts: vec![],
                state,
                applied_index: None,
            },
        );
        self.commit(batch)
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(self.sync_writes);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Writes a block and makes it the head, atomically (one fsynced `WriteBatch`).
    pub fn write_block(&self, block: &BlockWrite) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.write_block_into(&mut batch, block);
        self.commit(batch)
    }

    fn write_block_into(&self, batch: &mut WriteBatch, block: &BlockWrite) {
        let hash = block.hash.as_slice();
        let mut buf = Vec::with_capacity(1024);
        block.header.encode(&mut buf);
        batch.put_cf(self.cf(Table::Headers), hash, &buf);
        buf.clear();
        block.body.encode(&mut buf);
        batch.put_cf(self.cf(Table::Bodies), hash, &buf);
        buf.clear();
        block.receipts.encode(&mut buf);
        batch.put_cf(self.cf(Table::Receipts), hash, &buf);
        for (index, tx) in block.body.transactions.iter().enumerate() {
            let location = TxLocation { block_number: block.header.number, index: index as u32 };
            batch.put_cf(self.cf(Table::TxLookup), tx.tx_hash(), location.encode());
        }
        batch.put_cf(self.cf(Table::Canonical), block.header.number.to_be_bytes(), hash);
        self.index_logs_into(batch, block.header.number, &block.receipts);

        let state = &block.state;
        let slots = self.cf(Table::StorageSlots);
        for address in &state.wiped {
            let from = slot_key(address, &U256::ZERO);
            let last = slot_key(address, &U256::MAX);
            batch.delete_range_cf(slots, from, last);
            batch.delete_cf(slots, last);
        }
        for (address, account) in &state.accounts {
            match account {
                Some(a) => batch.put_cf(self.cf(Table::Accounts), address, encode_account(a)),
                None => batch.delete_cf(self.cf(Table::Accounts), address),
            }
        }
        for (address, slot, value) in &state.storage {
            let key = slot_key(address, slot);
            if value.is_zero() {
                batch.delete_cf(slots, key);
            } else {
                batch.put_cf(slots, key, value.to_be_bytes::<32>());
            }
        }
        for (hash, code) in &state.codes {
            batch.put_cf(self.cf(Table::Code), hash, code);
        }
        for (hash, node) in &state.trie_nodes {
            batch.put_cf(self.cf(Table::TrieNodes), hash, node);
        }
        if let Some(index) = block.applied_index {
            batch.put_cf(self.cf(Table::Meta), meta_keys::APPLIED_INDEX, index.to_be_bytes());
        }
        batch.put_cf(self.cf(Table::Meta), meta_keys::HEAD, hash);
    }

    fn index_logs_into(&self, batch: &mut WriteBatch, number: u64, receipts: &StoredReceipts) {
        let mut addresses = std::collections::BTreeSet::new();
        let mut topics = std::collections::BTreeSet::new();
        for log in receipts.iter().flat_map(|r| r.logs()) {
            addresses.insert(log.address);
            topics.extend(log.topics().iter().copied());
        }
        let suffix = number.to_be_bytes();
        for address in addresses {
            batch.put_cf(self.cf(Table::LogAddresses), [address.as_slice(), &suffix].concat(), []);
        }
        for topic in topics {
            batch.put_cf(self.cf(Table::LogTopics), [topic.as_slice(), &suffix].concat(), []);
        }
    }

    /// Builds the log index of every canonical block (opening a schema-1 database).
    fn build_log_index(&self) -> Result<()> {
        let head = self.head()?.1.number;
        tracing::info!(blocks = head + 1, "building the log index (one-time upgrade)");
        let mut batch = WriteBatch::default();
        for number in 0..=head {
            let Some(hash) = self.block_hash(number)? else { continue };
            let receipts = self.receipts(&hash)?.unwrap_or_default();
            self.index_logs_into(&mut batch, number, &receipts);
            if batch.len() > 10_000 {
                self.commit(std::mem::take(&mut batch))?;
            }
        }
        batch.put_cf(self.cf(Table::Meta), meta_keys::SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes());
        self.commit(batch)
    }

    /// Block numbers in `[from, to]` holding a log emitted by `key` (an address in
    /// [`Table::LogAddresses`] or a topic in [`Table::LogTopics`]), ascending; at most `limit`.
    pub fn indexed_blocks(
        &self,
        table: Table,
        key: &[u8],
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u64>> {
        let start = [key, &from.to_be_bytes()].concat();
        let mut out = Vec::new();
        let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(self.cf(table), mode) {
            let (k, _) = item?;
            if k.len() != key.len() + 8 || !k.starts_with(key) {
                break;
            }
            let number = u64::from_be_bytes(k[key.len()..].try_into().unwrap_or_default());
            if number > to || out.len() >= limit {
                break;
            }
            out.push(number);
        }
        Ok(out)
    }

    /// Recomputes the state root from the flat `accounts` and `storage` tables from scratch
    /// (O(state), alloy-trie's hash builder), checking every stored storage root on the way.
    /// A consistency check for tests and operators: it must equal the head's `stateRoot`.
    pub fn state_root_from_scratch(&self) -> Result<B256> {
        let mut accounts = Vec::new();
        let slots_cf = self.cf(Table::StorageSlots);
        for item in self.db.iterator_cf(self.cf(Table::Accounts), rocksdb::IteratorMode::Start) {
            let (key, value) = item?;
            let address = Address::try_from(&key[..])
                .map_err(|_| StorageError::Corrupt("account key is not an address".into()))?;
            let account = TrieAccount::decode(&mut &value[..])
                .map_err(|e| StorageError::Corrupt(format!("account {address}: {e}")))?;
            let mut slots = Vec::new();
            let from = rocksdb::IteratorMode::From(&key, rocksdb::Direction::Forward);
            for item in self.db.iterator_cf(slots_cf, from) {
                let (slot_key, slot_value) = item?;
                if !slot_key.starts_with(&key) {
                    break;
                }
                slots.push((B256::from_slice(&slot_key[20..]), U256::from_be_slice(&slot_value)));
            }
            let storage_root = alloy_trie::root::storage_root_unhashed(slots);
            if storage_root != account.storage_root {
                return Err(StorageError::Corrupt(format!(
                    "storage root of {address}: trie says {}, slots give {storage_root}",
                    account.storage_root
                )));
            }
            accounts.push((address, account));
        }
        Ok(alloy_trie::root::state_root_unhashed(accounts))
    }

    /// Applies raw writes in one `WriteBatch`, fsynced when `sync`. Used by the consensus crate
    /// for the Raft tables and the applied index; block data goes through [`Self::write_block`].
    pub fn write_raw(&self, ops: &[RawOp], sync: bool) -> Result<()> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                RawOp::Put(table, key, value) => batch.put_cf(self.cf(*table), key, value),
                RawOp::Delete(table, key) => batch.delete_cf(self.cf(*table), key),
                RawOp::DeleteRange(table, from, to) => batch.delete_range_cf(self.cf(*table), from, to),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Every `(key, value)` of `table` in key order (for loading the Raft log at start).
    pub fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.db
            .iterator_cf(self.cf(table), rocksdb::IteratorMode::Start)
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
            .collect()
    }

    /// A consistent read-only view of the database as of now.
    pub fn snapshot(&self) -> StateSnapshot<'_> {
        StateSnapshot { storage: self, snapshot: self.db.snapshot() }
    }
}

impl KvRead for Storage {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(table), key)?)
    }
}

/// A consistent point-in-time view (a RocksDB snapshot): every read sees the same head and state.
pub struct StateSnapshot<'a> {
    storage: &'a Storage,
    snapshot: rocksdb::Snapshot<'a>,
}

impl KvRead for StateSnapshot<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snapshot.get_cf(self.storage.cf(table), key)?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloy_genesis::{Genesis, GenesisAccount};

    /// A Prague chain with a contract (code, storage) and a funded account.
    pub(crate) fn spec(chain_id: u64) -> ChainSpec {
        let mut g = Genesis {
            config: fogchain_genesis::prague_chain_config(chain_id),
            gas_limit: 30_000_000,
            ..Default::default()
        };
        let contract = GenesisAccount::default()
            .with_balance(U256::from(5))
            .with_code(Some(Bytes::from_static(&[0x60, 0x00, 0x54, 0x00])))
            .with_storage(Some([(B256::with_last_byte(1), B256::with_last_byte(9))].into()));
        g.alloc.insert(Address::with_last_byte(0xaa), contract);
        g.alloc.insert(Address::with_last_byte(0xbb), GenesisAccount::default().with_balance(U256::from(7)));
        ChainSpec::new(g, Default::default()).unwrap()
    }

    #[test]
    fn corrupt_records_read_as_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let db = Storage::open(dir.path(), &spec(1337)).unwrap();
        let (address, slot) = (Address::with_last_byte(0xaa), U256::from(1));
        // A slot value of 33 bytes: `U256::from_be_slice` would panic on it.
        db.write_raw(
            &[RawOp::Put(Table::StorageSlots, slot_key(&address, &slot).to_vec(), vec![1; 33])],
            false,
        )
        .unwrap();
        assert!(matches!(db.storage(&address, &slot), Err(StorageError::Corrupt(_))));
        db.write_raw(&[RawOp::Put(Table::Accounts, address.to_vec(), vec![0xff; 3])], false).unwrap();
        assert!(matches!(db.account(&address), Err(StorageError::Corrupt(_))));
    }

    #[test]
    fn genesis_is_written_and_reopen_resumes_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(1337);
        {
            let db = Storage::open(dir.path(), &s).unwrap();
            let (hash, header) = db.head().unwrap();
            assert_eq!(hash, s.genesis_hash);
            assert_eq!(header, s.genesis_header);
            let acc = db.account(&Address::with_last_byte(0xaa)).unwrap().unwrap();
            assert_eq!(acc.balance, U256::from(5));
            assert_eq!(db.storage(&Address::with_last_byte(0xaa), &U256::from(1)).unwrap(), U256::from(9));
            assert_eq!(db.code(&acc.code_hash).unwrap().unwrap().len(), 4);
            assert_eq!(db.block_hash(0).unwrap(), Some(s.genesis_hash));
        }
        let db = Storage::open(dir.path(), &s).unwrap();
        assert_eq!(db.head_hash().unwrap(), s.genesis_hash);
        drop(db);
        // Same alloc, other chain id: the genesis block is identical, the chain is not.
        let err = Storage::open(dir.path(), &spec(1338)).unwrap_err();
        assert!(matches!(err, StorageError::ChainIdMismatch { stored: 1337, expected: 1338, .. }), "{err}");
        assert!(err.to_string().contains("belongs to another chain"));
        let mut other = spec(1337);
        other.genesis.alloc.clear();
        let other = ChainSpec::new(other.genesis, Default::default()).unwrap();
        let err = Storage::open(dir.path(), &other).unwrap_err();
        assert!(matches!(err, StorageError::GenesisMismatch { .. }), "{err}");
    }
}
