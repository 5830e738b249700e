//! Fogchain block execution on revm.
//!
//! [`execute_block`] runs a block's transactions over the stored parent state and produces the
//! receipts (status, cumulative gas, logs, bloom), the transactions / receipts / state roots and
//! the state writes of the block. The same function builds blocks on the minting node
//! ([`Mode::Build`]) and validates them on every node ([`validate_block`]), so all nodes apply a
//! block with the same code. The state root is updated incrementally through the stored trie
//! (see `fogchain_storage::trie`). [`call`] and [`estimate_gas`] serve `eth_call` and
//! `eth_estimateGas`, [`trace_transaction`] / [`trace_call`] geth's tracers, and
//! [`create_access_list`] `eth_createAccessList`; callers run them off the async runtime.
//! [`Permissions`] is the account-permissioning rule blocks and the pool apply.
//!
//! One pipeline, two rule sets: the chain spec's [`fogchain_genesis::RuleSet`] decides the header
//! rules ([`check_header`]) and the block-level steps around the transactions (system calls,
//! withdrawals, requests; see [`execute_block`]). alloy-evm provides those Ethereum steps.

mod block;
mod budget;
mod call;
mod env;
mod forks;
mod permissions;
mod predeploy;
mod rules;
mod senders;
mod state;
mod trace;

pub use block::*;
pub use budget::*;
pub use call::*;
pub use env::*;
pub use forks::*;
pub use permissions::*;
pub use predeploy::*;
/// Why a call halted ([`CallOutcome::Halt`]): revm's types.
pub use revm::context::result::{HaltReason, OutOfGasError};
pub use rules::*;
pub use senders::*;
pub use state::*;
pub use trace::*;

pub use revm;

use alloy_primitives::B256;
use fogchain_storage::StorageError;

/// Errors while executing or validating a block.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Reading state failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A transaction of a block being validated cannot be executed.
    #[error("invalid transaction {index} ({hash}): {reason}")]
    InvalidTransaction {
        /// Position in the block.
        index: usize,
        /// Transaction hash.
        hash: B256,
        /// Why, in geth's words.
        reason: String,
    },
    /// The block's header does not match its execution.
    #[error("block {field} mismatch: header has {expected}, execution gives {got}")]
    Mismatch {
        /// Header field.
        field: &'static str,
        /// Value in the header.
        expected: String,
        /// Value computed.
        got: String,
    },
    /// revm reported an error that is not about the transaction.
    #[error("evm error: {0}")]
    Evm(String),
    /// A block-level step of Ethereum's rules refused the block: a system call failed
    /// (EIP-2935, EIP-4788, EIP-7002, EIP-7251) or a deposit log is malformed (EIP-6110).
    #[error("invalid block: {0}")]
    System(#[source] alloy_evm::block::BlockValidationError),
}

impl ExecError {
    /// An error of alloy-evm's block-level steps: a refusal of the block, or a fault.
    pub(crate) fn from_block(err: alloy_evm::block::BlockExecutionError) -> Self {
        match err {
            alloy_evm::block::BlockExecutionError::Validation(e) => Self::System(e),
            other => Self::Evm(other.to_string()),
        }
    }
}
