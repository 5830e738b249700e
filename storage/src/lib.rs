//! Fogchain storage: RocksDB column families, typed tables and the state trie.
//!
//! Everything a node persists lives in one RocksDB database with one column family per table
//! ([`Table`]). Blocks are written atomically: [`Storage::write_block`] turns a [`BlockWrite`]
//! (header, body, receipts, state changes and new trie nodes) into a single `WriteBatch`, so a
//! crash leaves the database at the previous or the next block, never in between. Reads go
//! through the [`KvRead`] trait, implemented by the database itself and by [`StateSnapshot`]
//! (a consistent RocksDB snapshot used by RPC calls); the typed accessors in [`ChainReader`]
//! work on both.

mod db;
mod reader;
mod stats;
mod tables;
pub mod trie;

pub use db::*;
pub use reader::*;
pub use stats::*;
pub use tables::*;

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB failed.
    #[error("database error: {0}")]
    Db(#[from] rocksdb::Error),
    /// Stored data does not decode or is inconsistent.
    #[error("corrupt database: {0}")]
    Corrupt(String),
    /// The datadir was initialised for a different genesis.
    #[error(
        "datadir {path} belongs to another chain: its genesis is {stored}, this genesis is \
         {expected}; use another --datadir or remove the old one"
    )]
    GenesisMismatch {
        /// The datadir.
        path: String,
        /// Genesis hash stored in the datadir.
        stored: alloy_primitives::B256,
        /// Genesis hash of the spec being opened.
        expected: alloy_primitives::B256,
    },
    /// The datadir was initialised for a chain with another chain id (same genesis block).
    #[error(
        "datadir {path} belongs to another chain: it was made for chain id {stored}, this genesis \
         has chain id {expected}; use another --datadir or remove the old one"
    )]
    ChainIdMismatch {
        /// The datadir.
        path: String,
        /// Chain id stored in the datadir.
        stored: u64,
        /// Chain id of the spec being opened.
        expected: u64,
    },
    /// Initialising the genesis state gave a root other than the spec's.
    #[error("genesis state root mismatch: trie gives {got}, spec says {expected}")]
    GenesisRoot {
        /// Root computed by the stored trie.
        got: alloy_primitives::B256,
        /// Root in the genesis header.
        expected: alloy_primitives::B256,
    },
}

/// Result alias for this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
