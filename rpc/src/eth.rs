//! The `eth_`, `net_` and `web3_` namespaces.

use crate::{
    convert::{rpc_block, rpc_receipt, rpc_transaction, TxContext},
    RpcConfig, RpcError, RpcResult, TxPoolApi,
};
use alloy_consensus::{transaction::Recovered, Header, Transaction as _, TxEnvelope};
use alloy_eips::{BlockId, BlockNumberOrTag, Decodable2718};
use alloy_primitives::{Address, Bytes, B256, U128, U256, U64};
use alloy_rpc_types_eth::{
    AccessListResult, Block, EIP1186AccountProofResponse, FeeHistory, Filter, FilterChanges, Log, SyncStatus,
    Transaction, TransactionReceipt, TransactionRequest,
};
use alloy_rpc_types_trace::geth::{GethDebugTracingCallOptions, GethDebugTracingOptions, GethTrace};
use alloy_serde::JsonStorageKey;
use fogchain_evm::{CallOutcome, CallParams};
use fogchain_genesis::ChainSpec;
use fogchain_storage::{ChainReader, KvRead, StateAt, Storage};
use jsonrpsee::{core::async_trait, proc_macros::rpc};
use jsonrpsee::{
    core::SubscriptionResult, server::PendingSubscriptionSink, types::ErrorObjectOwned, SubscriptionMessage,
};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::sync::Semaphore;

/// Ethereum `eth_` namespace (the methods wallets and libraries use).
#[rpc(server, namespace = "eth")]
pub trait EthApi {
    /// EIP-695 chain id.
    #[method(name = "chainId")]
    fn chain_id(&self) -> RpcResult<U64>;
    /// Number of the head block.
    #[method(name = "blockNumber")]
    fn block_number(&self) -> RpcResult<U64>;
    /// Balance in wei at a block.
    #[method(name = "getBalance")]
    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    /// Nonce at a block; `pending` counts pooled transactions.
    #[method(name = "getTransactionCount")]
    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64>;
    /// Runtime bytecode at a block.
    #[method(name = "getCode")]
    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;
    /// Storage slot value (32 bytes) at a block.
    #[method(name = "getStorageAt")]
    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256>;
    /// Suggested legacy gas price in wei: next base fee + suggested tip.
    #[method(name = "gasPrice")]
    fn gas_price(&self) -> RpcResult<U256>;
    /// Suggested EIP-1559 tip in wei.
    #[method(name = "maxPriorityFeePerGas")]
    fn max_priority_fee_per_gas(&self) -> RpcResult<U256>;
    /// Base fees, gas-used ratios and tip percentiles of recent blocks.
    #[method(name = "feeHistory")]
    fn fee_history(
        &self,
        block_count: U64,
        newest_block: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;
    /// Gas a transaction needs (geth's binary search).
    #[method(name = "estimateGas")]
    async fn estimate_gas(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<U64>;
    /// Executes a call without creating a transaction.
    #[method(name = "call")]
    async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes>;
    /// Submits a signed EIP-2718 transaction; returns its hash.
    #[method(name = "sendRawTransaction")]
    fn send_raw_transaction(&self, bytes: Bytes) -> RpcResult<B256>;
    /// Transaction by hash (included or pending).
    #[method(name = "getTransactionByHash")]
    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>>;
    /// Receipt of an included transaction.
    #[method(name = "getTransactionReceipt")]
    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>>;
    /// Block by number or tag.
    #[method(name = "getBlockByNumber")]
    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>>;
    /// Block by hash.
    #[method(name = "getBlockByHash")]
    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    /// Accounts this node signs for: none (keys stay with the clients).
    #[method(name = "accounts")]
    fn accounts(&self) -> RpcResult<Vec<Address>>;
    /// Sync status: a Fogchain node serves only applied, final blocks, so never syncing.
    #[method(name = "syncing")]
    fn syncing(&self) -> RpcResult<SyncStatus>;
    /// Logs matching a filter (blockHash, or fromBlock/toBlock; addresses; topics).
    #[method(name = "getLogs")]
    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>>;
    /// Installs a log filter; returns its id.
    #[method(name = "newFilter")]
    fn new_filter(&self, filter: Filter) -> RpcResult<U128>;
    /// Installs a new-block filter.
    #[method(name = "newBlockFilter")]
    fn new_block_filter(&self) -> RpcResult<U128>;
    /// Installs a pending-transaction filter.
    #[method(name = "newPendingTransactionFilter")]
    fn new_pending_transaction_filter(&self) -> RpcResult<U128>;
    /// Changes since the last poll: block hashes, tx hashes or logs.
    #[method(name = "getFilterChanges")]
    async fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges>;
    /// Every log a log filter matches.
    #[method(name = "getFilterLogs")]
    async fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>>;
    /// Removes a filter; false when it did not exist.
    #[method(name = "uninstallFilter")]
    fn uninstall_filter(&self, id: U128) -> RpcResult<bool>;
    /// WebSocket subscriptions: `newHeads`, `logs` (with a filter), `newPendingTransactions`.
    #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = serde_json::Value)]
    async fn subscribe(&self, kind: String, params: Option<serde_json::Value>) -> SubscriptionResult;
    /// Transactions in a block, by hash.
    #[method(name = "getBlockTransactionCountByHash")]
    fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    /// Transactions in a block, by number.
    #[method(name = "getBlockTransactionCountByNumber")]
    fn block_transaction_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    /// Transaction `index` of a block, by hash.
    #[method(name = "getTransactionByBlockHashAndIndex")]
    fn transaction_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Transaction>>;
    /// Transaction `index` of a block, by number.
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>>;
    /// Every receipt of a block.
    #[method(name = "getBlockReceipts")]
    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>>;
    /// Uncles of a block: always 0 (no ommers under Raft).
    #[method(name = "getUncleCountByBlockHash")]
    fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    /// Uncles of a block: always 0.
    #[method(name = "getUncleCountByBlockNumber")]
    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    /// Beneficiary of the blocks this node mints (its sealing address).
    #[method(name = "coinbase")]
    fn coinbase(&self) -> RpcResult<Address>;
    /// Whether this node mints blocks (it leads the Raft cluster).
    #[method(name = "mining")]
    fn mining(&self) -> RpcResult<bool>;
    /// Hash rate: 0 (no proof of work).
    #[method(name = "hashrate")]
    fn hashrate(&self) -> RpcResult<U64>;
    /// Ethereum wire protocol version (68, as geth's eth/68).
    #[method(name = "protocolVersion")]
    fn protocol_version(&self) -> RpcResult<U64>;
    /// EIP-1186 account and storage proofs at a block.
    #[method(name = "getProof")]
    fn proof(
        &self,
        address: Address,
        keys: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse>;
    /// EIP-2930 access list a call would use, and its gas with that list.
    #[method(name = "createAccessList")]
    async fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<AccessListResult>;
}

/// `debug_traceTransaction` / `debug_traceCall` (geth's tracers).
#[rpc(server, namespace = "debug")]
pub trait DebugTraceApi {
    /// Re-executes an included transaction under a tracer (default: struct logger).
    #[method(name = "traceTransaction")]
    async fn trace_transaction(
        &self,
        hash: B256,
        opts: Option<GethDebugTracingOptions>,
    ) -> RpcResult<GethTrace>;
    /// Runs a call under a tracer.
    #[method(name = "traceCall")]
    async fn trace_call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        opts: Option<GethDebugTracingCallOptions>,
    ) -> RpcResult<GethTrace>;
}

fn trace_error(e: fogchain_evm::TraceError) -> RpcError {
    match e {
        fogchain_evm::TraceError::Options(m) => RpcError::InvalidParams(m),
        fogchain_evm::TraceError::Invalid(m) => RpcError::Server(m),
        fogchain_evm::TraceError::Exec(e) => RpcError::Internal(e.to_string()),
    }
}

#[async_trait]
impl DebugTraceApiServer for EthRpc {
    async fn trace_transaction(
        &self,
        hash: B256,
        opts: Option<GethDebugTracingOptions>,
    ) -> RpcResult<GethTrace> {
        let opts = opts.unwrap_or_default();
        self.blocking(move |this| {
            let Some((_, header, body, index)) = this.located_transaction(hash)? else {
                return Err(RpcError::Server(format!("transaction {hash} not found")));
            };
            let snapshot = this.inner.storage.snapshot();
            let parent = snapshot.header(&header.parent_hash)?.ok_or_else(not_found)?;
            let state = StateAt::new(&snapshot, parent.state_root);
            let txs: Vec<Recovered<TxEnvelope>> = body
                .transactions
                .into_iter()
                .zip(body.senders)
                .map(|(tx, sender)| Recovered::new_unchecked(tx, sender))
                .collect();
            fogchain_evm::trace_transaction(&this.inner.chain, &state, &header, &txs, index, &opts)
                .map_err(trace_error)
        })
        .await
    }

    async fn trace_call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        opts: Option<GethDebugTracingCallOptions>,
    ) -> RpcResult<GethTrace> {
        let params = Self::call_params(request)?;
        let opts = opts.unwrap_or_default();
        if opts.state_overrides.is_some() || opts.block_overrides.is_some() {
            return Err(RpcError::InvalidParams("state and block overrides are not supported".into()));
        }
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                fogchain_evm::trace_call(
                    &this.inner.chain,
                    state,
                    header,
                    &params,
                    cap,
                    &opts.tracing_options,
                )
                .map_err(trace_error)
            })
        })
        .await
    }
}

/// `net_` namespace.
#[rpc(server, namespace = "net")]
pub trait NetApi {
    /// Network id (the chain id, as a decimal string).
    #[method(name = "version")]
    fn version(&self) -> RpcResult<String>;
    /// Connected members (hex quantity).
    #[method(name = "peerCount")]
    fn peer_count(&self) -> RpcResult<alloy_primitives::U64>;
    /// Whether the node accepts p2p connections (always true).
    #[method(name = "listening")]
    fn listening(&self) -> RpcResult<bool>;
}

/// `web3_` namespace.
#[rpc(server, namespace = "web3")]
pub trait Web3Api {
    /// `Fogchain/v<version>/<os>-<arch>/rust`.
    #[method(name = "clientVersion")]
    fn client_version(&self) -> RpcResult<String>;
    /// keccak-256 of the given bytes.
    #[method(name = "sha3")]
    fn sha3(&self, data: Bytes) -> RpcResult<B256>;
}

/// Implementation of the namespaces over a node's storage, chain spec and pool.
#[derive(Clone)]
pub struct EthRpc {
    inner: Arc<Inner>,
}

struct Inner {
    chain: Arc<ChainSpec>,
    storage: Storage,
    pool: Arc<dyn TxPoolApi>,
    config: RpcConfig,
    calls: Arc<Semaphore>,
    node: NodeInfo,
    filters: crate::logs::Filters,
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

fn not_found() -> RpcError {
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
        pool: Arc<dyn TxPoolApi>,
        config: RpcConfig,
        node: NodeInfo,
    ) -> Self {
        let calls = Arc::new(Semaphore::new(config.max_concurrent_calls.max(1)));
        let filters = crate::logs::Filters::default();
        Self { inner: Arc::new(Inner { chain, storage, pool, config, calls, node, filters }) }
    }

    /// The pool served.
    pub fn pool(&self) -> Arc<dyn TxPoolApi> {
        self.inner.pool.clone()
    }

    /// The storage served.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    fn block_body(&self, id: BlockId) -> RpcResult<Option<(B256, Header, fogchain_storage::StoredBody)>> {
        let snapshot = self.inner.storage.snapshot();
        let (hash, header) = match resolve(&snapshot, id) {
            Ok(found) => found,
            Err(RpcError::Server(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = snapshot.body(&hash)?.ok_or_else(|| RpcError::Internal("missing body".into()))?;
        Ok(Some((hash, header, body)))
    }

    fn transaction_in_block(&self, id: BlockId, index: U64) -> RpcResult<Option<Transaction>> {
        let Some((hash, header, body)) = self.block_body(id)? else { return Ok(None) };
        let index = index.to::<u64>() as usize;
        let (Some(tx), Some(sender)) = (body.transactions.get(index), body.senders.get(index)) else {
            return Ok(None);
        };
        let context = TxContext::new(hash, &header, index);
        Ok(Some(rpc_transaction(Recovered::new_unchecked(tx.clone(), *sender), Some(context))))
    }

    async fn spawn_subscription(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult {
        let filter = match (kind.as_str(), params) {
            ("logs", Some(p)) => Some(serde_json::from_value::<Filter>(p).map_err(|e| {
                ErrorObjectOwned::from(RpcError::InvalidParams(format!("invalid logs filter: {e}")))
            })),
            ("logs", None) => Some(Ok(Filter::default())),
            _ => None,
        };
        let filter = match filter.transpose() {
            Ok(f) => f,
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        match kind.as_str() {
            "newHeads" | "logs" => {
                let sink = pending.accept().await?;
                let this = self.clone();
                tokio::spawn(async move {
                    let mut heads = this.inner.node.heads.clone();
                    let mut next = heads.borrow_and_update().0 + 1;
                    loop {
                        tokio::select! {
                            _ = sink.closed() => return,
                            changed = heads.changed() => if changed.is_err() { return },
                        }
                        let head = heads.borrow_and_update().0;
                        while next <= head {
                            let storage = this.inner.storage.clone();
                            let (number, filter) = (next, filter.clone());
                            // Reads run off the async workers.
                            let items =
                                tokio::task::spawn_blocking(move || -> RpcResult<Vec<serde_json::Value>> {
                                    match filter {
                                        None => Ok(crate::logs::head_notification(&storage, number)?
                                            .into_iter()
                                            .collect()),
                                        Some(f) => crate::logs::block_matching_logs(&storage, &f, number)?
                                            .into_iter()
                                            .map(|l| {
                                                serde_json::to_value(l)
                                                    .map_err(|e| RpcError::Internal(e.to_string()))
                                            })
                                            .collect(),
                                    }
                                })
                                .await;
                            let Ok(Ok(items)) = items else { return };
                            for item in items {
                                let Ok(raw) = serde_json::value::to_raw_value(&item) else { return };
                                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                                    return;
                                }
                            }
                            next += 1;
                        }
                    }
                });
            }
            "newPendingTransactions" => {
                let sink = pending.accept().await?;
                let mut rx = self.inner.pool.subscribe_pending();
                tokio::spawn(async move {
                    loop {
                        let hash = tokio::select! {
                            _ = sink.closed() => return,
                            hash = rx.recv() => match hash {
                                Ok(h) => h,
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                                Err(_) => return,
                            },
                        };
                        let Ok(raw) = serde_json::value::to_raw_value(&hash) else { return };
                        if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                            return;
                        }
                    }
                });
            }
            other => {
                pending
                    .reject(ErrorObjectOwned::from(RpcError::InvalidParams(format!(
                        "unsupported subscription type {other:?}; use newHeads, logs or newPendingTransactions"
                    ))))
                    .await;
            }
        }
        Ok(())
    }

    /// Runs `f` on the state of block `id` (latest by default) from one consistent snapshot.
    fn with_state<T>(
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

    /// Runs EVM work on the blocking pool, at most `max_concurrent_calls` at once.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(EthRpc) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        let permit =
            self.inner.calls.clone().acquire_owned().await.map_err(|e| RpcError::Internal(e.to_string()))?;
        let this = self.clone();
        // The permit travels with the work: an answer given up after the timeout below still
        // occupies its slot until the EVM finishes (bounded by the gas cap).
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(this)
        });
        let timeout = self.inner.config.call_timeout;
        match tokio::time::timeout(timeout, task).await {
            Ok(joined) => joined.map_err(|e| RpcError::Internal(e.to_string()))?,
            // geth's wording (`--rpc.evmtimeout`).
            Err(_) => Err(RpcError::Server(format!("execution aborted (timeout = {}s)", timeout.as_secs()))),
        }
    }

    fn call_params(request: TransactionRequest) -> RpcResult<CallParams> {
        let to = match request.to {
            Some(alloy_primitives::TxKind::Call(a)) => Some(a),
            _ => None,
        };
        if request.input.input.is_some()
            && request.input.data.is_some()
            && request.input.input != request.input.data
        {
            return Err(RpcError::InvalidParams(
                "both \"data\" and \"input\" are set and not equal. Please use \"input\" to pass transaction call data".into(),
            ));
        }
        Ok(CallParams {
            from: request.from,
            to,
            gas: request.gas,
            gas_price: request.gas_price,
            max_fee_per_gas: request.max_fee_per_gas,
            max_priority_fee_per_gas: request.max_priority_fee_per_gas,
            value: request.value,
            input: request.input.into_input().unwrap_or_default(),
            nonce: request.nonce,
            access_list: request.access_list,
        })
    }

    fn suggested_tip(&self) -> u128 {
        if self.inner.chain.fogchain.zero_base_fee {
            0
        } else {
            self.inner.config.suggested_tip
        }
    }

    fn located_transaction(
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

    fn block(&self, id: BlockId, full: bool) -> RpcResult<Option<Block>> {
        Ok(self.block_body(id)?.map(|(hash, header, body)| rpc_block(hash, header, body, full)))
    }
}

#[async_trait]
impl EthApiServer for EthRpc {
    fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.inner.chain.chain_id()))
    }

    fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.inner.storage.head()?.1.number))
    }

    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        self.with_state(block, |state, _| Ok(state.account(&address)?.map(|a| a.balance).unwrap_or_default()))
    }

    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
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

    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        self.with_state(block, |state, _| {
            let Some(account) = state.account(&address)? else { return Ok(Bytes::new()) };
            Ok(state.code(&account.code_hash)?.unwrap_or_default())
        })
    }

    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256> {
        self.with_state(block, |state, _| Ok(B256::from(state.storage(&address, &slot)?)))
    }

    fn gas_price(&self) -> RpcResult<U256> {
        let (_, head) = self.inner.storage.head()?;
        let base = fogchain_evm::next_base_fee(&self.inner.chain, &head).unwrap_or_default();
        Ok(U256::from(base as u128 + self.suggested_tip()))
    }

    fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        Ok(U256::from(self.suggested_tip()))
    }

    fn fee_history(
        &self,
        block_count: U64,
        newest_block: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let snapshot = self.inner.storage.snapshot();
        let (_, newest) = resolve(&snapshot, BlockId::Number(newest_block))?;
        let count = block_count.to::<u64>().min(1024).min(newest.number + 1);
        if let Some(p) = &reward_percentiles {
            if p.iter().any(|x| !(0.0..=100.0).contains(x)) || p.windows(2).any(|w| w[0] > w[1]) {
                return Err(RpcError::InvalidParams("invalid reward percentiles".into()));
            }
        }
        let oldest = newest.number + 1 - count;
        let mut history = FeeHistory { oldest_block: oldest, ..Default::default() };
        let mut rewards = Vec::new();
        for number in oldest..=newest.number {
            let (hash, header) = snapshot.header_by_number(number)?.ok_or_else(not_found)?;
            history.base_fee_per_gas.push(header.base_fee_per_gas.unwrap_or_default() as u128);
            history.gas_used_ratio.push(if header.gas_limit == 0 {
                0.0
            } else {
                header.gas_used as f64 / header.gas_limit as f64
            });
            history.base_fee_per_blob_gas.push(0);
            history.blob_gas_used_ratio.push(0.0);
            if let Some(percentiles) = &reward_percentiles {
                rewards.push(block_rewards(&snapshot, hash, &header, percentiles)?);
            }
        }
        let next = fogchain_evm::next_base_fee(&self.inner.chain, &newest).unwrap_or_default();
        history.base_fee_per_gas.push(next as u128);
        history.base_fee_per_blob_gas.push(0);
        history.reward = reward_percentiles.map(|_| rewards);
        Ok(history)
    }

    async fn estimate_gas(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<U64> {
        let params = Self::call_params(request)?;
        // As Hardhat and Anvil: estimate for the next block unless a block is given.
        let block = Some(block.unwrap_or(BlockId::Number(BlockNumberOrTag::Pending)));
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                Ok(U64::from(fogchain_evm::estimate_gas(&this.inner.chain, state, header, &params, cap)?))
            })
        })
        .await
    }

    async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes> {
        let params = Self::call_params(request)?;
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                match fogchain_evm::call(&this.inner.chain, state, header, &params, cap)? {
                    CallOutcome::Success { output, .. } => Ok(output),
                    CallOutcome::Revert { output, .. } => Err(RpcError::Reverted(output)),
                    CallOutcome::Halt { reason, gas_used } => {
                        Err(RpcError::Server(halt_message(&reason, gas_used)))
                    }
                }
            })
        })
        .await
    }

    fn send_raw_transaction(&self, bytes: Bytes) -> RpcResult<B256> {
        let mut buf = &bytes[..];
        let tx = TxEnvelope::decode_2718(&mut buf).map_err(|e| RpcError::Server(format!("rlp: {e}")))?;
        if !buf.is_empty() {
            return Err(RpcError::Server("rlp: input contains more than one value".into()));
        }
        self.inner.pool.add_transaction(tx, bytes.len()).map_err(RpcError::Server)
    }

    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        if let Some((block_hash, header, body, index)) = self.located_transaction(hash)? {
            let tx = body.transactions[index].clone();
            let sender = body.senders[index];
            let context = TxContext::new(block_hash, &header, index);
            return Ok(Some(rpc_transaction(Recovered::new_unchecked(tx, sender), Some(context))));
        }
        Ok(self.inner.pool.pooled_transaction(&hash).map(|tx| rpc_transaction(tx, None)))
    }

    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        let Some((block_hash, header, body, index)) = self.located_transaction(hash)? else {
            return Ok(None);
        };
        let receipts = self.inner.storage.receipts(&block_hash)?.unwrap_or_default();
        Ok(rpc_receipt(block_hash, &header, &body, &receipts, index))
    }

    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>> {
        self.block(BlockId::Number(number), full)
    }

    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        self.block(BlockId::from(hash), full)
    }

    fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(vec![])
    }

    fn syncing(&self) -> RpcResult<SyncStatus> {
        Ok(SyncStatus::None)
    }

    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        self.blocking(move |this| {
            crate::logs::get_logs(&this.inner.storage, &filter, &this.inner.config.logs)
        })
        .await
    }

    fn new_filter(&self, filter: Filter) -> RpcResult<U128> {
        let head = self.inner.storage.head()?.1.number;
        self.inner.filters.new_log_filter(filter, head)
    }

    fn new_block_filter(&self) -> RpcResult<U128> {
        let head = self.inner.storage.head()?.1.number;
        self.inner.filters.new_block_filter(head)
    }

    fn new_pending_transaction_filter(&self) -> RpcResult<U128> {
        self.inner.filters.new_pending_filter(self.inner.pool.subscribe_pending())
    }

    async fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges> {
        self.blocking(move |this| {
            this.inner.filters.changes(&this.inner.storage, id, &this.inner.config.logs)
        })
        .await
    }

    async fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>> {
        self.blocking(move |this| this.inner.filters.logs(&this.inner.storage, id, &this.inner.config.logs))
            .await
    }

    fn uninstall_filter(&self, id: U128) -> RpcResult<bool> {
        Ok(self.inner.filters.uninstall(id))
    }

    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult {
        self.spawn_subscription(pending, kind, params).await
    }

    fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::from(hash))?.map(|(_, _, b)| U64::from(b.transactions.len())))
    }

    fn block_transaction_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::Number(number))?.map(|(_, _, b)| U64::from(b.transactions.len())))
    }

    fn transaction_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Transaction>> {
        self.transaction_in_block(BlockId::from(hash), index)
    }

    fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        self.transaction_in_block(BlockId::Number(number), index)
    }

    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let Some((hash, header, body)) = self.block_body(block)? else { return Ok(None) };
        let receipts = self.inner.storage.receipts(&hash)?.unwrap_or_default();
        Ok(Some(
            (0..body.transactions.len())
                .filter_map(|i| rpc_receipt(hash, &header, &body, &receipts, i))
                .collect(),
        ))
    }

    fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::from(hash))?.map(|_| U64::ZERO))
    }

    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        Ok(self.block_body(BlockId::Number(number))?.map(|_| U64::ZERO))
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
        use fogchain_storage::{trie::proof, TrieNodes};
        if keys.len() > 1024 {
            return Err(RpcError::InvalidParams("at most 1024 storage keys per request".into()));
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

    async fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<AccessListResult> {
        let params = Self::call_params(request)?;
        let block = Some(block.unwrap_or(BlockId::Number(BlockNumberOrTag::Pending)));
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                let (access_list, gas_used, error) =
                    fogchain_evm::create_access_list(&this.inner.chain, state, header, &params, cap)
                        .map_err(trace_error)?;
                Ok(AccessListResult { access_list, gas_used: U256::from(gas_used), error })
            })
        })
        .await
    }
}

/// geth's message for a call that halted.
fn halt_message(reason: &str, gas_used: u64) -> String {
    if reason.contains("OutOfGas") {
        format!("out of gas: gas required exceeds allowance ({gas_used})")
    } else {
        format!("execution halted: {reason}")
    }
}

/// Tip percentiles of one block, weighted by gas used (geth's `eth_feeHistory` rewards).
fn block_rewards<R: KvRead + ?Sized>(
    reader: &R,
    hash: B256,
    header: &Header,
    percentiles: &[f64],
) -> RpcResult<Vec<u128>> {
    let body =
        reader.body(&hash)?.unwrap_or(fogchain_storage::StoredBody { transactions: vec![], senders: vec![] });
    let receipts = reader.receipts(&hash)?.unwrap_or_default();
    let base_fee = header.base_fee_per_gas.unwrap_or_default();
    let mut tips: Vec<(u128, u64)> = body
        .transactions
        .iter()
        .zip(&receipts)
        .scan(0u64, |previous, (tx, receipt)| {
            let used = receipt.cumulative_gas_used() - *previous;
            *previous = receipt.cumulative_gas_used();
            Some((tx.effective_tip_per_gas(base_fee).unwrap_or_default(), used))
        })
        .collect();
    if tips.is_empty() {
        return Ok(vec![0; percentiles.len()]);
    }
    tips.sort_unstable();
    let mut out = Vec::with_capacity(percentiles.len());
    let mut index = 0;
    let mut cumulative = tips[0].1;
    for p in percentiles {
        let threshold = (header.gas_used as f64 * p / 100.0) as u64;
        while cumulative < threshold && index < tips.len() - 1 {
            index += 1;
            cumulative += tips[index].1;
        }
        out.push(tips[index].0);
    }
    Ok(out)
}

/// Implementation of `net_`.
#[derive(Clone)]
pub struct NetRpc {
    chain_id: u64,
    cluster: Arc<dyn crate::ClusterApi>,
}

impl std::fmt::Debug for NetRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetRpc").field("chain_id", &self.chain_id).finish()
    }
}

impl NetRpc {
    /// For the chain with this id; peers are counted by `cluster`.
    pub fn new(chain_id: u64, cluster: Arc<dyn crate::ClusterApi>) -> Self {
        Self { chain_id, cluster }
    }
}

impl NetApiServer for NetRpc {
    fn version(&self) -> RpcResult<String> {
        Ok(self.chain_id.to_string())
    }
    fn peer_count(&self) -> RpcResult<alloy_primitives::U64> {
        Ok(alloy_primitives::U64::from(self.cluster.peer_count()))
    }
    fn listening(&self) -> RpcResult<bool> {
        Ok(true)
    }
}

/// Implementation of `web3_`.
#[derive(Debug, Clone, Default)]
pub struct Web3Rpc;

impl Web3ApiServer for Web3Rpc {
    fn client_version(&self) -> RpcResult<String> {
        Ok(crate::client_version())
    }
    fn sha3(&self, data: Bytes) -> RpcResult<B256> {
        Ok(alloy_primitives::keccak256(&data))
    }
}
