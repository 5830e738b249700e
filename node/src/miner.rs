//! Block minting on the Raft leader.
//!
//! Only the leader mints. It never builds an empty block and never waits for a timer: when the
//! pool has pending transactions it builds on top of the applied head at once, seals the block
//! and proposes it to Raft as one entry; every node (the leader too) applies it when it is
//! committed. At low load each transaction gets its own block immediately; under load the
//! pool fills while a block is in flight and the next block grows (up to the gas limit and
//! `maxBlockTransactions`). Timestamps are in seconds and never decrease:
//! `max(parent, now)`.
//!
//! One block is in flight at a time: it is built on the applied state, so it cannot conflict
//! with an uncommitted predecessor. The minter learns what became of it from its
//! [`Proposal`] (the commit handshake, `fogchain_consensus::proposal`): applied as the head,
//! refused, or dropped (a later leader overwrote its entry). When this node stops leading it
//! stops waiting (it cannot mint anyway); the entry settles when the next leader's log reaches it.

use crate::{
    chain::{Chain, ChainError, FogBlock, SealedBlock},
    replica::Replica,
    seal::seal,
};
use alloy_consensus::BlockBody;
use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use fogchain_consensus::{Consensus, ConsensusError, Proposal, ProposalOutcome, Role};
use fogchain_evm::{child_header, execute_block, Mode};
use fogchain_storage::ChainReader;
use fogchain_txpool::{TxPool, LOWEST_BASE_FEE};
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio_util::sync::CancellationToken;

/// A proposed block not yet applied.
#[derive(Debug)]
struct Inflight {
    proposal: Proposal,
    since: Instant,
}

/// How long the minter waits for its proposal's outcome before it looks at its role and the
/// shutdown signal again.
const OUTCOME_POLL: Duration = Duration::from_millis(50);

/// Mints blocks from the pool when this node leads.
pub struct Miner {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    replica: Arc<Replica>,
    consensus: Arc<Consensus>,
    key: PrivateKeySigner,
}

/// Errors of one minting round.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Building the block failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Proposing failed.
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
}

impl Miner {
    /// A minter sealing with `key`.
    pub fn new(
        chain: Arc<Chain>,
        pool: Arc<TxPool>,
        replica: Arc<Replica>,
        consensus: Arc<Consensus>,
        key: PrivateKeySigner,
    ) -> Self {
        Self { chain, pool, replica, consensus, key }
    }

    /// Runs until `shutdown` is cancelled (whoever cancels also wakes the pool's waiters).
    /// Blocking: run it on its own thread.
    pub fn run(self, shutdown: &CancellationToken) {
        // Generation of the pool at the last attempt that minted nothing: do not retry until the
        // pool changes (avoids spinning on transactions that cannot be included yet).
        let mut idle_at: Option<u64> = None;
        let mut inflight: Option<Inflight> = None;
        while !shutdown.is_cancelled() {
            // Applying a block changes the pool (its transactions leave), which wakes this loop.
            let generation = self.pool.generation();
            let status = self.consensus.status();
            // A leader still syncing blocks after a snapshot has a stale head: it waits.
            if status.role != Role::Leader || status.syncing {
                inflight = None;
                self.pool.wait_for_change(generation, Duration::from_millis(100));
                continue;
            }
            if let Some(f) = &inflight {
                if f.proposal.term != status.term {
                    // Deposed and elected again meanwhile: the old entry settles on its own.
                    inflight = None;
                    continue;
                }
                let Some(outcome) = f.proposal.wait(OUTCOME_POLL) else { continue };
                match outcome {
                    ProposalOutcome::Applied { .. } => metrics::histogram!("fogchain_block_commit_seconds")
                        .record(f.since.elapsed().as_secs_f64()),
                    ProposalOutcome::Refused(reason) => {
                        tracing::warn!(index = f.proposal.index, %reason, "own block refused when applied")
                    }
                    ProposalOutcome::Dropped(reason) => {
                        tracing::info!(index = f.proposal.index, %reason, "own block proposal dropped");
                        metrics::counter!("fogchain_raft_proposals_dropped_total").increment(1);
                        self.replica.clear_minted();
                    }
                }
                inflight = None;
            }
            if self.pool.is_empty() || idle_at == Some(generation) {
                self.pool.wait_for_change(generation, Duration::from_millis(200));
                continue;
            }
            match self.mint_once() {
                Ok(Some(proposal)) => {
                    inflight = Some(Inflight { proposal, since: Instant::now() });
                    idle_at = None;
                }
                Ok(None) => idle_at = Some(generation),
                Err(MintError::Consensus(ConsensusError::NotLeader { .. })) => {}
                Err(e) => {
                    tracing::error!(error = %e, "minting failed");
                    idle_at = Some(generation);
                }
            }
        }
    }

    /// Builds, seals and proposes one block on the applied head.
    fn mint_once(&self) -> Result<Option<Proposal>, MintError> {
        let spec = self.chain.spec().clone();
        let (head_hash, head) = self.chain.storage().head().map_err(ChainError::from)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let template = child_header(&spec, head_hash, &head, now, self.key.address());
        let base_fee = template.base_fee_per_gas;
        let best = self.pool.best(base_fee, spec.fogchain.max_block_transactions, head.gas_limit);
        // Blocks are never empty, except to unblock the fee market: when executable
        // transactions only wait for the base fee to fall (a burst of full blocks raised it), no
        // block would ever come to lower it. An empty block lowers it by 1/8 (EIP-1559), as
        // empty slots do on Ethereum: one per round while a waiting transaction's fee cap is at
        // least the lowest base fee reachable that way (so they end).
        let lower_base_fee = best.transactions.is_empty()
            && best.waiting_for_base_fee.is_some_and(|cap| cap >= u128::from(LOWEST_BASE_FEE))
            && base_fee.is_some_and(|b| b > LOWEST_BASE_FEE);
        if best.transactions.is_empty() && !lower_base_fee {
            return Ok(None);
        }
        let mode = Mode::Build { max_transactions: spec.fogchain.max_block_transactions };
        let started = Instant::now();
        let mut executed =
            execute_block(&spec, self.chain.storage(), &head, template, best.transactions, None, mode)
                .map_err(ChainError::from)?;
        metrics::histogram!("fogchain_block_build_seconds").record(started.elapsed().as_secs_f64());
        let invalid: Vec<B256> = executed.skipped.iter().filter(|s| s.permanent).map(|s| s.hash).collect();
        for skipped in executed.skipped.iter().filter(|s| s.permanent) {
            tracing::info!(tx = %skipped.hash, reason = %skipped.reason, "dropping invalid transaction");
        }
        if !invalid.is_empty() {
            self.pool.on_block(&[], &invalid);
        }
        if executed.transactions.is_empty() {
            if !lower_base_fee {
                return Ok(None);
            }
            tracing::info!(
                base_fee,
                "minting an empty block: pending transactions wait for the base fee to fall"
            );
        }
        let mut header = executed.header.clone();
        seal(&mut header, &self.key).map_err(ChainError::from)?;
        executed.header = header.clone();
        let body = BlockBody {
            transactions: executed.transactions.iter().map(|t| t.inner().clone()).collect(),
            ommers: vec![],
            withdrawals: header.withdrawals_root.map(|_| Default::default()),
        };
        let block = SealedBlock::new(FogBlock { header, body });
        let (hash, number, txs) = (block.hash(), block.header().number, block.transactions().len());
        self.replica.set_minted(hash, executed);
        let proposal = self.consensus.propose_block(block.encode())?;
        tracing::debug!(number, %hash, txs, index = proposal.index, term = proposal.term, "proposed block");
        Ok(Some(proposal))
    }
}
