//! `debug_getRaw*` (geth): blocks, headers, receipts and transactions as consensus encodings.

use crate::{RpcError, RpcResult};
use alloy_eips::{eip2718::Encodable2718, BlockId};
use alloy_primitives::{Bytes, B256};
use alloy_rlp::Encodable;
use fogchain_storage::{ChainReader, Storage};
use jsonrpsee::proc_macros::rpc;

/// `debug_` namespace (raw encodings).
#[rpc(server, namespace = "debug")]
pub trait DebugApi {
    /// RLP block `[header, transactions, ommers, withdrawals]`.
    #[method(name = "getRawBlock")]
    fn raw_block(&self, block: BlockId) -> RpcResult<Bytes>;
    /// RLP header.
    #[method(name = "getRawHeader")]
    fn raw_header(&self, block: BlockId) -> RpcResult<Bytes>;
    /// EIP-2718 receipts of a block.
    #[method(name = "getRawReceipts")]
    fn raw_receipts(&self, block: BlockId) -> RpcResult<Vec<Bytes>>;
    /// EIP-2718 transaction (included or pooled).
    #[method(name = "getRawTransaction")]
    fn raw_transaction(&self, hash: B256) -> RpcResult<Bytes>;
}

/// Implementation of `debug_getRaw*`.
#[derive(Debug, Clone)]
pub struct DebugRpc {
    storage: Storage,
}

impl DebugRpc {
    /// Over the node's storage.
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    fn located(&self, block: BlockId) -> RpcResult<(B256, alloy_consensus::Header)> {
        crate::eth::resolve(&self.storage, block)
    }
}

impl DebugApiServer for DebugRpc {
    fn raw_block(&self, block: BlockId) -> RpcResult<Bytes> {
        let (hash, header) = self.located(block)?;
        let body = self.storage.body(&hash)?.ok_or_else(|| RpcError::Internal("missing body".into()))?;
        let withdrawals = header.withdrawals_root.map(|_| Default::default());
        let block = alloy_consensus::Block {
            header,
            body: alloy_consensus::BlockBody { transactions: body.transactions, ommers: vec![], withdrawals },
        };
        let mut out = Vec::new();
        block.encode(&mut out);
        Ok(out.into())
    }

    fn raw_header(&self, block: BlockId) -> RpcResult<Bytes> {
        let (_, header) = self.located(block)?;
        let mut out = Vec::new();
        header.encode(&mut out);
        Ok(out.into())
    }

    fn raw_receipts(&self, block: BlockId) -> RpcResult<Vec<Bytes>> {
        let (hash, _) = self.located(block)?;
        let receipts = self.storage.receipts(&hash)?.unwrap_or_default();
        Ok(receipts.iter().map(|r| Bytes::from(r.encoded_2718())).collect())
    }

    fn raw_transaction(&self, hash: B256) -> RpcResult<Bytes> {
        let Some(location) = self.storage.tx_location(&hash)? else {
            return Err(RpcError::Server("transaction not found".into()));
        };
        let (block_hash, _) = self
            .storage
            .header_by_number(location.block_number)?
            .ok_or_else(|| RpcError::Internal("missing header".into()))?;
        let body =
            self.storage.body(&block_hash)?.ok_or_else(|| RpcError::Internal("missing body".into()))?;
        let tx = body
            .transactions
            .get(location.index as usize)
            .ok_or_else(|| RpcError::Internal("bad index".into()))?;
        Ok(tx.encoded_2718().into())
    }
}
