//! The replicated state machine consensus applies committed entries to (the node's chain), and
//! what it answers: the head a block made, or why it did not (refused: skip; storage or fault:
//! stop).

use crate::Directory;
use alloy_primitives::B256;
use fogchain_storage::{Storage, StorageError};

/// A boxed error kept as the source of an [`ApplyError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the state machine did not make a block the new head.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The block is refused by the chain's rules (undecodable, stale: it does not extend the
    /// head, or invalid): every node judges it the same, so it is skipped, deterministically.
    #[error("block refused: {0}")]
    Refused(#[source] BoxError),
    /// The database failed: this node stops (fail-stop).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// This node failed executing the block for a reason that is not the block's (an EVM
    /// error that is not a rule): this node stops, as for storage.
    #[error("fault: {0}")]
    Fault(#[source] BoxError),
}

impl ApplyError {
    /// A refusal with `reason`.
    pub fn refused(reason: impl Into<BoxError>) -> Self {
        Self::Refused(reason.into())
    }

    /// True for a storage failure or a fault: the node must stop.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::Refused(_))
    }
}

/// A block entry committed by Raft, handed to [`StateMachine::apply_block`].
#[derive(Debug, Clone, Copy)]
pub struct CommittedBlock<'a> {
    /// Its log index: the machine records it as applied in the same write as the block.
    pub index: u64,
    /// The term of the leader that proposed it.
    pub term: u64,
    /// The block, RLP.
    pub data: &'a [u8],
}

/// A block that became the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedBlock {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
}

/// The replicated state machine: the node's chain. Called from the driver thread (and the
/// block-sync thread while the driver waits for it), in log order.
pub trait StateMachine: Send + Sync + 'static {
    /// The node database (the Raft log lives in its own column families there).
    fn storage(&self) -> &Storage;
    /// Applies a committed block entry. On `Ok` the block is the new head and `entry.index` was
    /// recorded as applied in the same atomic write. On `Err` nothing was written: a refused
    /// block is a no-op on every node (consensus records the index itself); storage failure
    /// and faults stop the node. Consensus is the only other writer of the applied index.
    fn apply_block(&self, entry: CommittedBlock<'_>) -> Result<AppliedBlock, ApplyError>;
    /// Head (number, hash).
    fn head(&self) -> (u64, B256);
    /// Canonical blocks from number `from`, RLP, up to about `max_bytes` (at least one when
    /// there is one).
    fn encoded_blocks(&self, from: u64, max_bytes: usize) -> Vec<Vec<u8>>;
    /// Verifies and applies a block (RLP) fetched by block sync, without an applied index
    /// (consensus records the snapshot's when the sync completes).
    fn import_block(&self, data: &[u8]) -> Result<AppliedBlock, ApplyError>;
    /// The membership changed (e.g. new sealers).
    fn members_changed(&self, directory: &Directory);
}
