//! Applying committed blocks: the one code path every node (the minter too) runs.
//!
//! [`Chain::apply_block`] checks the parent link, the header rules of the chain's rule set
//! (number, timestamp, gas limit, base fee, ...; see `fogchain_evm::check_header`) and the
//! seal of a Fogchain block, re-executes the transactions with revm (or reuses the minter's own execution of the
//! very same block), compares the roots and writes everything in one RocksDB batch. A block
//! whose parent is no longer the head (a stale speculative block of a deposed leader) is a
//! deterministic no-op: [`Applied::Stale`] hands its transactions back to the pool.

use crate::seal::{sealer, SealError};
use alloy_consensus::{transaction::Recovered, Block, Header, TxEip4844Variant, TxEnvelope};
use alloy_primitives::{Address, B256};
use fogchain_evm::{check_header, validate_block, ExecError, ExecutedBlock, MAX_RLP_BLOCK_SIZE};
use fogchain_genesis::{ChainSpec, Fork, RuleSet, Sealers};
use fogchain_storage::{ChainReader, Storage, StorageError};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use tokio::sync::watch;

/// A block as minted and committed: Ethereum header + transactions.
pub type FogBlock = Block<TxEnvelope>;

/// A block with its hash (keccak-256 of the RLP header) computed once: by the minter when it
/// seals the block, by every other node when it decodes the committed entry.
#[derive(Debug, Clone)]
pub struct SealedBlock {
    block: FogBlock,
    hash: B256,
}

impl SealedBlock {
    /// Hashes `block`'s header.
    pub fn new(block: FogBlock) -> Self {
        let hash = block.header.hash_slow();
        Self { block, hash }
    }

    /// Decodes an RLP block (a committed Raft entry, a block-sync answer, a fixture or export
    /// file's block) and hashes it. Bytes after the block are an error, as in geth.
    pub fn decode(mut data: &[u8]) -> Result<Self, alloy_rlp::Error> {
        let block = alloy_rlp::Decodable::decode(&mut data)?;
        if !data.is_empty() {
            return Err(alloy_rlp::Error::UnexpectedLength);
        }
        Ok(Self::new(block))
    }

    /// RLP encoding (a Raft entry).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.block.body.transactions.len() * 128 + 1024);
        alloy_rlp::Encodable::encode(&self.block, &mut out);
        out
    }

    /// The block hash.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.block.header
    }

    /// The transactions.
    pub fn transactions(&self) -> &[TxEnvelope] {
        &self.block.body.transactions
    }
}

/// Whether `tx` is a blob transaction in its network form (with blobs, commitments, proofs).
fn has_sidecar(tx: &TxEnvelope) -> bool {
    matches!(tx, TxEnvelope::Eip4844(signed) if matches!(signed.tx(), TxEip4844Variant::TxEip4844WithSidecar(_)))
}

/// Why a block was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The header breaks a chain rule.
    #[error("invalid block {number}: {reason}")]
    InvalidHeader {
        /// Block number.
        number: u64,
        /// Which rule.
        reason: String,
    },
    /// The seal is missing, malformed or from a non-member.
    #[error("invalid block seal: {0}")]
    Seal(#[from] SealError),
    /// Execution disagrees with the header, or a transaction is invalid.
    #[error(transparent)]
    Execution(#[from] ExecError),
}

impl ChainError {
    /// True when this node failed (its database, or revm reporting an error that is not
    /// about the block), rather than the block breaking a rule: every node would judge a bad
    /// block the same, but a fault is local and must stop the node (fail-stop).
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            ChainError::Storage(_) | ChainError::Execution(ExecError::Storage(_) | ExecError::Evm(_))
        )
    }
}

/// For the consensus layer: storage failure and faults stop the node; a rule the block breaks
/// makes it a refused (skipped) entry.
impl From<ChainError> for fogchain_consensus::ApplyError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::Storage(e) | ChainError::Execution(ExecError::Storage(e)) => Self::Storage(e),
            e if e.is_fault() => Self::Fault(Box::new(e)),
            e => Self::Refused(Box::new(e)),
        }
    }
}

/// A committed block that does not extend the head (a deposed leader's, built on a parent that
/// is no longer the head): skipped on every node.
#[derive(Debug, thiserror::Error)]
#[error("block {number} does not extend the head (block {head})")]
pub struct StaleBlock {
    /// The block's number.
    pub number: u64,
    /// The head's number.
    pub head: u64,
}

/// Outcome of applying a committed block.
#[derive(Debug)]
pub enum Applied {
    /// The block is the new head.
    Head {
        /// Its hash.
        hash: B256,
        /// Its number.
        number: u64,
        /// Sender of each included transaction (for the pool to drop used nonces).
        senders: Vec<Address>,
    },
    /// The block does not extend the head: nothing changed; its transactions are returned.
    Stale(Vec<Recovered<TxEnvelope>>),
}

/// The applied chain of one node.
pub struct Chain {
    spec: Arc<ChainSpec>,
    storage: Storage,
    /// Who may seal which block: the members' tenures (updated by configuration changes).
    sealers: RwLock<Sealers>,
    /// Serialises block application.
    apply_lock: Mutex<()>,
    head: watch::Sender<(u64, B256)>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("head", &*self.head.borrow()).finish()
    }
}

impl Chain {
    /// The chain stored in `storage`.
    pub fn new(spec: Arc<ChainSpec>, storage: Storage) -> Result<Self, ChainError> {
        let (hash, header) = storage.head()?;
        let sealers = spec.sealers();
        let (head, _) = watch::channel((header.number, hash));
        Ok(Self { spec, storage, sealers: RwLock::new(sealers), apply_lock: Mutex::new(()), head })
    }

    /// The chain spec.
    pub fn spec(&self) -> &Arc<ChainSpec> {
        &self.spec
    }

    /// The storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Replaces who may seal which block (after a membership change or a snapshot).
    pub fn set_sealers(&self, sealers: Sealers) {
        *self.sealers.write() = sealers;
    }

    /// The head (number, hash) as last applied.
    pub fn head(&self) -> (u64, B256) {
        *self.head.borrow()
    }

    /// Canonical block `number` as RLP, if stored.
    pub fn encoded_block(&self, number: u64) -> Result<Option<Vec<u8>>, ChainError> {
        let Some((hash, header)) = self.storage.header_by_number(number)? else { return Ok(None) };
        let body = self.storage.body(&hash)?.ok_or_else(|| {
            StorageError::Corrupt(format!("block {number} ({hash}) has a header but no body"))
        })?;
        let withdrawals = header.withdrawals_root.map(|_| body.withdrawals.unwrap_or_default());
        let block = FogBlock {
            header,
            body: alloy_consensus::BlockBody { transactions: body.transactions, ommers: vec![], withdrawals },
        };
        let mut out = Vec::with_capacity(1024);
        alloy_rlp::Encodable::encode(&block, &mut out);
        Ok(Some(out))
    }

    /// Head (number, hash) updates, for waiters and subscriptions.
    pub fn subscribe_head(&self) -> watch::Receiver<(u64, B256)> {
        self.head.subscribe()
    }

    /// The chain rules of the header against its parent ([`fogchain_evm::check_header`]), the
    /// body's shape, and for a Fogchain block its seal: the signer must be a member at this
    /// height and the beneficiary.
    fn check_header(&self, parent: &Header, block: &SealedBlock) -> Result<(), ChainError> {
        let header = block.header();
        let invalid = |reason: String| ChainError::InvalidHeader { number: header.number, reason };
        check_header(&self.spec, parent, header).map_err(|e| invalid(e.0))?;
        let body = &block.block.body;
        if !body.ommers.is_empty() {
            return Err(invalid(format!("{} uncles in a post-merge block", body.ommers.len())));
        }
        // A block carries blob transactions without their sidecars (EIP-4844: blobs travel
        // beside the chain, never in a block).
        if let Some(index) = block.transactions().iter().position(has_sidecar) {
            return Err(invalid(format!("transaction {index} carries a blob sidecar")));
        }
        if body.withdrawals.is_some() != header.withdrawals_root.is_some() {
            return Err(invalid("withdrawals and withdrawalsRoot must come together".into()));
        }
        if self.spec.rules == RuleSet::Ethereum {
            if self.spec.fork_at(header.number, header.timestamp) >= Fork::Osaka {
                let size = alloy_rlp::Encodable::length(&block.block);
                if size > MAX_RLP_BLOCK_SIZE {
                    return Err(invalid(format!(
                        "block RLP is {size} bytes, more than {MAX_RLP_BLOCK_SIZE} (EIP-7934)"
                    )));
                }
            }
            return Ok(());
        }
        if body.withdrawals.as_ref().is_some_and(|w| !w.is_empty()) {
            return Err(invalid("withdrawals in a Fogchain block".into()));
        }
        let signer = sealer(header)?;
        let sealers = self.sealers.read();
        if !sealers.is_empty() && !sealers.may_seal(signer, header.number) {
            return Err(invalid(format!("sealed by {signer}, not a member at block {}", header.number)));
        }
        if header.beneficiary != signer {
            return Err(invalid(format!("beneficiary {} is not the sealer {signer}", header.beneficiary)));
        }
        Ok(())
    }

    /// Applies a committed block. `executed` is the minter's own execution of this block (used
    /// only if its header is the block's); `applied_index` is the consensus log index recorded
    /// atomically with the block; `known_sender` gives the senders this node already recovered
    /// (its pool's), by transaction hash, so only the others are recovered.
    pub fn apply_block(
        &self,
        block: &SealedBlock,
        executed: Option<ExecutedBlock>,
        applied_index: Option<u64>,
        known_sender: impl Fn(&B256) -> Option<Address> + Sync,
    ) -> Result<Applied, ChainError> {
        let _guard = self.apply_lock.lock();
        let hash = block.hash();
        let header = block.header();
        let (head_hash, head) = self.storage.head()?;
        let recover = || -> Result<Vec<Recovered<TxEnvelope>>, ChainError> {
            fogchain_evm::recover_senders_with(block.transactions(), &known_sender).map_err(|index| {
                ChainError::Execution(ExecError::InvalidTransaction {
                    index,
                    hash: *block.transactions()[index].tx_hash(),
                    reason: "invalid sender".into(),
                })
            })
        };
        if header.parent_hash != head_hash && self.spec.rules == RuleSet::Ethereum {
            return Err(ChainError::InvalidHeader {
                number: header.number,
                reason: format!("unknown ancestor {} (head is {head_hash})", header.parent_hash),
            });
        }
        if header.parent_hash != head_hash {
            let txs = match executed {
                Some(e) => e.transactions,
                None => recover()?,
            };
            return Ok(Applied::Stale(txs));
        }
        self.check_header(&head, block)?;
        let executed = match executed.filter(|e| e.header == *header) {
            Some(e) => e,
            None => {
                let withdrawals = block.block.body.withdrawals.as_ref().map(|w| w.as_slice());
                validate_block(&self.spec, &self.storage, &head, header, recover()?, withdrawals)?
            }
        };
        let write = executed.into_block_write(hash, applied_index);
        self.storage.write_block(&write)?;
        self.head.send_replace((header.number, hash));
        Ok(Applied::Head { hash, number: header.number, senders: write.body.senders })
    }
}
