//! Blocks, their transactions by position, their receipts.

use super::{resolve, EthRpc};
use crate::{
    convert::{rpc_block, rpc_receipt, rpc_transaction, TxContext},
    RpcError, RpcResult,
};
use alloy_consensus::{transaction::Recovered, Header};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, U64};
use alloy_rpc_types_eth::{Block, Transaction, TransactionReceipt};
use fogchain_storage::ChainReader;

impl EthRpc {
    pub(crate) fn block(&self, id: BlockId, full: bool) -> RpcResult<Option<Block>> {
        Ok(self.block_body(id)?.map(|(hash, header, body)| rpc_block(hash, header, body, full)))
    }

    pub(crate) fn transaction_in_block(&self, id: BlockId, index: U64) -> RpcResult<Option<Transaction>> {
        let Some((hash, header, body)) = self.block_body(id)? else { return Ok(None) };
        let index = index.to::<u64>() as usize;
        let (Some(tx), Some(sender)) = (body.transactions.get(index), body.senders.get(index)) else {
            return Ok(None);
        };
        let context = TxContext::new(hash, &header, index);
        Ok(Some(rpc_transaction(Recovered::new_unchecked(tx.clone(), *sender), Some(context))))
    }

    pub(crate) fn block_body(
        &self,
        id: BlockId,
    ) -> RpcResult<Option<(B256, Header, fogchain_storage::StoredBody)>> {
        let snapshot = self.inner.storage.snapshot();
        let (hash, header) = match resolve(&snapshot, id) {
            Ok(found) => found,
            Err(RpcError::Server(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = snapshot.body(&hash)?.ok_or_else(|| RpcError::Internal("missing body".into()))?;
        Ok(Some((hash, header, body)))
    }

    pub(crate) fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.inner.storage.head()?.1.number))
    }

    pub(crate) fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>> {
        self.block(BlockId::Number(number), full)
    }

    pub(crate) fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        self.block(BlockId::from(hash), full)
    }

    pub(crate) fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::from(hash))?.map(|(_, _, b)| U64::from(b.transactions.len())))
    }

    pub(crate) fn block_transaction_count_by_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::Number(number))?.map(|(_, _, b)| U64::from(b.transactions.len())))
    }

    pub(crate) fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        self.transaction_in_block(BlockId::from(hash), index)
    }

    pub(crate) fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        self.transaction_in_block(BlockId::Number(number), index)
    }

    pub(crate) fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let Some((hash, header, body)) = self.block_body(block)? else { return Ok(None) };
        let receipts = self.inner.storage.receipts(&hash)?.unwrap_or_default();
        Ok(Some(
            (0..body.transactions.len())
                .filter_map(|i| rpc_receipt(hash, &header, &body, &receipts, i))
                .collect(),
        ))
    }

    pub(crate) fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::from(hash))?.map(|_| U64::ZERO))
    }

    pub(crate) fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::Number(number))?.map(|_| U64::ZERO))
    }
}
