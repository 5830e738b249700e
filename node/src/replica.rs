//! The node's chain as Raft's replicated state machine: committed entries are blocks.

use crate::{
    chain::{Applied, Chain, ChainError, FogBlock},
    pool::TxPool,
};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::B256;
use alloy_rlp::Decodable;
use fogchain_consensus::{Directory, StateMachine};
use fogchain_evm::ExecutedBlock;
use fogchain_storage::Storage;
use parking_lot::Mutex;
use std::sync::Arc;

/// Applies committed blocks to the chain and keeps the pool in step.
pub struct Replica {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    /// The minter's own execution of the block it proposed last, reused when that very block
    /// is committed (the leader does not execute its blocks twice).
    minted: Mutex<Option<(B256, ExecutedBlock)>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("head", &self.chain.head()).finish()
    }
}

impl Replica {
    /// Over `chain` and `pool`.
    pub fn new(chain: Arc<Chain>, pool: Arc<TxPool>) -> Self {
        Self { chain, pool, minted: Mutex::new(None) }
    }

    /// Remembers the minter's execution of block `hash` until it is committed.
    pub fn set_minted(&self, hash: B256, executed: ExecutedBlock) {
        *self.minted.lock() = Some((hash, executed));
    }

    fn take_minted(&self, hash: B256) -> Option<ExecutedBlock> {
        let mut minted = self.minted.lock();
        if minted.as_ref().is_some_and(|(h, _)| *h == hash) {
            minted.take().map(|(_, e)| e)
        } else {
            None
        }
    }
}

impl StateMachine for Replica {
    fn storage(&self) -> &Storage {
        self.chain.storage()
    }

    fn apply_block(&self, index: u64, data: &[u8]) -> Result<(), String> {
        let storage = self.chain.storage();
        let block = match FogBlock::decode(&mut &data[..]) {
            Ok(block) => block,
            Err(e) => {
                tracing::warn!(index, error = %e, "committed entry is not a block; skipped");
                return storage.set_applied_index(index).map_err(|e| e.to_string());
            }
        };
        let hash = block.header.hash_slow();
        let executed = self.take_minted(hash);
        match self.chain.apply_block(&block, executed, Some(index)) {
            Ok(Applied::Head { number, hash, senders }) => {
                tracing::info!(number, %hash, txs = senders.len(), index, "block committed");
                self.pool.on_block(&senders, &[]);
                Ok(())
            }
            Ok(Applied::Stale(txs)) => {
                tracing::info!(number = block.header.number, %hash, index, "stale block (deposed leader) skipped; its transactions return to the pool");
                storage.set_applied_index(index).map_err(|e| e.to_string())?;
                self.pool.reinsert(txs);
                Ok(())
            }
            Err(ChainError::Storage(e)) => Err(e.to_string()),
            Err(e) => {
                // Every node runs the same checks on the same block: all skip it.
                tracing::warn!(number = block.header.number, %hash, index, error = %e, "invalid committed block skipped");
                storage.set_applied_index(index).map_err(|e| e.to_string())
            }
        }
    }

    fn head(&self) -> (u64, B256) {
        self.chain.head()
    }

    fn encoded_blocks(&self, from: u64, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut size = 0;
        let mut number = from;
        while size < max_bytes {
            match self.chain.encoded_block(number) {
                Ok(Some(block)) => {
                    size += block.len();
                    out.push(block);
                    number += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(number, error = %e, "cannot serve block for sync");
                    break;
                }
            }
        }
        out
    }

    fn import_block(&self, data: &[u8]) -> Result<(u64, B256), String> {
        let block = FogBlock::decode(&mut &data[..]).map_err(|e| format!("undecodable block: {e}"))?;
        match self.chain.apply_block(&block, None, None).map_err(|e| e.to_string())? {
            Applied::Head { number, hash, senders } => {
                self.pool.on_block(&senders, &[]);
                Ok((number, hash))
            }
            Applied::Stale(_) => Err(format!(
                "synced block {} does not extend the head {:?}",
                block.header.number,
                self.chain.head()
            )),
        }
    }

    fn receive_txs(&self, txs: Vec<Vec<u8>>) {
        for bytes in txs {
            let Ok(tx) = alloy_consensus::TxEnvelope::decode_2718(&mut &bytes[..]) else { continue };
            if self.pool.get(tx.tx_hash()).is_some() {
                continue;
            }
            if let Err(e) = self.pool.add(tx, bytes.len()) {
                tracing::debug!(error = %e, "forwarded transaction not pooled");
            }
        }
    }

    fn members_changed(&self, directory: &Directory) {
        self.chain.set_sealers(directory.sealers());
    }
}
