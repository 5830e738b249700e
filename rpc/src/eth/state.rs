//! Account state at a block: balance, nonce, code, storage slots and EIP-1186 proofs.

use super::{resolve, EthRpc};
use crate::{RpcError, RpcResult};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, Bytes, B256, U256, U64};
use alloy_rpc_types_eth::EIP1186AccountProofResponse;
use alloy_serde::JsonStorageKey;
use fogchain_storage::{ChainReader, StateAt};

impl EthRpc {
    pub(crate) fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        self.with_state(block, |state, _| Ok(state.account(&address)?.map(|a| a.balance).unwrap_or_default()))
    }

    pub(crate) fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        let nonce = self.with_state(block, |state, _| {
            Ok(state.account(&address)?.map(|a| a.nonce).unwrap_or_default())
        })?;
        if block == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
            if let Some(pending) = self.inner.pool.pending_nonce(address) {
                return Ok(U64::from(pending.max(nonce)));
            }
        }
        Ok(U64::from(nonce))
    }

    pub(crate) fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        self.with_state(block, |state, _| {
            let Some(account) = state.account(&address)? else { return Ok(Bytes::new()) };
            Ok(state.code(&account.code_hash)?.unwrap_or_default())
        })
    }

    pub(crate) fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256> {
        self.with_state(block, |state, _| Ok(B256::from(state.storage(&address, &slot)?)))
    }

    pub(crate) fn proof(
        &self,
        address: Address,
        keys: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse> {
        use fogchain_storage::{trie::proof, TrieNodes};
        let max = self.inner.config.proof_max_keys;
        if keys.len() > max {
            return Err(RpcError::InvalidParams(format!("at most {max} storage keys per request")));
        }
        let snapshot = self.inner.storage.snapshot();
        let (_, header) = resolve(&snapshot, block.unwrap_or_default())?;
        let state = StateAt::new(&snapshot, header.state_root);
        let nodes = TrieNodes(&snapshot);
        let bytes = |nodes: Vec<Vec<u8>>| nodes.into_iter().map(Bytes::from).collect::<Vec<_>>();
        let account_proof = bytes(proof(&nodes, header.state_root, &alloy_primitives::keccak256(address))?);
        let account = state.account(&address)?;
        let storage_hash = account.as_ref().map_or(alloy_trie::EMPTY_ROOT_HASH, |a| a.storage_root);
        let mut storage_proof = Vec::with_capacity(keys.len());
        for key in keys {
            let slot = U256::from_be_bytes(key.as_b256().0);
            let value = state.storage(&address, &slot)?;
            let nodes_on_path =
                bytes(proof(&nodes, storage_hash, &alloy_primitives::keccak256(key.as_b256()))?);
            storage_proof.push(alloy_rpc_types_eth::EIP1186StorageProof { key, value, proof: nodes_on_path });
        }
        Ok(EIP1186AccountProofResponse {
            address,
            balance: account.as_ref().map(|a| a.balance).unwrap_or_default(),
            code_hash: account.as_ref().map_or(alloy_trie::KECCAK_EMPTY, |a| a.code_hash),
            nonce: account.as_ref().map(|a| a.nonce).unwrap_or_default(),
            storage_hash,
            account_proof,
            storage_proof,
        })
    }
}
