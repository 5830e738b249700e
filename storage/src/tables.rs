//! Column families, key layouts and stored value types.

use alloy_consensus::{ReceiptEnvelope, TxEnvelope};
use alloy_primitives::{Address, B256, U256};
use alloy_rlp::{RlpDecodable, RlpEncodable};

/// One RocksDB column family per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// block hash -> RLP header.
    Headers,
    /// block hash -> RLP [`StoredBody`].
    Bodies,
    /// block hash -> RLP list of EIP-2718 receipts.
    Receipts,
    /// tx hash -> [`TxLocation`] (block number BE u64, index BE u32).
    TxLookup,
    /// block number (BE u64) -> canonical block hash.
    Canonical,
    /// address -> RLP state-trie account (nonce, balance, storage root, code hash).
    Accounts,
    /// address ++ slot (32 bytes BE) -> value (32 bytes BE); zero values are not stored.
    StorageSlots,
    /// code hash -> bytecode.
    Code,
    /// node hash -> RLP trie node (account and storage tries share it).
    TrieNodes,
    /// fixed keys -> values: genesis hash, head, schema version, consensus metadata.
    Meta,
    /// Raft log: entry index (BE u64) -> protobuf `eraftpb.Entry`.
    RaftLog,
    /// Log index by emitter: address (20 bytes) ++ block number (BE u64) -> empty.
    LogAddresses,
    /// Log index by topic (any position): topic (32 bytes) ++ block number (BE u64) -> empty.
    LogTopics,
    /// Raft state: fixed keys ([`raft_keys`]) -> HardState, ConfState, snapshot metadata,
    /// membership directory.
    RaftState,
}

impl Table {
    /// Every table, in creation order.
    pub const ALL: [Table; 14] = [
        Table::Headers,
        Table::Bodies,
        Table::Receipts,
        Table::TxLookup,
        Table::Canonical,
        Table::Accounts,
        Table::StorageSlots,
        Table::Code,
        Table::TrieNodes,
        Table::Meta,
        Table::RaftLog,
        Table::RaftState,
        Table::LogAddresses,
        Table::LogTopics,
    ];

    /// The column family name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Headers => "headers",
            Table::Bodies => "bodies",
            Table::Receipts => "receipts",
            Table::TxLookup => "tx_lookup",
            Table::Canonical => "canonical",
            Table::Accounts => "accounts",
            Table::StorageSlots => "storage",
            Table::Code => "code",
            Table::TrieNodes => "trie_nodes",
            Table::Meta => "meta",
            Table::RaftLog => "raft_log",
            Table::RaftState => "raft_state",
            Table::LogAddresses => "log_addresses",
            Table::LogTopics => "log_topics",
        }
    }
}

/// Keys of the [`Table::Meta`] table.
pub mod meta_keys {
    /// Genesis block hash (32 bytes).
    pub const GENESIS_HASH: &[u8] = b"genesis_hash";
    /// Chain id (u64 BE): the genesis hash does not commit to it.
    pub const CHAIN_ID: &[u8] = b"chain_id";
    /// Hash of the head block (32 bytes).
    pub const HEAD: &[u8] = b"head";
    /// Storage schema version (u32 BE).
    pub const SCHEMA_VERSION: &[u8] = b"schema_version";
    /// Last consensus log index applied (u64 BE), written with the block it produced.
    pub const APPLIED_INDEX: &[u8] = b"applied_index";
}

/// Keys of the [`Table::RaftState`] table (values are owned by the consensus crate).
pub mod raft_keys {
    /// protobuf `eraftpb.HardState` (term, vote, commit).
    pub const HARD_STATE: &[u8] = b"hard_state";
    /// protobuf `eraftpb.ConfState` (voters, learners) as of the applied index.
    pub const CONF_STATE: &[u8] = b"conf_state";
    /// protobuf `eraftpb.SnapshotMetadata` of the log's compaction point (index, term).
    pub const SNAPSHOT_META: &[u8] = b"snapshot_meta";
    /// JSON membership directory (raft id -> PeerId, p2p address, sealing address).
    pub const MEMBERS: &[u8] = b"members";
    /// JSON snapshot payload whose blocks are still being fetched (block sync in progress);
    /// a node restarted in that state finishes the sync before anything else.
    pub const PENDING_SYNC: &[u8] = b"pending_sync";
}

/// Current storage schema version. 2 added the log index ([`Table::LogAddresses`],
/// [`Table::LogTopics`]); a version-1 database gets it built at open.
pub const SCHEMA_VERSION: u32 = 2;

/// A block body as stored: the transactions and their recovered senders (recovered once, at
/// pool admission or block validation, never again on reads), and the withdrawals (EIP-4895) of
/// a chain with Ethereum's rules (a Fogchain block has none; bodies stored before the field
/// existed decode with `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodable, RlpDecodable)]
#[rlp(trailing)]
pub struct StoredBody {
    /// Transactions in block order.
    pub transactions: Vec<TxEnvelope>,
    /// Sender of each transaction.
    pub senders: Vec<Address>,
    /// Withdrawals, from Shanghai on in a block with Ethereum's rules.
    pub withdrawals: Option<alloy_eips::eip4895::Withdrawals>,
}

/// Where a transaction was included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block number.
    pub block_number: u64,
    /// Index within the block.
    pub index: u32,
}

impl TxLocation {
    pub(crate) fn encode(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.block_number.to_be_bytes());
        out[8..].copy_from_slice(&self.index.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 12] = bytes.try_into().ok()?;
        Some(Self {
            block_number: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            index: u32::from_be_bytes(bytes[8..].try_into().ok()?),
        })
    }
}

/// Receipts as stored.
pub type StoredReceipts = Vec<ReceiptEnvelope>;

/// Key of a storage slot: address ++ slot.
pub fn slot_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

/// Hash key helper.
pub(crate) fn b256_from(bytes: &[u8]) -> Option<B256> {
    (bytes.len() == 32).then(|| B256::from_slice(bytes))
}
