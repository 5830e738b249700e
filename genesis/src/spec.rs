//! The chain spec: geth genesis + `fogchain` section, fork schedule, genesis header.

use crate::{alloc_state_root, AllocAccount, GenesisError, Result};
use alloy_consensus::{constants::EMPTY_OMMER_ROOT_HASH, Header};
use alloy_eips::{
    eip1559::INITIAL_BASE_FEE,
    eip7594::MAX_BLOBS_PER_TX_FUSAKA,
    eip7685::EMPTY_REQUESTS_HASH,
    eip7840::{BlobParams, BLOB_BASE_COST},
};
use alloy_genesis::{ChainConfig, Genesis};
use alloy_primitives::{Address, B256, B64, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, path::Path};

/// Ethereum protocol forks in activation order. Fogchain executes with the rules of the latest
/// fork active at a block (by number for the pre-merge forks, by timestamp from Shanghai on),
/// as geth resolves its `config` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fork {
    /// Frontier (genesis rules).
    Frontier,
    /// Homestead.
    Homestead,
    /// Tangerine Whistle (EIP-150).
    Tangerine,
    /// Spurious Dragon (EIP-155, EIP-158).
    SpuriousDragon,
    /// Byzantium.
    Byzantium,
    /// Constantinople.
    Constantinople,
    /// Petersburg.
    Petersburg,
    /// Istanbul.
    Istanbul,
    /// Berlin (EIP-2929, EIP-2930).
    Berlin,
    /// London (EIP-1559).
    London,
    /// Paris (the merge: PREVRANDAO).
    Paris,
    /// Shanghai (PUSH0, withdrawals root in the header).
    Shanghai,
    /// Cancun (transient storage, MCOPY, blob fields in the header).
    Cancun,
    /// Prague (EIP-7702, EIP-7623, requests hash in the header).
    Prague,
    /// Osaka (EIP-7594 blobs per transaction, EIP-7825 gas cap, EIP-7918 blob reserve price,
    /// EIP-7934 block size, CLZ, P256VERIFY).
    Osaka,
    /// Blob-parameter-only fork 1 (EIP-7892): Osaka's rules, new blob parameters.
    Bpo1,
    /// Blob-parameter-only fork 2.
    Bpo2,
    /// Blob-parameter-only fork 3.
    Bpo3,
    /// Blob-parameter-only fork 4.
    Bpo4,
    /// Blob-parameter-only fork 5.
    Bpo5,
}

/// One initial member of the network: a node that may seal blocks and join the Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Raft node id (non-zero, unique).
    pub raft_id: u64,
    /// Block-sealing address, derived from the node's secp256k1 key.
    pub address: Address,
    /// libp2p PeerId derived from the same key (used by the Raft transport).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_id: String,
    /// libp2p listen multiaddr of the node, e.g. `/ip4/10.0.0.1/tcp/30400`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub p2p: String,
}

/// The `fogchain` section of genesis.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FogchainConfig {
    /// When true every block has base fee 0 (GoQuorum-style free gas); when false the base fee
    /// follows EIP-1559 from the genesis `baseFeePerGas` (default 1 gwei).
    #[serde(default)]
    pub zero_base_fee: bool,
    /// Upper bound on transactions per block (besides the block gas limit).
    #[serde(default = "default_max_block_transactions")]
    pub max_block_transactions: usize,
    /// Initial network members. Blocks must be sealed by one of them.
    #[serde(default)]
    pub members: Vec<Member>,
}

fn default_max_block_transactions() -> usize {
    5_000
}

impl Default for FogchainConfig {
    fn default() -> Self {
        Self {
            zero_base_fee: false,
            max_block_transactions: default_max_block_transactions(),
            members: Vec::new(),
        }
    }
}

/// Which block rules a chain follows. The block pipeline (decode, header checks, revm
/// execution, receipts, roots, state write) is one; the rule set decides the parts where a
/// Fogchain network and Ethereum differ (docs/node.md, "Rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleSet {
    /// A Fogchain network: blocks sealed by a member (signature in `extraData`), constant gas
    /// limit, timestamps that never decrease, no beacon chain (no withdrawals, no EIP-4788 root,
    /// no EIP-7685 requests), the EIP-2935 history call when the contract is in genesis, account
    /// permissioning, no blob transactions.
    #[default]
    Fogchain,
    /// Ethereum's post-merge rules as geth validates them: no seal, gas limit moving by less
    /// than 1/1024 a block, strictly increasing timestamps, `extraData` of at most 32 bytes,
    /// the pre-block system calls (EIP-4788, EIP-2935), blob transactions and blob gas
    /// (EIP-4844, EIP-7691), withdrawals (EIP-4895) and requests (EIP-6110, EIP-7002, EIP-7251,
    /// EIP-7685). Used by `fogchain blocktest` on the reference fixtures.
    Ethereum,
}

/// A parsed, validated chain spec with its genesis header.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    /// The block rules of this chain ([`RuleSet::Fogchain`] for every genesis file; Ethereum's
    /// only through [`ChainSpec::ethereum`]).
    pub rules: RuleSet,
    /// The geth part of the genesis file.
    pub genesis: Genesis,
    /// The `fogchain` section.
    pub fogchain: FogchainConfig,
    /// Normalised alloc.
    pub alloc: BTreeMap<Address, AllocAccount>,
    /// The genesis block header.
    pub genesis_header: Header,
    /// keccak-256 of the RLP genesis header.
    pub genesis_hash: B256,
}

impl ChainSpec {
    /// Reads and validates a genesis file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| GenesisError::Io { path: path.display().to_string(), source })?;
        Self::from_json(&text)
    }

    /// Parses a genesis document: geth's format, plus an optional top-level `fogchain` object.
    pub fn from_json(text: &str) -> Result<Self> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        let fogchain = match value.as_object_mut().and_then(|o| o.remove("fogchain")) {
            Some(mut section) => {
                // Written by earlier versions, never used (one block is in flight at a time).
                section.as_object_mut().and_then(|o| o.remove("maxInflightBlocks"));
                serde_json::from_value(section)?
            }
            None => FogchainConfig::default(),
        };
        let genesis: Genesis = serde_json::from_value(value)?;
        Self::new(genesis, fogchain)
    }

    /// Builds the spec from parts, computing the genesis header and hash.
    pub fn new(genesis: Genesis, fogchain: FogchainConfig) -> Result<Self> {
        if genesis.config.chain_id == 0 {
            return Err(GenesisError::Invalid("config.chainId must be set and non-zero".into()));
        }
        if fogchain.max_block_transactions == 0 {
            return Err(GenesisError::Invalid("fogchain.maxBlockTransactions must be at least 1".into()));
        }
        let mut ids = std::collections::HashSet::new();
        for m in &fogchain.members {
            if m.raft_id == 0 || !ids.insert(m.raft_id) {
                return Err(GenesisError::Invalid(format!(
                    "fogchain.members: raftId {} is zero or repeated",
                    m.raft_id
                )));
            }
        }
        let alloc: BTreeMap<_, _> =
            genesis.alloc.iter().map(|(a, acc)| (*a, AllocAccount::from_genesis(acc))).collect();
        let mut spec = Self {
            rules: RuleSet::Fogchain,
            genesis,
            fogchain,
            alloc,
            genesis_header: Header::default(),
            genesis_hash: B256::ZERO,
        };
        spec.genesis_header = spec.build_genesis_header();
        spec.genesis_hash = spec.genesis_header.hash_slow();
        Ok(spec)
    }

    /// A chain with Ethereum's block rules ([`RuleSet::Ethereum`]) for a geth genesis: the
    /// reference tests' chains. Errors as [`ChainSpec::new`].
    pub fn ethereum(genesis: Genesis) -> Result<Self> {
        let mut spec = Self::new(genesis, FogchainConfig::default())?;
        spec.rules = RuleSet::Ethereum;
        Ok(spec)
    }

    /// The blob parameters (EIP-4844 / EIP-7691 / EIP-7840) in force for a block of `fork`: the
    /// genesis `config.blobSchedule` entry of the fork when present, else the fork's defaults
    /// (Cancun: target 3, max 6 blobs; Prague and Osaka: target 6, max 9; BPO1 10/15, BPO2
    /// 14/21). From Osaka a
    /// transaction carries at most 6 blobs (EIP-7594) and the blob base fee has a reserve price
    /// (EIP-7918, `blob_base_cost`). `None` before Cancun.
    pub fn blob_params(&self, fork: Fork) -> Option<BlobParams> {
        let (name, default) = match fork {
            f if f < Fork::Cancun => return None,
            Fork::Cancun => ("cancun", BlobParams::cancun()),
            Fork::Prague => ("prague", BlobParams::prague()),
            Fork::Osaka => ("osaka", BlobParams::osaka()),
            Fork::Bpo1 => ("bpo1", BlobParams::bpo1()),
            Fork::Bpo2 => ("bpo2", BlobParams::bpo2()),
            // BPO3-5 have no defaults: their schedule entry, else the previous fork's.
            Fork::Bpo3 => ("bpo3", self.blob_params(Fork::Bpo2)?),
            Fork::Bpo4 => ("bpo4", self.blob_params(Fork::Bpo3)?),
            _ => ("bpo5", self.blob_params(Fork::Bpo4)?),
        };
        let schedule = &self.genesis.config.blob_schedule;
        let params = schedule.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or(default, |(_, p)| *p);
        Some(if fork >= Fork::Osaka {
            params
                .with_max_blobs_per_tx(params.max_blob_count.min(MAX_BLOBS_PER_TX_FUSAKA))
                .with_blob_base_cost(BLOB_BASE_COST)
        } else {
            params.with_max_blobs_per_tx(params.max_blob_count).with_blob_base_cost(0)
        })
    }

    /// Chain id (EIP-155).
    pub fn chain_id(&self) -> u64 {
        self.genesis.config.chain_id
    }

    /// The geth `config` section.
    pub fn config(&self) -> &ChainConfig {
        &self.genesis.config
    }

    /// The genesis members' sealing addresses, each from block 1 on.
    pub fn sealers(&self) -> crate::Sealers {
        crate::Sealers::from_genesis(&self.fogchain.members)
    }

    /// The latest fork active at a block with this number and timestamp (seconds).
    pub fn fork_at(&self, number: u64, timestamp: u64) -> Fork {
        let c = &self.genesis.config;
        let by_time = |t: Option<u64>| t.is_some_and(|t| t <= timestamp);
        let by_block = |b: Option<u64>| b.is_some_and(|b| b <= number);
        let bpo = [
            (c.bpo5_time, Fork::Bpo5),
            (c.bpo4_time, Fork::Bpo4),
            (c.bpo3_time, Fork::Bpo3),
            (c.bpo2_time, Fork::Bpo2),
            (c.bpo1_time, Fork::Bpo1),
            (c.osaka_time, Fork::Osaka),
        ];
        if let Some((_, fork)) = bpo.into_iter().find(|(t, _)| by_time(*t)) {
            return fork;
        }
        if by_time(c.prague_time) {
            return Fork::Prague;
        }
        if by_time(c.cancun_time) {
            return Fork::Cancun;
        }
        if by_time(c.shanghai_time) {
            return Fork::Shanghai;
        }
        let merged =
            by_block(c.merge_netsplit_block) || c.terminal_total_difficulty.is_some_and(|ttd| ttd.is_zero());
        let blocks = [
            (merged.then_some(0), Fork::Paris),
            (c.london_block, Fork::London),
            (c.berlin_block, Fork::Berlin),
            (c.istanbul_block, Fork::Istanbul),
            (c.petersburg_block, Fork::Petersburg),
            (c.constantinople_block, Fork::Constantinople),
            (c.byzantium_block, Fork::Byzantium),
            (c.eip158_block, Fork::SpuriousDragon),
            (c.eip150_block, Fork::Tangerine),
            (c.homestead_block, Fork::Homestead),
        ];
        blocks.into_iter().find(|(b, _)| by_block(*b)).map_or(Fork::Frontier, |(_, f)| f)
    }

    /// Base fee of the genesis block, if London is active at genesis.
    fn genesis_base_fee(&self) -> Option<u64> {
        let g = &self.genesis;
        (self.fork_at(0, g.timestamp) >= Fork::London).then(|| {
            if self.fogchain.zero_base_fee {
                0
            } else {
                g.base_fee_per_gas.map_or(INITIAL_BASE_FEE, |b| b as u64)
            }
        })
    }

    /// Builds the genesis header as geth's `Genesis.ToBlock` does.
    fn build_genesis_header(&self) -> Header {
        let g = &self.genesis;
        let fork = self.fork_at(0, g.timestamp);
        // geth: GenesisGasLimit (4712388 in old releases, 5000 in core) when unset; and
        // params.GenesisDifficulty when both difficulty and mixHash are unset.
        let gas_limit = if g.gas_limit == 0 { 5_000 } else { g.gas_limit };
        let difficulty = if g.difficulty.is_zero() && g.mix_hash.is_zero() && fork < Fork::Paris {
            U256::from(131_072)
        } else {
            g.difficulty
        };
        let cancun = fork >= Fork::Cancun;
        Header {
            parent_hash: g.parent_hash.unwrap_or_default(),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: g.coinbase,
            state_root: alloc_state_root(&self.alloc),
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            logs_bloom: Default::default(),
            difficulty,
            number: g.number.unwrap_or_default(),
            gas_limit,
            gas_used: 0,
            timestamp: g.timestamp,
            extra_data: g.extra_data.clone(),
            mix_hash: g.mix_hash,
            nonce: B64::from(g.nonce),
            base_fee_per_gas: self.genesis_base_fee(),
            withdrawals_root: (fork >= Fork::Shanghai).then_some(EMPTY_ROOT_HASH),
            blob_gas_used: cancun.then(|| g.blob_gas_used.unwrap_or_default()),
            excess_blob_gas: cancun.then(|| g.excess_blob_gas.unwrap_or_default()),
            parent_beacon_block_root: cancun.then_some(B256::ZERO),
            requests_hash: (fork >= Fork::Prague).then_some(EMPTY_REQUESTS_HASH),
            ..Default::default()
        }
    }

    /// Serialises the spec back to a genesis.json document (geth fields + `fogchain`).
    pub fn to_json(&self) -> Result<String> {
        let mut value = serde_json::to_value(&self.genesis)?;
        if let Some(o) = value.as_object_mut() {
            o.insert("fogchain".into(), serde_json::to_value(&self.fogchain)?);
        }
        Ok(serde_json::to_string_pretty(&value)?)
    }
}

/// A geth `config` section with every fork through Prague active at genesis (block 0 /
/// timestamp 0), as Fogchain networks use by default.
pub fn prague_chain_config(chain_id: u64) -> ChainConfig {
    ChainConfig {
        chain_id,
        homestead_block: Some(0),
        eip150_block: Some(0),
        eip155_block: Some(0),
        eip158_block: Some(0),
        byzantium_block: Some(0),
        constantinople_block: Some(0),
        petersburg_block: Some(0),
        istanbul_block: Some(0),
        muir_glacier_block: Some(0),
        berlin_block: Some(0),
        london_block: Some(0),
        arrow_glacier_block: Some(0),
        gray_glacier_block: Some(0),
        merge_netsplit_block: Some(0),
        terminal_total_difficulty: Some(U256::ZERO),
        terminal_total_difficulty_passed: true,
        shanghai_time: Some(0),
        cancun_time: Some(0),
        prague_time: Some(0),
        ..Default::default()
    }
}
