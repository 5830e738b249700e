//! Account permissioning: who may transact, deploy contracts and call restricted contracts,
//! read straight from the storage of the `AccountPermissions` contract
//! (`contracts/src/AccountPermissions.sol`) predeployed at [`ACCOUNT_PERMISSIONS`].
//!
//! The pool applies the rule at admission (against the head state) and [`crate::execute_block`]
//! applies it to every transaction of a block being built or validated, against the state of
//! the block's parent: a change the contract makes in block N governs blocks N+1 on, whatever
//! the order of transactions inside N, so every node decides the same. A chain whose genesis
//! has no code at [`ACCOUNT_PERMISSIONS`] is open (`fogchain devnet --open`): nothing is checked.
//!
//! Storage layout (the contract's consensus interface, Solidity's rules for mappings):
//! `accounts[a]` at `keccak256(a . 0)`, one word: byte 0 status, byte 1 roles, bytes 2-9 the
//! organisation id; `organisations[o].status` at `keccak256(o . 1)`, byte 0;
//! `restricted[c]` at `keccak256(c . 2)`; `mayCall[c][a]` at `keccak256(a . keccak256(c . 3))`;
//! `restrictedCount` at slot 4 (while it is 0 no `restricted[to]` is read).

use alloy_primitives::{keccak256, Address, TxKind, B256, U256};
use alloy_trie::KECCAK_EMPTY;
use fogchain_storage::{ChainReader, KvRead, StorageError};
use std::collections::HashMap;

/// Where genesis puts the `AccountPermissions` contract.
pub const ACCOUNT_PERMISSIONS: Address = fogchain_contracts::ACCOUNT_PERMISSIONS_ADDRESS;

/// Account and organisation status, as the contract encodes it.
pub mod status {
    /// Unknown: may not transact.
    pub const NONE: u8 = 0;
    /// May transact (with its roles).
    pub const ACTIVE: u8 = 1;
    /// Known but barred.
    pub const SUSPENDED: u8 = 2;
}

/// Role bits of an account.
pub mod roles {
    /// May send transactions.
    pub const TRANSACT: u8 = 1;
    /// May send contract creations (with [`TRANSACT`]).
    pub const DEPLOY: u8 = 2;
}

/// Why a transaction's sender may not send it. `Display` is the error the pool answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPermitted {
    /// The sender is not a known account, or lacks the TRANSACT role.
    #[error("account not permitted to transact")]
    Transact,
    /// A creation from a sender without the DEPLOY role.
    #[error("account not permitted to deploy contracts")]
    Deploy,
    /// A call of a restricted contract the sender was not given.
    #[error("account not permitted to call contract {0}")]
    Call(Address),
    /// The sender's account is suspended.
    #[error("account suspended")]
    AccountSuspended,
    /// The sender's organisation is suspended.
    #[error("account's organisation {0} suspended")]
    OrganisationSuspended(u64),
}

/// One `accounts[a]` word, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AccountWord {
    status: u8,
    roles: u8,
    org: u64,
}

impl AccountWord {
    fn decode(word: U256) -> Self {
        let bytes = word.to_le_bytes::<32>();
        let mut org = [0u8; 8];
        org.copy_from_slice(&bytes[2..10]);
        Self { status: bytes[0], roles: bytes[1], org: u64::from_le_bytes(org) }
    }
}

/// The slot of `mapping[key]` for a mapping declared at `slot` (Solidity: `keccak256(key . slot)`).
fn mapping_slot(key: B256, slot: U256) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(key.as_slice());
    preimage[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
}

fn address_key(a: Address) -> B256 {
    a.into_word()
}

/// The rule over one state (a parent block's, or the head's), with what it read cached: a
/// block of transfers from few senders reads each sender's word once. Build one per block.
#[derive(Debug)]
pub struct Permissions<'a, R: ?Sized> {
    reader: &'a R,
    /// False on an open chain: everything is permitted and nothing is read.
    enabled: bool,
    accounts: HashMap<Address, AccountWord>,
    organisations: HashMap<u64, u8>,
    restricted: HashMap<Address, bool>,
    /// Whether any contract is restricted (`restrictedCount != 0`), read once.
    any_restricted: Option<bool>,
}

impl<'a, R: KvRead + ?Sized> Permissions<'a, R> {
    /// The rule as the state in `reader` has it (one account read to see whether the chain is
    /// permissioned at all).
    pub fn new(reader: &'a R) -> Result<Self, StorageError> {
        let enabled = reader.account(&ACCOUNT_PERMISSIONS)?.is_some_and(|a| a.code_hash != KECCAK_EMPTY);
        Ok(Self::with_enabled(reader, enabled))
    }

    /// As [`Permissions::new`] when the caller already knows whether the chain is permissioned
    /// (the contract's presence never changes after genesis: nothing can create code at that
    /// address, and it has no `SELFDESTRUCT`).
    pub fn with_enabled(reader: &'a R, enabled: bool) -> Self {
        Self {
            reader,
            enabled,
            accounts: HashMap::new(),
            organisations: HashMap::new(),
            restricted: HashMap::new(),
            any_restricted: None,
        }
    }

    /// Whether the state has account permissioning.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn slot(&self, slot: U256) -> Result<U256, StorageError> {
        self.reader.storage(&ACCOUNT_PERMISSIONS, &slot)
    }

    fn account(&mut self, a: Address) -> Result<AccountWord, StorageError> {
        if let Some(word) = self.accounts.get(&a) {
            return Ok(*word);
        }
        let word = AccountWord::decode(self.slot(mapping_slot(address_key(a), U256::ZERO))?);
        self.accounts.insert(a, word);
        Ok(word)
    }

    fn organisation_status(&mut self, org: u64) -> Result<u8, StorageError> {
        if let Some(status) = self.organisations.get(&org) {
            return Ok(*status);
        }
        let word = self.slot(mapping_slot(U256::from(org).into(), U256::from(1)))?;
        let status = word.to_le_bytes::<32>()[0];
        self.organisations.insert(org, status);
        Ok(status)
    }

    fn is_restricted(&mut self, target: Address) -> Result<bool, StorageError> {
        let any = match self.any_restricted {
            Some(any) => any,
            None => *self.any_restricted.insert(!self.slot(U256::from(4))?.is_zero()),
        };
        if !any {
            return Ok(false);
        }
        if let Some(on) = self.restricted.get(&target) {
            return Ok(*on);
        }
        let on = !self.slot(mapping_slot(address_key(target), U256::from(2)))?.is_zero();
        self.restricted.insert(target, on);
        Ok(on)
    }

    fn may_call(&self, target: Address, account: Address) -> Result<bool, StorageError> {
        let inner = mapping_slot(address_key(target), U256::from(3));
        Ok(!self.slot(mapping_slot(address_key(account), inner))?.is_zero())
    }

    /// Whether `sender` may send a transaction of `kind` (a creation or a call of `to`). The
    /// outer error is a storage fault; the inner one the refusal.
    pub fn check(&mut self, sender: Address, kind: TxKind) -> Result<Result<(), NotPermitted>, StorageError> {
        if !self.enabled {
            return Ok(Ok(()));
        }
        let account = self.account(sender)?;
        match account.status {
            status::ACTIVE => {}
            status::SUSPENDED => return Ok(Err(NotPermitted::AccountSuspended)),
            _ => return Ok(Err(NotPermitted::Transact)),
        }
        if self.organisation_status(account.org)? != status::ACTIVE {
            return Ok(Err(NotPermitted::OrganisationSuspended(account.org)));
        }
        if account.roles & roles::TRANSACT == 0 {
            return Ok(Err(NotPermitted::Transact));
        }
        match kind {
            TxKind::Create if account.roles & roles::DEPLOY == 0 => Ok(Err(NotPermitted::Deploy)),
            TxKind::Create => Ok(Ok(())),
            TxKind::Call(to) => {
                if self.is_restricted(to)? && !self.may_call(to, sender)? {
                    Ok(Err(NotPermitted::Call(to)))
                } else {
                    Ok(Ok(()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_words_decode_as_solidity_packs_them() {
        // Account(status 1, roles 3, org 0x0102030405060708): low-order bytes first.
        let word = U256::from(1u64) | (U256::from(3u64) << 8) | (U256::from(0x0102030405060708u64) << 16);
        assert_eq!(AccountWord::decode(word), AccountWord { status: 1, roles: 3, org: 0x0102030405060708 });
        assert_eq!(AccountWord::decode(U256::ZERO).status, status::NONE);
    }
}
