//! Transactions: submission to the pool, lookup (mined, then pooled), receipts.

use super::EthRpc;
use crate::{
    convert::{rpc_receipt, rpc_transaction, TxContext},
    RpcError, RpcResult,
};
use alloy_consensus::{transaction::Recovered, Header, TxEnvelope};
use alloy_eips::Decodable2718;
use alloy_primitives::{Bytes, B256};
use alloy_rpc_types_eth::{Transaction, TransactionReceipt};
use fogchain_storage::ChainReader;

impl EthRpc {
    pub(crate) fn located_transaction(
        &self,
        hash: B256,
    ) -> RpcResult<Option<(B256, Header, fogchain_storage::StoredBody, usize)>> {
        let snapshot = self.inner.storage.snapshot();
        let Some(location) = snapshot.tx_location(&hash)? else { return Ok(None) };
        let Some((block_hash, header)) = snapshot.header_by_number(location.block_number)? else {
            return Ok(None);
        };
        let body = snapshot.body(&block_hash)?.ok_or_else(|| RpcError::Internal("missing body".into()))?;
        Ok(Some((block_hash, header, body, location.index as usize)))
    }

    pub(crate) fn send_raw_transaction(&self, bytes: Bytes) -> RpcResult<B256> {
        let mut buf = &bytes[..];
        let tx = TxEnvelope::decode_2718(&mut buf).map_err(|e| RpcError::Server(format!("rlp: {e}")))?;
        if !buf.is_empty() {
            return Err(RpcError::Server("rlp: input contains more than one value".into()));
        }
        Ok(self.inner.pool.add(tx, bytes.len())?)
    }

    pub(crate) fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        if let Some((block_hash, header, body, index)) = self.located_transaction(hash)? {
            let tx = body.transactions[index].clone();
            let sender = body.senders[index];
            let context = TxContext::new(block_hash, &header, index);
            return Ok(Some(rpc_transaction(Recovered::new_unchecked(tx, sender), Some(context))));
        }
        Ok(self.inner.pool.get(&hash).map(|tx| rpc_transaction(tx, None)))
    }

    pub(crate) fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        let Some((block_hash, header, body, index)) = self.located_transaction(hash)? else {
            return Ok(None);
        };
        let receipts = self.inner.storage.receipts(&block_hash)?.unwrap_or_default();
        Ok(rpc_receipt(block_hash, &header, &body, &receipts, index))
    }
}
