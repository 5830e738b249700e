//! What every client of a Fogchain node needs, written once for the proxy (`fogchain-proxy`),
//! the benchmarks (`fogchain-bench`) and the end-to-end tests:
//!
//! - [`jsonrpc`]: JSON-RPC 2.0 request and batch bodies and the decoding of answers, on
//!   alloy-json-rpc's `Request` and `Response` types. The transport (hyper, reqwest, blocking or
//!   not, failover) stays with each client.
//! - [`codes`]: the JSON-RPC error codes and refusal kinds a node answers with (shared with the
//!   node's txpool and rpc).
//! - [`sign`]: EIP-1559 transactions signed with a local key (alloy), as hash + EIP-2718 bytes
//!   ready for `eth_sendRawTransaction`.
//!
//! No RocksDB, no node code: the proxy's small host links this and nothing of the node.

pub mod codes;
pub mod jsonrpc;
pub mod sign;

pub use codes::Refusal;
pub use jsonrpc::{AnswerError, RpcError};
pub use sign::{eip1559, sign, Fees, SignedTx};
