//! Fogchain's transaction pool: what `eth_sendRawTransaction` feeds and the block builder drains.
//!
//! ```text
//! eth_sendRawTransaction (rpc) ── EIP-2718 decode
//!   └─ TxPool::add                                      pool.rs
//!        ├─ stateless checks (the tx, the head header, the chain spec)
//!        ├─ recover the sender (libsecp256k1, once; it travels with the tx from then on)
//!        ├─ stateful checks (the sender's nonce and balance)
//!        └─ pool rules: duplicate, replacement, limits
//!             → pending (nonces contiguous from the sender's state nonce) or queued (a gap)
//!   TxPool::best         pending txs for the next block: arrival order across senders,
//!                        nonce order within one                             pool.rs
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
//! | nonce ≥ the sender's state nonce | [`PoolError::NonceTooLow`] |
//! | balance ≥ gas × fee cap + value | [`PoolError::InsufficientFunds`] |
//! | hash not pooled yet | [`PoolError::AlreadyKnown`] |
//! | same nonce: fee cap and tip +10% | [`PoolError::ReplacementUnderpriced`] |
//! | per-sender and global limits | [`PoolError::AccountLimitExceeded`], [`PoolError::PoolFull`] |
//!
//! Modelled on reth's `transaction-pool` crate and geth's `core/txpool/legacypool`.

mod config;
mod error;
mod forward;
mod pool;

pub use config::*;
pub use error::*;
pub use forward::*;
pub use pool::*;
