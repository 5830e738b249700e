//! Block minting: builds, seals and hands over blocks when transactions are pending.
//!
//! The minter never builds an empty block and never waits for a timer: when the pool has pending
//! transactions it mints at once on top of the head, so at low load each transaction gets its
//! own block immediately and under load blocks grow (up to the gas limit and
//! `maxBlockTransactions`). Timestamps are in seconds and never decrease: `max(parent, now)`.
//! On a single node the minted block is committed at once; the Raft driver of a cluster
//! proposes it instead and applies it when committed.

use crate::{
    chain::{Applied, Chain, ChainError, FogBlock},
    pool::TxPool,
    seal::seal,
};
use alloy_consensus::BlockBody;
use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use fogchain_evm::{child_header, execute_block, Mode};
use fogchain_storage::ChainReader;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Mints blocks from the pool and applies them through [`Chain::apply_block`].
pub struct Miner {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    key: PrivateKeySigner,
    shutdown: Arc<AtomicBool>,
}

impl Miner {
    /// A minter sealing with `key`.
    pub fn new(
        chain: Arc<Chain>,
        pool: Arc<TxPool>,
        key: PrivateKeySigner,
        shutdown: Arc<AtomicBool>,
    ) -> Self {
        Self { chain, pool, key, shutdown }
    }

    /// Runs until shutdown. Blocking: run it on its own thread.
    pub fn run(self) {
        // Generation of the pool at the last attempt that minted nothing: do not retry until the
        // pool changes (avoids spinning on transactions that cannot be included yet).
        let mut idle_at: Option<u64> = None;
        while !self.shutdown.load(Ordering::Acquire) {
            let generation = self.pool.generation();
            if self.pool.is_empty() || idle_at == Some(generation) {
                self.pool.wait_for_change(generation, Duration::from_millis(500));
                continue;
            }
            match self.mint_once() {
                Ok(true) => idle_at = None,
                Ok(false) => idle_at = Some(generation),
                Err(e) => {
                    tracing::error!(error = %e, "minting failed");
                    idle_at = Some(generation);
                }
            }
        }
    }

    /// Builds, seals and applies one block. Returns whether a block was added.
    pub fn mint_once(&self) -> Result<bool, ChainError> {
        let spec = self.chain.spec().clone();
        let (head_hash, head) = self.chain.storage().head()?;
        let txs = self.pool.best(spec.fogchain.max_block_transactions, head.gas_limit);
        if txs.is_empty() {
            return Ok(false);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let template = child_header(&spec, head_hash, &head, now, self.key.address());
        let mode = Mode::Build { max_transactions: spec.fogchain.max_block_transactions };
        let mut executed = execute_block(&spec, self.chain.storage(), &head, template, txs, mode)?;
        let invalid: Vec<B256> = executed.skipped.iter().filter(|s| s.permanent).map(|s| s.hash).collect();
        for skipped in executed.skipped.iter().filter(|s| s.permanent) {
            tracing::info!(tx = %skipped.hash, reason = %skipped.reason, "dropping invalid transaction");
        }
        if executed.transactions.is_empty() {
            self.pool.on_block(&[], &invalid);
            return Ok(false);
        }
        let mut header = executed.header.clone();
        seal(&mut header, &self.key)?;
        executed.header = header.clone();
        let body = BlockBody {
            transactions: executed.transactions.iter().map(|t| t.inner().clone()).collect(),
            ommers: vec![],
            withdrawals: header.withdrawals_root.map(|_| Default::default()),
        };
        let block = FogBlock { header, body };
        match self.chain.apply_block(&block, Some(executed), None)? {
            Applied::Head { number, hash, senders } => {
                tracing::info!(number, %hash, txs = senders.len(), "minted block");
                self.pool.on_block(&senders, &invalid);
                Ok(true)
            }
            Applied::Stale(txs) => {
                self.pool.reinsert(txs);
                Ok(false)
            }
        }
    }
}
