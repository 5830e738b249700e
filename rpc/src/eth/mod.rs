//! The `eth_` namespace (and `debug_traceTransaction` / `debug_traceCall`, which run on the
//! same state): [`EthRpc`], one file per concern, as reth's `rpc-eth-api` helpers.
//!
//! | file | methods |
//! |---|---|
//! | `api.rs` | the jsonrpsee traits: `eth_`, `debug_` traces, `net_`, `web3_` |
//! | `state.rs` | `eth_getBalance`, `getTransactionCount`, `getCode`, `getStorageAt`, `getProof` |
//! | `block.rs` | `eth_blockNumber`, `getBlockBy*`, transaction counts, `getBlockReceipts`, uncles |
//! | `transaction.rs` | `eth_sendRawTransaction` (to the pool), `getTransactionByHash`, receipts |
//! | `fee.rs` | `eth_gasPrice`, `maxPriorityFeePerGas`, `feeHistory` |
//! | `call.rs` | `eth_call`, `estimateGas`, `createAccessList`, `debug_trace*` (blocking pool) |
//! | `pubsub.rs` | `eth_getLogs`, filters, `eth_subscribe` |
//!
//! This file holds [`EthRpc`] and the two helpers every group uses: [`EthRpc::with_state`]
//! (one consistent snapshot at a block) and [`EthRpc::blocking`] (EVM work off the async
//! runtime, bounded and timed).

mod api;
mod block;
mod call;
mod fee;
mod pubsub;
mod state;
mod transaction;

pub use api::*;

use crate::{RpcConfig, RpcError, RpcResult};
use alloy_consensus::Header;
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, Bytes, B256, U128, U256, U64};
use alloy_rpc_types_eth::{
    AccessListResult, Block, EIP1186AccountProofResponse, FeeHistory, Filter, FilterChanges, Log, SyncStatus,
    Transaction, TransactionReceipt, TransactionRequest,
};
use alloy_serde::JsonStorageKey;
use fogchain_genesis::ChainSpec;
use fogchain_storage::{ChainReader, KvRead, StateAt, Storage};
use fogchain_txpool::TxPool;
use jsonrpsee::{
    core::async_trait, core::SubscriptionResult, server::PendingSubscriptionSink, types::Extensions,
};
use std::sync::Arc;
use tokio::sync::{watch, Semaphore};

/// Implementation of the namespaces over a node's storage, chain spec and pool.
#[derive(Clone)]
pub struct EthRpc {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) chain: Arc<ChainSpec>,
    pub(crate) storage: Storage,
    pub(crate) pool: Arc<TxPool>,
    pub(crate) config: RpcConfig,
    pub(crate) calls: Arc<Semaphore>,
    pub(crate) node: NodeInfo,
    pub(crate) filters: crate::logs::Filters,
}

/// What the RPC layer knows about the node it serves.
#[derive(Clone)]
pub struct NodeInfo {
    /// Head (number, hash) updates, as blocks are applied.
    pub heads: watch::Receiver<(u64, B256)>,
    /// The node's sealing address (`eth_coinbase`).
    pub coinbase: Address,
    /// Whether the node mints now (`eth_mining`).
    pub mining: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for NodeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeInfo").field("coinbase", &self.coinbase).finish()
    }
}

pub(crate) fn not_found() -> RpcError {
    RpcError::Server("header not found".into())
}

/// Resolves a block id against a view: tags latest / pending / safe / finalized all mean the
/// head (every applied block is final under Raft).
pub(crate) fn resolve<R: KvRead + ?Sized>(reader: &R, id: BlockId) -> RpcResult<(B256, Header)> {
    match id {
        BlockId::Hash(h) => {
            let header = reader.header(&h.block_hash)?.ok_or_else(not_found)?;
            Ok((h.block_hash, header))
        }
        BlockId::Number(tag) => match tag {
            BlockNumberOrTag::Number(n) => reader.header_by_number(n)?.ok_or_else(not_found),
            BlockNumberOrTag::Earliest => reader.header_by_number(0)?.ok_or_else(not_found),
            _ => Ok(reader.head()?),
        },
    }
}

impl EthRpc {
    /// Serves `storage` of the chain `chain`, submitting transactions to `pool`.
    pub fn new(
        chain: Arc<ChainSpec>,
        storage: Storage,
        pool: Arc<TxPool>,
        config: RpcConfig,
        node: NodeInfo,
    ) -> Self {
        let calls = Arc::new(Semaphore::new(config.max_concurrent_calls.max(1)));
        let filters = crate::logs::Filters::default();
        Self { inner: Arc::new(Inner { chain, storage, pool, config, calls, node, filters }) }
    }

    /// The pool served.
    pub fn pool(&self) -> Arc<TxPool> {
        self.inner.pool.clone()
    }

    /// The chain spec served.
    pub fn spec(&self) -> &Arc<ChainSpec> {
        &self.inner.chain
    }

    /// The storage served.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// Runs `f` on the state of block `id` (latest by default) from one consistent snapshot.
    pub(crate) fn with_state<T>(
        &self,
        id: Option<BlockId>,
        f: impl FnOnce(&dyn KvRead, &Header) -> RpcResult<T>,
    ) -> RpcResult<T> {
        let snapshot = self.inner.storage.snapshot();
        let id = id.unwrap_or_default();
        let (hash, header) = resolve(&snapshot, id)?;
        if id == BlockId::Number(BlockNumberOrTag::Pending) {
            // The block the transaction would go into: the next number, timestamp now, the next
            // base fee (contracts that store block.number see the value they will see when mined).
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let pending =
                fogchain_evm::child_header(&self.inner.chain, hash, &header, now, self.inner.node.coinbase);
            f(&snapshot, &pending)
        } else if hash == snapshot.head_hash()? {
            f(&snapshot, &header)
        } else {
            f(&StateAt::new(&snapshot, header.state_root), &header)
        }
    }

    /// Runs EVM work (or a log query) on the blocking pool, at most `max_concurrent_calls` at
    /// once. A request that finds no free slot within `call_queue_timeout` is refused
    /// ([`RpcError::LimitExceeded`]) instead of queueing without bound; EVM work stops itself
    /// at its [`Budget`](fogchain_evm::Budget) ([`EthRpc::budget`]), the answer is given up a
    /// second after the deadline in any case.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(EthRpc) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        let config = &self.inner.config;
        let permit =
            match tokio::time::timeout(config.call_queue_timeout, self.inner.calls.clone().acquire_owned())
                .await
            {
                Ok(permit) => permit.map_err(|e| RpcError::Internal(e.to_string()))?,
                Err(_) => {
                    return Err(RpcError::LimitExceeded(format!(
                        "server busy: all {} EVM slots stayed in use for {} ms; retry later",
                        config.max_concurrent_calls.max(1),
                        config.call_queue_timeout.as_millis()
                    )))
                }
            };
        let this = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(this)
        });
        let timeout = config.call_timeout;
        match tokio::time::timeout(timeout + std::time::Duration::from_secs(1), task).await {
            Ok(joined) => joined.map_err(|e| RpcError::Internal(e.to_string()))?,
            // geth's wording (`--rpc.evmtimeout`).
            Err(_) => Err(RpcError::Server(format!("execution aborted (timeout = {}s)", timeout.as_secs()))),
        }
    }

    /// The bounds of one EVM execution starting now (`[rpc]` call-timeout-secs,
    /// evm-step-limit, trace-max-bytes).
    pub(crate) fn budget(&self) -> fogchain_evm::Budget {
        let c = &self.inner.config;
        fogchain_evm::Budget::new(c.call_timeout, c.evm_step_limit, c.trace_max_bytes)
    }
}

/// Each method is implemented in the file of its group (see the table above).
#[async_trait]
impl EthApiServer for EthRpc {
    fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.inner.chain.chain_id()))
    }

    fn block_number(&self) -> RpcResult<U64> {
        EthRpc::block_number(self)
    }

    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        EthRpc::balance(self, address, block)
    }

    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        EthRpc::transaction_count(self, address, block)
    }

    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        EthRpc::code(self, address, block)
    }

    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256> {
        EthRpc::storage_at(self, address, slot, block)
    }

    fn gas_price(&self) -> RpcResult<U256> {
        EthRpc::gas_price(self)
    }

    fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        EthRpc::max_priority_fee_per_gas(self)
    }

    fn fee_history(
        &self,
        block_count: U64,
        newest_block: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        EthRpc::fee_history(self, block_count, newest_block, reward_percentiles)
    }

    async fn estimate_gas(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<U64> {
        EthRpc::estimate_gas(self, request, block).await
    }

    async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes> {
        EthRpc::call(self, request, block).await
    }

    fn send_raw_transaction(&self, bytes: Bytes) -> RpcResult<B256> {
        EthRpc::send_raw_transaction(self, bytes)
    }

    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        EthRpc::transaction_by_hash(self, hash)
    }

    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        EthRpc::transaction_receipt(self, hash)
    }

    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>> {
        EthRpc::block_by_number(self, number, full)
    }

    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        EthRpc::block_by_hash(self, hash, full)
    }

    fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(vec![])
    }

    fn syncing(&self) -> RpcResult<SyncStatus> {
        Ok(SyncStatus::None)
    }

    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        EthRpc::logs(self, filter).await
    }

    fn new_filter(&self, ext: &Extensions, filter: Filter) -> RpcResult<U128> {
        EthRpc::new_filter(self, ext, filter)
    }

    fn new_block_filter(&self, ext: &Extensions) -> RpcResult<U128> {
        EthRpc::new_block_filter(self, ext)
    }

    fn new_pending_transaction_filter(&self, ext: &Extensions) -> RpcResult<U128> {
        EthRpc::new_pending_transaction_filter(self, ext)
    }

    async fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges> {
        EthRpc::filter_changes(self, id).await
    }

    async fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>> {
        EthRpc::filter_logs(self, id).await
    }

    fn uninstall_filter(&self, id: U128) -> RpcResult<bool> {
        EthRpc::uninstall_filter(self, id)
    }

    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult {
        EthRpc::subscribe(self, pending, kind, params).await
    }

    fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        EthRpc::block_transaction_count_by_hash(self, hash)
    }

    fn block_transaction_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        EthRpc::block_transaction_count_by_number(self, number)
    }

    fn transaction_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Transaction>> {
        EthRpc::transaction_by_block_hash_and_index(self, hash, index)
    }

    fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        EthRpc::transaction_by_block_number_and_index(self, number, index)
    }

    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        EthRpc::block_receipts(self, block)
    }

    fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        EthRpc::uncle_count_by_hash(self, hash)
    }

    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        EthRpc::uncle_count_by_number(self, number)
    }

    fn coinbase(&self) -> RpcResult<Address> {
        Ok(self.inner.node.coinbase)
    }

    fn mining(&self) -> RpcResult<bool> {
        Ok((self.inner.node.mining)())
    }

    fn hashrate(&self) -> RpcResult<U64> {
        Ok(U64::ZERO)
    }

    fn protocol_version(&self) -> RpcResult<U64> {
        Ok(U64::from(68))
    }

    fn proof(
        &self,
        address: Address,
        keys: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse> {
        EthRpc::proof(self, address, keys, block)
    }

    async fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<AccessListResult> {
        EthRpc::create_access_list(self, request, block).await
    }
}
