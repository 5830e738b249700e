//! JSON-RPC errors with geth's codes and wording.

use alloy_primitives::Bytes;
use fogchain_client::{codes, Refusal};
use fogchain_evm::{CallError, ExecError};
use fogchain_storage::StorageError;
use jsonrpsee::types::ErrorObjectOwned;

/// An error answered to a JSON-RPC client.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Parameters are malformed (-32602).
    #[error("{0}")]
    InvalidParams(String),
    /// Rejected by validation or not served (-32000), e.g. `header not found`.
    #[error("{0}")]
    Server(String),
    /// A refused transaction or estimate (-32000 with geth's message and the refusal kind as
    /// data, `{"refusal": "nonce-too-low"}`: `fogchain_client::codes`).
    #[error("{message}")]
    Refused {
        /// geth's message.
        message: String,
        /// What clients decide by.
        refusal: Refusal,
    },
    /// Execution reverted (code 3, geth's `execution reverted: <reason>`).
    #[error("{}", revert_message(.0))]
    Reverted(Bytes),
    /// Internal failure (-32603).
    #[error("internal error: {0}")]
    Internal(String),
    /// A server limit refuses the request for now (EIP-1474 "limit exceeded",
    /// `codes::LIMIT_EXCEEDED`); the client may retry later.
    #[error("{0}")]
    LimitExceeded(String),
    /// An admin method without the admin bearer token (`codes::UNAUTHORIZED`).
    #[error("unauthorized: admin_ and raft_ membership methods need 'Authorization: Bearer <admin token>' (the node's [rpc] admin-token)")]
    Unauthorized,
}

/// `execution reverted` plus the reason of an `Error(string)` or `Panic(uint256)` revert, as
/// geth words it; other revert data (custom errors) gives plain `execution reverted`.
pub fn revert_message(output: &[u8]) -> String {
    use alloy_sol_types::{Panic, Revert, SolError};
    if let Ok(revert) = Revert::abi_decode(output) {
        return format!("execution reverted: {}", revert.reason());
    }
    if let Ok(panic) = Panic::abi_decode(output) {
        let kind = panic.kind().map_or("unknown panic code", |k| k.as_str());
        return format!("execution reverted: {kind}");
    }
    "execution reverted".to_string()
}

impl From<fogchain_txpool::PoolError> for RpcError {
    /// A refused transaction: -32000 with geth's message and its kind; a storage failure:
    /// -32603.
    fn from(err: fogchain_txpool::PoolError) -> Self {
        match err.refusal() {
            Some(refusal) => RpcError::Refused { message: err.to_string(), refusal },
            None => RpcError::Internal(err.to_string()),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(err: RpcError) -> Self {
        let message = err.to_string();
        let (code, data) = match err {
            RpcError::InvalidParams(_) => (codes::INVALID_PARAMS, None),
            RpcError::Server(_) => (codes::SERVER_ERROR, None),
            RpcError::Refused { refusal, .. } => (codes::SERVER_ERROR, Some(refusal.data())),
            RpcError::Reverted(data) => (codes::EXECUTION_REVERTED, Some(serde_json::json!(data))),
            RpcError::Internal(_) => (codes::INTERNAL_ERROR, None),
            RpcError::LimitExceeded(_) => (codes::LIMIT_EXCEEDED, None),
            RpcError::Unauthorized => (codes::UNAUTHORIZED, None),
        };
        // Every code above fits an i32 (JSON-RPC codes are small negatives).
        ErrorObjectOwned::owned(code as i32, message, data)
    }
}

impl From<StorageError> for RpcError {
    fn from(e: StorageError) -> Self {
        RpcError::Internal(e.to_string())
    }
}

impl From<CallError> for RpcError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Reverted { output } => RpcError::Reverted(output),
            CallError::Exec(ExecError::Storage(e)) => e.into(),
            CallError::Exec(e) => RpcError::Internal(e.to_string()),
            e @ CallError::GasExceedsAllowance(_) => {
                RpcError::Refused { message: e.to_string(), refusal: Refusal::GasExceedsAllowance }
            }
            other => RpcError::Server(other.to_string()),
        }
    }
}

/// Result alias for RPC handlers.
pub type RpcResult<T> = Result<T, RpcError>;
