//! The `eth_`, `net_` and `web3_` namespaces.

use crate::{
    convert::{rpc_block, rpc_receipt, rpc_transaction, TxContext},
    RpcConfig, RpcError, RpcResult, TxPoolApi,
};
use alloy_consensus::{transaction::Recovered, Header, Transaction as _, TxEnvelope};
use alloy_eips::{BlockId, BlockNumberOrTag, Decodable2718};
use alloy_primitives::{Address, Bytes, B256, U256, U64};
use alloy_rpc_types_eth::{
    Block, FeeHistory, SyncStatus, Transaction, TransactionReceipt, TransactionRequest,
};
use fogchain_evm::{CallOutcome, CallParams};
use fogchain_genesis::ChainSpec;
use fogchain_storage::{ChainReader, KvRead, StateAt, Storage};
use jsonrpsee::{core::async_trait, proc_macros::rpc};
use std::sync::Arc;
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
    calls: Semaphore,
}

fn not_found() -> RpcError {
    RpcError::Server("header not found".into())
}

/// Resolves a block id against a view: tags latest / pending / safe / finalized all mean the
/// head (every applied block is final under Raft).
fn resolve<R: KvRead + ?Sized>(reader: &R, id: BlockId) -> RpcResult<(B256, Header)> {
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
    pub fn new(chain: Arc<ChainSpec>, storage: Storage, pool: Arc<dyn TxPoolApi>, config: RpcConfig) -> Self {
        let calls = Semaphore::new(config.max_concurrent_calls.max(1));
        Self { inner: Arc::new(Inner { chain, storage, pool, config, calls }) }
    }

    /// Runs `f` on the state of block `id` (latest by default) from one consistent snapshot.
    fn with_state<T>(
        &self,
        id: Option<BlockId>,
        f: impl FnOnce(&dyn KvRead, &Header) -> RpcResult<T>,
    ) -> RpcResult<T> {
        let snapshot = self.inner.storage.snapshot();
        let (hash, header) = resolve(&snapshot, id.unwrap_or_default())?;
        if hash == snapshot.head_hash()? {
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
        let _permit = self.inner.calls.acquire().await.map_err(|e| RpcError::Internal(e.to_string()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this)).await.map_err(|e| RpcError::Internal(e.to_string()))?
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
        let snapshot = self.inner.storage.snapshot();
        let (hash, header) = match resolve(&snapshot, id) {
            Ok(found) => found,
            Err(RpcError::Server(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = snapshot.body(&hash)?.ok_or_else(|| RpcError::Internal("missing body".into()))?;
        Ok(Some(rpc_block(hash, header, body, full)))
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
}
