//! revm `Database` over stored state, with a write overlay that becomes [`StateChanges`].

use crate::ExecError;
use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_trie::{TrieAccount, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use fogchain_storage::{
    encode_account, encode_slot_value, trie::Trie, ChainReader, KvRead, StateChanges, StorageError, TrieNodes,
};
use revm::{
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    primitives::{AddressMap, HashMap},
    state::{Account, AccountInfo},
    Database, DatabaseCommit,
};
use std::collections::BTreeSet;

/// Storage errors as seen by revm.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DbError(#[from] pub StorageError);

impl DBErrorMarker for DbError {}

#[derive(Debug, Default)]
struct StorageOverlay {
    /// Storage was cleared (self-destruct or creation): unset slots read as zero.
    wiped: bool,
    /// Slot values read or written in this block.
    slots: HashMap<U256, U256>,
    /// Slots written in this block.
    dirty: BTreeSet<U256>,
}

/// Execution state for one block (or one `eth_call`): reads fall through to the stored state
/// in `reader`, writes committed by revm stay in memory until [`StateDb::finish`] turns them
/// into a [`StateChanges`] and a new state root.
pub struct StateDb<'a, R: ?Sized> {
    reader: &'a R,
    /// Current account view (`None` = absent). Holds both read cache and writes.
    accounts: HashMap<Address, Option<AccountInfo>>,
    /// Accounts as stored before this block, kept from their first load (for the trie update).
    original: HashMap<Address, Option<TrieAccount>>,
    storage: HashMap<Address, StorageOverlay>,
    codes: HashMap<B256, Bytecode>,
    new_codes: Vec<(B256, alloy_primitives::Bytes)>,
    dirty: BTreeSet<Address>,
    /// EIP-161: touched empty accounts are deleted (Spurious Dragon and later).
    state_clear: bool,
}

impl<R: ?Sized> std::fmt::Debug for StateDb<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb")
            .field("accounts", &self.accounts.len())
            .field("dirty", &self.dirty.len())
            .finish_non_exhaustive()
    }
}

impl<'a, R: KvRead + ?Sized> StateDb<'a, R> {
    /// A state view over `reader` (the parent block's state).
    pub fn new(reader: &'a R, state_clear: bool) -> Self {
        Self {
            reader,
            accounts: HashMap::default(),
            original: HashMap::default(),
            storage: HashMap::default(),
            codes: HashMap::default(),
            new_codes: Vec::new(),
            dirty: BTreeSet::new(),
            state_clear,
        }
    }

    /// Current account info, loading it from storage when not cached.
    pub fn account_info(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        if let Some(info) = self.accounts.get(&address) {
            return Ok(info.clone());
        }
        let stored = self.reader.account(&address)?;
        let info = stored.as_ref().map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code: None,
            ..Default::default()
        });
        self.original.insert(address, stored);
        self.accounts.insert(address, info.clone());
        Ok(info)
    }

    /// Applies the block's writes to the account and storage tries and returns the new state
    /// root with everything the block must persist. Cost grows with the changed keys only.
    /// `parent_root` is the state root the reader's state hashes to.
    pub fn finish(self, parent_root: B256) -> Result<(B256, StateChanges), ExecError> {
        let nodes = TrieNodes(self.reader);
        let mut changes = StateChanges { codes: self.new_codes, ..Default::default() };
        let mut account_trie = Trie::new(parent_root, &nodes);
        for address in &self.dirty {
            let old = match self.original.get(address) {
                Some(stored) => *stored,
                None => self.reader.account(address)?,
            };
            let new = self.accounts.get(address).cloned().flatten();
            let overlay = self.storage.get(address);
            let wiped = overlay.is_some_and(|o| o.wiped) || new.is_none();
            let old_root = old.as_ref().map_or(EMPTY_ROOT_HASH, |a| a.storage_root);
            if wiped && old_root != EMPTY_ROOT_HASH {
                changes.wiped.push(*address);
            }
            let Some(info) = new else {
                if old.is_some() {
                    account_trie.set(&keccak256(address), Vec::new())?;
                    changes.accounts.push((*address, None));
                }
                continue;
            };
            let mut storage_root = if wiped { EMPTY_ROOT_HASH } else { old_root };
            if let Some(overlay) = overlay.filter(|o| !o.dirty.is_empty()) {
                let mut storage_trie = Trie::new(storage_root, &nodes);
                for slot in &overlay.dirty {
                    let value = overlay.slots.get(slot).copied().unwrap_or_default();
                    storage_trie.set(&keccak256(slot.to_be_bytes::<32>()), encode_slot_value(&value))?;
                    changes.storage.push((*address, *slot, value));
                }
                storage_root = storage_trie.commit(&mut changes.trie_nodes);
            }
            #[allow(clippy::needless_update)] // alloy-trie's `account-ext` adds a field
            let account = TrieAccount {
                nonce: info.nonce,
                balance: info.balance,
                storage_root,
                code_hash: info.code_hash,
                ..Default::default()
            };
            if old.as_ref() != Some(&account) {
                account_trie.set(&keccak256(address), encode_account(&account))?;
                changes.accounts.push((*address, Some(account)));
            }
        }
        let root = account_trie.commit(&mut changes.trie_nodes);
        Ok((root, changes))
    }
}

impl<R: KvRead + ?Sized> Database for StateDb<'_, R> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        self.account_info(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.codes.get(&code_hash) {
            return Ok(code.clone());
        }
        let code = self.reader.code(&code_hash)?.map(Bytecode::new_raw).unwrap_or_default();
        self.codes.insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        let overlay = self.storage.entry(address).or_default();
        if let Some(v) = overlay.slots.get(&index) {
            return Ok(*v);
        }
        let value = if overlay.wiped { U256::ZERO } else { self.reader.storage(&address, &index)? };
        overlay.slots.insert(index, value);
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        Ok(self.reader.block_hash(number)?.unwrap_or_default())
    }
}

impl<R: KvRead + ?Sized> DatabaseCommit for StateDb<'_, R> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            self.dirty.insert(address);
            let overlay = self.storage.entry(address).or_default();
            if account.is_selfdestructed() {
                self.accounts.insert(address, None);
                *overlay = StorageOverlay { wiped: true, ..Default::default() };
                continue;
            }
            if account.is_created() {
                // A new contract starts with empty storage (EIP-7610 forbids creating over
                // non-empty storage, so nothing of value is dropped here).
                *overlay = StorageOverlay { wiped: true, ..Default::default() };
            }
            for (slot, value) in account.storage.iter().filter(|(_, v)| v.is_changed()) {
                overlay.slots.insert(*slot, value.present_value);
                overlay.dirty.insert(*slot);
            }
            let mut info = account.info.clone();
            if let Some(code) = info.code.take() {
                if info.code_hash != KECCAK_EMPTY && !self.codes.contains_key(&info.code_hash) {
                    self.new_codes.push((info.code_hash, code.original_bytes()));
                    self.codes.insert(info.code_hash, code);
                }
            }
            let empty = info.nonce == 0 && info.balance.is_zero() && info.code_hash == KECCAK_EMPTY;
            if self.state_clear && empty {
                self.accounts.insert(address, None);
            } else {
                self.accounts.insert(address, Some(info));
            }
        }
    }
}
