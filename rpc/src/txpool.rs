//! `txpool_` namespace (geth's shapes): status, content, contentFrom, inspect.

use crate::{convert::rpc_transaction, RpcResult};
use alloy_consensus::{transaction::Recovered, Transaction as _, TxEnvelope};
use alloy_primitives::{Address, U64};
use alloy_rpc_types_eth::Transaction;
use fogchain_txpool::TxPool;
use jsonrpsee::proc_macros::rpc;
use serde::Serialize;
use std::{collections::BTreeMap, sync::Arc};

/// `txpool_status`: counts as hex quantities.
#[derive(Debug, Clone, Serialize)]
pub struct TxPoolStatus {
    /// Executable now.
    pub pending: U64,
    /// Waiting for a nonce gap to close.
    pub queued: U64,
}

/// Per sender (EIP-55 checksummed, as geth), per nonce (decimal string).
pub type ByAccount<T> = BTreeMap<String, BTreeMap<String, T>>;

/// `txpool_content` / `txpool_inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct TxPoolContent<T> {
    /// Executable now.
    pub pending: ByAccount<T>,
    /// Waiting for a nonce gap to close.
    pub queued: ByAccount<T>,
}

/// `txpool_contentFrom`.
#[derive(Debug, Clone, Serialize)]
pub struct TxPoolContentFrom {
    /// Executable now, by nonce.
    pub pending: BTreeMap<String, Transaction>,
    /// Waiting, by nonce.
    pub queued: BTreeMap<String, Transaction>,
}

/// `txpool_` namespace.
#[rpc(server, namespace = "txpool")]
pub trait TxPoolRpcApi {
    /// Pending and queued counts.
    #[method(name = "status")]
    fn status(&self) -> RpcResult<TxPoolStatus>;
    /// Every pooled transaction.
    #[method(name = "content")]
    fn content(&self) -> RpcResult<TxPoolContent<Transaction>>;
    /// Pooled transactions of one sender.
    #[method(name = "contentFrom")]
    fn content_from(&self, address: Address) -> RpcResult<TxPoolContentFrom>;
    /// One-line summaries: `to: value wei + gas gas × price wei`.
    #[method(name = "inspect")]
    fn inspect(&self) -> RpcResult<TxPoolContent<String>>;
}

/// Implementation of `txpool_`.
#[derive(Clone)]
pub struct TxPoolRpc {
    pool: Arc<TxPool>,
}

impl std::fmt::Debug for TxPoolRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxPoolRpc").finish()
    }
}

impl TxPoolRpc {
    /// Over the node's pool.
    pub fn new(pool: Arc<TxPool>) -> Self {
        Self { pool }
    }
}

fn group<T>(txs: Vec<Recovered<TxEnvelope>>, f: impl Fn(Recovered<TxEnvelope>) -> T) -> ByAccount<T> {
    let mut out: ByAccount<T> = BTreeMap::new();
    for tx in txs {
        let (sender, nonce) = (tx.signer(), tx.nonce());
        out.entry(sender.to_checksum(None)).or_default().insert(nonce.to_string(), f(tx));
    }
    out
}

fn summary(tx: &Recovered<TxEnvelope>) -> String {
    let to = tx.to().map_or("contract creation".to_string(), |a| a.to_string());
    let price = tx.gas_price().unwrap_or_else(|| tx.max_fee_per_gas());
    format!("{to}: {} wei + {} gas × {price} wei", tx.value(), tx.gas_limit())
}

impl TxPoolRpcApiServer for TxPoolRpc {
    fn status(&self) -> RpcResult<TxPoolStatus> {
        let (pending, queued) = self.pool.counts();
        Ok(TxPoolStatus { pending: U64::from(pending), queued: U64::from(queued) })
    }

    fn content(&self) -> RpcResult<TxPoolContent<Transaction>> {
        let (pending, queued) = self.pool.content();
        let rpc = |tx| rpc_transaction(tx, None);
        Ok(TxPoolContent { pending: group(pending, rpc), queued: group(queued, rpc) })
    }

    fn content_from(&self, address: Address) -> RpcResult<TxPoolContentFrom> {
        let (pending, queued) = self.pool.content();
        let pick = |txs: Vec<Recovered<TxEnvelope>>| {
            txs.into_iter()
                .filter(|t| t.signer() == address)
                .map(|t| (t.nonce().to_string(), rpc_transaction(t, None)))
                .collect()
        };
        Ok(TxPoolContentFrom { pending: pick(pending), queued: pick(queued) })
    }

    fn inspect(&self) -> RpcResult<TxPoolContent<String>> {
        let (pending, queued) = self.pool.content();
        Ok(TxPoolContent { pending: group(pending, |t| summary(&t)), queued: group(queued, |t| summary(&t)) })
    }
}
