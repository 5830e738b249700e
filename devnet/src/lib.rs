//! Local and multi-host networks: the genesis builder shared by `fogchain devnet` and
//! `fogchain genesis new`, and the typed `network.json` ([`NetworkFile`]) that the launcher
//! writes and tests, benchmarks and scripts read.
//!
//! The `fogchain` binary lives in this crate too (`src/cli/`): `fogchain node` (one node, from
//! `fogchain-node`), `fogchain devnet` (the launcher: every node and the proxy as child
//! processes), `fogchain genesis new`, and `fogchain proxy` / `fogchain sale`, which run the
//! separate `fogchain-proxy` binary (the proxy has no RocksDB and runs on its own host),
//! `fogchain blocktest` (Ethereum's reference tests, [`blocktest`]) and `fogchain export` /
//! `fogchain import` (geth's RLP block stream, [`chain_file`]).

pub mod blocktest;
pub mod chain_file;
mod genesis;
mod network_file;
mod permissioning;

pub use genesis::*;
pub use network_file::*;
pub use permissioning::*;

/// Errors building a network's files.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The genesis is invalid.
    #[error(transparent)]
    Genesis(#[from] fogchain_genesis::GenesisError),
    /// A setup transaction of the IoT contracts failed.
    #[error("predeploying the IoT contracts: {0}")]
    Predeploy(#[from] fogchain_evm::PredeployError),
    /// The account-permissioning setup is inconsistent.
    #[error("account permissioning: {0}")]
    Permissions(String),
    /// A key could not be made, read or derived.
    #[error("{0}")]
    Key(String),
    /// A node key file.
    #[error(transparent)]
    Seal(#[from] fogchain_node::seal::SealError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `network.json` is not what the launcher writes.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}
