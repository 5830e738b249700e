//! Fogchain chain spec: a geth-format `genesis.json` plus a `fogchain` section.
//!
//! This crate reads the genesis file (via `alloy-genesis`, so any file geth accepts parses the
//! same way), validates the Fogchain-specific section (block-building bounds, the zero-base-fee
//! switch, the initial members of the Raft cluster) and builds the genesis block header exactly
//! as geth's `Genesis.ToBlock` does for the same fork schedule, including the Merkle-Patricia
//! state root over the alloc.

mod sealers;
mod spec;
mod state;

pub use sealers::*;
pub use spec::*;
pub use state::*;

/// Errors while reading or validating a chain spec.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis file {path}: {source}")]
    Io {
        /// Path that was read.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The JSON is not a valid genesis document.
    #[error("invalid genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document parses but is inconsistent.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T, E = GenesisError> = std::result::Result<T, E>;
