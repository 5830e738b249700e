//! JSON-RPC errors with geth's codes and wording.

use alloy_primitives::Bytes;
use fogchain_evm::{CallError, ExecError};
use fogchain_storage::StorageError;
use jsonrpsee::types::{error::INVALID_PARAMS_CODE, ErrorObjectOwned};

/// geth's code for server-side failures and transaction rejections.
pub const SERVER_ERROR_CODE: i32 = -32000;
/// geth's code for a reverted `eth_call` / `eth_estimateGas` (data carries the revert bytes).
pub const EXECUTION_REVERTED_CODE: i32 = 3;

/// An error answered to a JSON-RPC client.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Parameters are malformed (-32602).
    #[error("{0}")]
    InvalidParams(String),
    /// Rejected by validation or not served (-32000), e.g. `nonce too low`, `header not found`.
    #[error("{0}")]
    Server(String),
    /// Execution reverted (code 3, geth's `execution reverted: <reason>`).
    #[error("{}", revert_message(.0))]
    Reverted(Bytes),
    /// Internal failure (-32603).
    #[error("internal error: {0}")]
    Internal(String),
    /// A server limit refuses the request for now (EIP-1474 "limit exceeded",
    /// [`LIMIT_EXCEEDED_CODE`]); the client may retry later.
    #[error("{0}")]
    LimitExceeded(String),
    /// An admin method without the admin bearer token ([`UNAUTHORIZED_CODE`]).
    #[error("unauthorized: admin_ and raft_ membership methods need 'Authorization: Bearer <admin token>' (the node's [rpc] admin-token)")]
    Unauthorized,
}

/// Code of [`RpcError::LimitExceeded`] (EIP-1474).
pub const LIMIT_EXCEEDED_CODE: i32 = -32005;

/// Code of [`RpcError::Unauthorized`].
pub const UNAUTHORIZED_CODE: i32 = -32001;

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
    /// A refused transaction: -32000 with geth's message.
    fn from(err: fogchain_txpool::PoolError) -> Self {
        RpcError::Server(err.to_string())
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(err: RpcError) -> Self {
        let message = err.to_string();
        match err {
            RpcError::InvalidParams(_) => ErrorObjectOwned::owned(INVALID_PARAMS_CODE, message, None::<()>),
            RpcError::Server(_) => ErrorObjectOwned::owned(SERVER_ERROR_CODE, message, None::<()>),
            RpcError::Reverted(data) => ErrorObjectOwned::owned(EXECUTION_REVERTED_CODE, message, Some(data)),
            RpcError::Internal(_) => ErrorObjectOwned::owned(-32603, message, None::<()>),
            RpcError::LimitExceeded(_) => ErrorObjectOwned::owned(LIMIT_EXCEEDED_CODE, message, None::<()>),
            RpcError::Unauthorized => ErrorObjectOwned::owned(UNAUTHORIZED_CODE, message, None::<()>),
        }
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
            other => RpcError::Server(other.to_string()),
        }
    }
}

/// Result alias for RPC handlers.
pub type RpcResult<T> = Result<T, RpcError>;
