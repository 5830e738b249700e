//! Fogchain's transaction pool: what `eth_sendRawTransaction` feeds and the block builder drains.
//!
//! ```text
//! eth_sendRawTransaction (rpc) ── EIP-2718 decode
//!   └─ TxPool::add                                      pool.rs
//!        ├─ stateless checks (the tx, the head header, the chain spec,    validate.rs
//!        │  the node's minimum tip)
//!        ├─ recover the sender (libsecp256k1, once; it travels with the tx from then on)
//!        ├─ stateful checks (the sender's nonce and balance)               validate.rs
//!        └─ pool rules: duplicate, replacement, limits, eviction of the cheapest
//!             → pending (nonces contiguous from the sender's state nonce and covered by its
//!               balance) or queued (a gap, or beyond the balance)          best.rs
//!   TxPool::best         executable txs that pay the base fee, for the next block: highest
//!                        effective tip first, arrival on a tie, nonce order within a
//!                        sender; one that cannot execute never holds up others  best.rs
//!   TxPool::on_block     a committed block drops used nonces and invalid txs pool.rs
//!   forward_pool         a follower sends its pool to the Raft leader       forward.rs
//! ```
//!
//! Every check and the [`PoolError`] it answers (geth's wording, so wallets and libraries that
//! match geth's messages behave the same):
//!
//! | check | error |
//! |---|---|
//! | encoded size ≤ 128 KiB | [`PoolError::OversizedData`] |
//! | not an EIP-4844 blob transaction | [`PoolError::TxTypeNotSupported`] |
//! | gas limit ≤ block gas limit | [`PoolError::GasLimitExceeded`] |
//! | tip ≤ fee cap | [`PoolError::TipAboveFeeCap`] |
//! | EIP-155 chain id present and ours | [`PoolError::NotReplayProtected`], [`PoolError::InvalidChainId`] |
//! | signature recovers a sender (low s) | [`PoolError::InvalidSender`] |
//! | init code ≤ 49,152 bytes (EIP-3860) | [`PoolError::MaxInitCodeSizeExceeded`] |
//! | gas ≥ intrinsic gas, ≥ EIP-7623 floor | [`PoolError::IntrinsicGasTooLow`], [`PoolError::FloorDataGasTooLow`] |
//! | tip ≥ `price-limit` (1 wei; 0 on a zero-base-fee network) | [`PoolError::TipBelowMinimum`] |
//! | nonce ≥ the sender's state nonce | [`PoolError::NonceTooLow`] |
//! | balance ≥ gas × fee cap + value | [`PoolError::InsufficientFunds`] |
//! | hash not pooled yet | [`PoolError::AlreadyKnown`] |
//! | same nonce: fee cap and tip +10% | [`PoolError::ReplacementUnderpriced`] |
//! | per-sender limit | [`PoolError::AccountLimitExceeded`] |
//! | pool full: pays more than the cheapest pooled tx (which it evicts) | [`PoolError::Underpriced`], [`PoolError::PoolFull`] |
//!
//! Modelled on reth's `transaction-pool` crate and geth's `core/txpool/legacypool`.

mod best;
mod config;
mod error;
mod forward;
mod pool;
mod validate;

pub use best::{BestTransactions, LOWEST_BASE_FEE};
pub use config::*;
pub use error::*;
pub use forward::*;
pub use pool::*;
