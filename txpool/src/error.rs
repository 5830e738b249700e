//! Why the pool refuses a transaction, in geth's words.

use alloy_primitives::U256;
use fogchain_client::Refusal;
use fogchain_storage::StorageError;

/// A refused transaction. `Display` is geth's message for the same rejection (what
/// `eth_sendRawTransaction` answers with code -32000).
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Encoded size over [`crate::MAX_TX_SIZE`] (geth `ErrOversizedData`).
    #[error("oversized data: transaction size {size}, limit {limit}")]
    OversizedData {
        /// Encoded size, bytes.
        size: usize,
        /// The limit, bytes.
        limit: usize,
    },
    /// EIP-4844 blob transactions are not served (geth `ErrTxTypeNotSupported`).
    #[error("transaction type not supported")]
    TxTypeNotSupported,
    /// Gas limit over the block gas limit (geth `ErrGasLimit`).
    #[error("exceeds block gas limit")]
    GasLimitExceeded,
    /// EIP-1559 tip above the fee cap (geth `ErrTipAboveFeeCap`).
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Signed for another chain (geth `ErrInvalidChainId`).
    #[error("invalid chain id for signer: have {have} want {want}")]
    InvalidChainId {
        /// The transaction's chain id.
        have: u64,
        /// This network's.
        want: u64,
    },
    /// A legacy transaction without EIP-155 replay protection (geth's RPC refusal).
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    NotReplayProtected,
    /// The signature recovers no sender, or has a high s (geth `ErrInvalidSender`).
    #[error("invalid sender")]
    InvalidSender,
    /// Init code over [`crate::MAX_INITCODE_SIZE`] (EIP-3860, geth `ErrMaxInitCodeSizeExceeded`).
    #[error("max initcode size exceeded: code size {size}, limit {limit}")]
    MaxInitCodeSizeExceeded {
        /// Init code size, bytes.
        size: usize,
        /// The limit, bytes.
        limit: usize,
    },
    /// Gas limit below the intrinsic gas (geth `ErrIntrinsicGas`).
    #[error("intrinsic gas too low: gas {gas}, minimum needed {needed}")]
    IntrinsicGasTooLow {
        /// The transaction's gas limit.
        gas: u64,
        /// Intrinsic gas.
        needed: u64,
    },
    /// Gas limit below the EIP-7623 calldata floor (geth `ErrFloorDataGas`).
    #[error("insufficient gas for floor data gas cost: gas {gas}, minimum needed {needed}")]
    FloorDataGasTooLow {
        /// The transaction's gas limit.
        gas: u64,
        /// The floor.
        needed: u64,
    },
    /// Tip (legacy: gas price) below the node's price limit, `[txpool] price-limit` (geth
    /// `--txpool.pricelimit`, `ErrUnderpriced`), wei.
    #[error("transaction underpriced: gas tip cap {tip}, minimum needed {min}")]
    TipBelowMinimum {
        /// The transaction's tip (max priority fee, or gas price), wei.
        tip: u128,
        /// The price limit, wei.
        min: u128,
    },
    /// Nonce already used (geth `ErrNonceTooLow`).
    #[error("nonce too low: next nonce {next}, tx nonce {nonce}")]
    NonceTooLow {
        /// The sender's state nonce.
        next: u64,
        /// The transaction's nonce.
        nonce: u64,
    },
    /// Balance below gas × fee cap + value (geth `ErrInsufficientFunds`), wei.
    #[error("insufficient funds for gas * price + value: balance {balance}, tx cost {cost}, overshot {}", .cost - .balance)]
    InsufficientFunds {
        /// The sender's balance, wei.
        balance: U256,
        /// gas limit × fee cap + value, wei.
        cost: U256,
    },
    /// The same transaction is pooled (geth `ErrAlreadyKnown`).
    #[error("already known")]
    AlreadyKnown,
    /// A same-nonce replacement without the price bump (geth `ErrReplaceUnderpriced`).
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The sender has [`crate::PoolConfig::max_per_sender`] pooled, or the nonce is that far
    /// ahead (geth `ErrAccountLimitExceeded`).
    #[error("account limit exceeded: at most {max} pooled transactions per sender")]
    AccountLimitExceeded {
        /// The per-sender limit.
        max: usize,
    },
    /// The pool is full and the transaction pays no more than the cheapest pooled one, so it
    /// cannot evict it (geth `ErrUnderpriced`).
    #[error("transaction underpriced")]
    Underpriced,
    /// The pool is full and nothing can be evicted for it (geth `ErrTxPoolOverflow`).
    #[error("txpool is full")]
    PoolFull,
    /// The sender may not send this transaction (account permissioning, `AccountPermissions`):
    /// "account not permitted to transact", "... to deploy contracts", "... to call contract X",
    /// "account suspended".
    #[error(transparent)]
    NotPermitted(#[from] fogchain_evm::NotPermitted),
    /// The state could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PoolError {
    /// A short, fixed name of the refusal, for metrics labels (`fogchain_txpool_refused_total`).
    pub fn reason(&self) -> &'static str {
        match self {
            PoolError::OversizedData { .. } => "oversized_data",
            PoolError::TxTypeNotSupported => "tx_type_not_supported",
            PoolError::GasLimitExceeded => "gas_limit_exceeded",
            PoolError::TipAboveFeeCap => "tip_above_fee_cap",
            PoolError::InvalidChainId { .. } => "invalid_chain_id",
            PoolError::NotReplayProtected => "not_replay_protected",
            PoolError::InvalidSender => "invalid_sender",
            PoolError::MaxInitCodeSizeExceeded { .. } => "max_init_code_size_exceeded",
            PoolError::IntrinsicGasTooLow { .. } => "intrinsic_gas_too_low",
            PoolError::FloorDataGasTooLow { .. } => "floor_data_gas_too_low",
            PoolError::TipBelowMinimum { .. } => "tip_below_minimum",
            PoolError::NonceTooLow { .. } => "nonce_too_low",
            PoolError::InsufficientFunds { .. } => "insufficient_funds",
            PoolError::AlreadyKnown => "already_known",
            PoolError::ReplacementUnderpriced => "replacement_underpriced",
            PoolError::AccountLimitExceeded { .. } => "account_limit_exceeded",
            PoolError::Underpriced => "underpriced",
            PoolError::PoolFull => "pool_full",
            PoolError::NotPermitted(_) => "not_permitted",
            PoolError::Storage(_) => "storage",
        }
    }

    /// The kind a node answers with as the error's data (`fogchain_client::codes`); `None` for a
    /// storage failure, which is the node's fault (JSON-RPC -32603), not a refusal.
    pub fn refusal(&self) -> Option<Refusal> {
        Some(match self {
            PoolError::AlreadyKnown => Refusal::AlreadyKnown,
            PoolError::NonceTooLow { .. } => Refusal::NonceTooLow,
            PoolError::Underpriced | PoolError::TipBelowMinimum { .. } => Refusal::Underpriced,
            PoolError::ReplacementUnderpriced => Refusal::ReplacementUnderpriced,
            PoolError::AccountLimitExceeded { .. } => Refusal::AccountLimit,
            PoolError::PoolFull => Refusal::PoolFull,
            PoolError::GasLimitExceeded => Refusal::ExceedsBlockGasLimit,
            PoolError::InsufficientFunds { .. } => Refusal::InsufficientFunds,
            PoolError::NotPermitted(_) => Refusal::NotPermitted,
            PoolError::OversizedData { .. }
            | PoolError::TxTypeNotSupported
            | PoolError::TipAboveFeeCap
            | PoolError::InvalidChainId { .. }
            | PoolError::NotReplayProtected
            | PoolError::InvalidSender
            | PoolError::MaxInitCodeSizeExceeded { .. }
            | PoolError::IntrinsicGasTooLow { .. }
            | PoolError::FloorDataGasTooLow { .. } => Refusal::Invalid,
            PoolError::Storage(_) => return None,
        })
    }
}
