//! The JSON-RPC error codes and refusal kinds a Fogchain node answers with, in one place for the
//! node (txpool, rpc) and its clients (the proxy, the benchmarks, the tests).
//!
//! Codes are geth's (JSON-RPC 2.0's, EIP-1474's). geth words a refused transaction in English
//! under the one code -32000; a Fogchain node keeps that message and adds a machine-readable
//! kind as the error's data, `{"refusal": "<kind>"}` ([`Refusal`]), so that clients decide by
//! code and data, never by parsing the message.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Invalid JSON (JSON-RPC 2.0).
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid request object (JSON-RPC 2.0).
pub const INVALID_REQUEST: i64 = -32600;
/// Unknown or unavailable method (JSON-RPC 2.0).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Malformed parameters (JSON-RPC 2.0).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal failure (JSON-RPC 2.0): the node's fault, retry elsewhere or later.
pub const INTERNAL_ERROR: i64 = -32603;
/// geth's code for rejected transactions and server-side failures.
pub const SERVER_ERROR: i64 = -32000;
/// A method that needs the admin bearer token, called without it (Fogchain, as GoQuorum).
pub const UNAUTHORIZED: i64 = -32001;
/// A server limit refuses the request for now (EIP-1474 "limit exceeded").
pub const LIMIT_EXCEEDED: i64 = -32005;
/// A reverted `eth_call` / `eth_estimateGas`; the data carries the revert bytes (geth).
pub const EXECUTION_REVERTED: i64 = 3;

/// Why a node refused a transaction (`eth_sendRawTransaction`, code [`SERVER_ERROR`]) or an
/// `eth_estimateGas`: the `refusal` member of the error's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// `already known`: the same transaction is pooled there.
    AlreadyKnown,
    /// `nonce too low`: the account's nonce passed this one (mined, or taken by another).
    NonceTooLow,
    /// `transaction underpriced`: below the pool's price floor.
    Underpriced,
    /// `replacement transaction underpriced`: a pooled one with this nonce pays more.
    ReplacementUnderpriced,
    /// `account limit exceeded`: the sender has as many pooled transactions as allowed.
    AccountLimit,
    /// `txpool is full`.
    PoolFull,
    /// `insufficient funds for gas * price + value`.
    InsufficientFunds,
    /// The network's account permissioning refuses the sender (docs/permissioning.md).
    NotPermitted,
    /// `exceeds block gas limit`: the transaction's gas limit is over the block's.
    ExceedsBlockGasLimit,
    /// The transaction is invalid as such (size, type, chain id, signature, intrinsic gas, fees).
    Invalid,
    /// `eth_estimateGas`: no gas up to the allowance lets the call succeed (it would fail).
    GasExceedsAllowance,
}

impl Refusal {
    /// The error data that carries this kind: `{"refusal": "<kind>"}`.
    pub fn data(self) -> Value {
        json!({ "refusal": self })
    }

    /// The kind in an error's data, if it carries one.
    pub fn of_data(data: Option<&Value>) -> Option<Self> {
        serde_json::from_value(data?.get("refusal")?.clone()).ok()
    }

    /// Refused for now, not for what the transaction is: the same bytes may be accepted later
    /// (the pool has room, the price floor or the balance changed).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Underpriced
                | Self::ReplacementUnderpriced
                | Self::AccountLimit
                | Self::PoolFull
                | Self::InsufficientFunds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_round_trips_through_error_data() {
        for kind in [Refusal::AlreadyKnown, Refusal::NonceTooLow, Refusal::GasExceedsAllowance] {
            assert_eq!(Refusal::of_data(Some(&kind.data())), Some(kind));
        }
        assert_eq!(Refusal::NonceTooLow.data(), json!({"refusal": "nonce-too-low"}));
        assert_eq!(Refusal::of_data(None), None);
        assert_eq!(Refusal::of_data(Some(&json!("0x08c379a0"))), None);
        assert_eq!(Refusal::of_data(Some(&json!({"refusal": "something new"}))), None);
    }
}
