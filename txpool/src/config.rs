//! Pool limits and their defaults (`[txpool]` in the node config).

/// geth's limit on a pooled transaction's encoded size: 128 KiB (4 slots of 32 KiB), bytes.
pub const MAX_TX_SIZE: usize = 4 * 32 * 1024;
/// EIP-3860 limit on init code, bytes.
pub const MAX_INITCODE_SIZE: usize = 2 * 24_576;

/// Pool limits.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct PoolConfig {
    /// Most transactions in the pool (pending + queued). When full, a transaction that pays
    /// more than the cheapest pooled one evicts it; others get "transaction underpriced".
    pub max_transactions: usize,
    /// Most transactions of one sender (IoT gateways send many; geth's 16+64 is too small).
    pub max_per_sender: usize,
    /// Minimum fee and tip increase, percent, for a same-nonce replacement (geth: 10).
    pub price_bump_percent: u128,
    /// Minimum tip (EIP-1559 max priority fee, or legacy gas price) to be pooled, wei (geth's
    /// `--txpool.pricelimit`). Unset: 1 wei, or 0 on a zero-base-fee network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_limit: Option<u128>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { max_transactions: 50_000, max_per_sender: 5_000, price_bump_percent: 10, price_limit: None }
    }
}
