//! The blockchain-test fixture format (ethereum/tests `BlockchainTests`, execution-spec-tests
//! `blockchain_tests`): a genesis header and pre-state, blocks as RLP, the expected head and
//! post-state. Only the fields the runner uses are read.

use alloy_genesis::{ChainConfig, Genesis, GenesisAccount};
use alloy_primitives::{Address, Bytes, B256, B64, U256, U64};
use fogchain_genesis::prague_chain_config;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One test of a fixture file (the file maps test names to these).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockchainTest {
    /// Fork rules, e.g. `Prague`, `Cancun`, `CancunToPragueAtTime15k`.
    pub network: String,
    /// The genesis header, whose `hash` the runner's genesis must reproduce.
    pub genesis_block_header: FixtureHeader,
    /// Genesis state.
    pub pre: BTreeMap<Address, FixtureAccount>,
    /// Expected state of the listed accounts after the last valid block.
    #[serde(default)]
    pub post_state: Option<BTreeMap<Address, FixtureAccount>>,
    /// Expected state root instead of `postState` (large tests).
    #[serde(default)]
    pub post_state_hash: Option<B256>,
    /// Expected head after all blocks.
    pub lastblockhash: B256,
    /// Chain id and blob schedule (execution-spec-tests); absent in older fixtures.
    #[serde(default)]
    pub config: Option<FixtureConfig>,
    /// The blocks in import order.
    pub blocks: Vec<FixtureBlock>,
}

/// The header fields of `genesisBlockHeader` that genesis is built from (geth's names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct FixtureHeader {
    pub hash: B256,
    pub parent_hash: B256,
    pub coinbase: Address,
    pub state_root: B256,
    pub difficulty: U256,
    pub number: U64,
    pub gas_limit: U64,
    pub gas_used: U64,
    pub timestamp: U64,
    pub extra_data: Bytes,
    pub mix_hash: B256,
    pub nonce: B64,
    #[serde(default)]
    pub base_fee_per_gas: Option<U64>,
    #[serde(default)]
    pub blob_gas_used: Option<U64>,
    #[serde(default)]
    pub excess_blob_gas: Option<U64>,
}

/// An account of `pre` / `postState`.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct FixtureAccount {
    pub balance: U256,
    pub nonce: U64,
    #[serde(default)]
    pub code: Bytes,
    #[serde(default)]
    pub storage: BTreeMap<U256, U256>,
}

/// The fixture's `config` section.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureConfig {
    /// EIP-155 chain id (1 when absent).
    #[serde(default)]
    pub chainid: Option<U64>,
    /// EIP-7840 blob parameters per fork (`Cancun`, `Prague`, ...).
    #[serde(default)]
    pub blob_schedule: BTreeMap<String, FixtureBlobParams>,
}

/// One fork's blob parameters (EIP-7840), as hex quantities.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct FixtureBlobParams {
    pub target: U64,
    pub max: U64,
    pub base_fee_update_fraction: U64,
}

/// One block of a test: its RLP, and `blockHeader` only when the block is valid.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureBlock {
    /// The block as RLP (authoritative; geth imports exactly these bytes).
    pub rlp: Bytes,
    /// Present for a valid block: its header as JSON (the runner compares the hash).
    #[serde(default)]
    pub block_header: Option<HeaderHash>,
    /// Why the block is invalid (informational; `|`-joined alternatives).
    #[serde(default)]
    pub expect_exception: Option<String>,
}

/// The `hash` of a fixture header.
#[derive(Debug, Deserialize)]
pub struct HeaderHash {
    /// keccak-256 of the RLP header.
    pub hash: B256,
}

/// Why a test cannot run under Fogchain (a SKIP reason).
pub type Unsupported = String;

/// The geth `config` for a fixture's `network`: every fork up to the named one active at
/// genesis, or a transition at timestamp 15,000 (`XToYAtTime15k`), Paris through BPO4 (the
/// blob-parameter-only forks of EIP-7892). Proof-of-work networks (before Paris) are refused.
pub fn chain_config(network: &str, chain_id: u64) -> Result<ChainConfig, Unsupported> {
    let mut config = prague_chain_config(chain_id);
    // Times of Shanghai, Cancun, Prague, Osaka and BPO1-4: the first `n` active at genesis, the
    // one at `later` from 15,000, the rest not scheduled.
    let at = |n: usize, later: Option<usize>| -> [Option<u64>; 8] {
        std::array::from_fn(|i| match i {
            i if i < n => Some(0),
            i if Some(i) == later => Some(15_000),
            _ => None,
        })
    };
    let times = match network {
        "Paris" | "Merge" => at(0, None),
        "ParisToShanghaiAtTime15k" | "MergeToShanghaiAtTime15k" => at(0, Some(0)),
        "Shanghai" => at(1, None),
        "ShanghaiToCancunAtTime15k" => at(1, Some(1)),
        "Cancun" => at(2, None),
        "CancunToPragueAtTime15k" => at(2, Some(2)),
        "Prague" => at(3, None),
        "PragueToOsakaAtTime15k" => at(3, Some(3)),
        "Osaka" => at(4, None),
        "OsakaToBPO1AtTime15k" => at(4, Some(4)),
        "BPO1" => at(5, None),
        "BPO1ToBPO2AtTime15k" => at(5, Some(5)),
        "BPO2" => at(6, None),
        "BPO2ToBPO3AtTime15k" => at(6, Some(6)),
        "BPO3" => at(7, None),
        "BPO3ToBPO4AtTime15k" => at(7, Some(7)),
        "BPO4" => at(8, None),
        other if other.contains("To") || POW_FORKS.contains(&other) => {
            return Err(format!("network {other}: proof-of-work rules (ethash seal, ommers, block rewards) are not implemented; Fogchain chains start after the merge"))
        }
        other => return Err(format!("unknown network {other}")),
    };
    [
        config.shanghai_time,
        config.cancun_time,
        config.prague_time,
        config.osaka_time,
        config.bpo1_time,
        config.bpo2_time,
        config.bpo3_time,
        config.bpo4_time,
    ] = times;
    Ok(config)
}

const POW_FORKS: &[&str] = &[
    "Frontier",
    "Homestead",
    "EIP150",
    "EIP158",
    "Byzantium",
    "Constantinople",
    "ConstantinopleFix",
    "Petersburg",
    "Istanbul",
    "MuirGlacier",
    "Berlin",
    "London",
    "ArrowGlacier",
    "GrayGlacier",
];

impl BlockchainTest {
    /// The genesis document of this test: the fixture's genesis header fields, `pre` as the
    /// alloc, the chain config of its network with its chain id and blob schedule.
    pub fn genesis(&self) -> Result<Genesis, Unsupported> {
        let chain_id = self.config.as_ref().and_then(|c| c.chainid).map_or(1, |id| id.to::<u64>());
        let mut config = chain_config(&self.network, chain_id)?;
        if let Some(fixture) = &self.config {
            for (fork, p) in &fixture.blob_schedule {
                let params = alloy_eips::eip7840::BlobParams {
                    target_blob_count: p.target.to(),
                    max_blob_count: p.max.to(),
                    update_fraction: p.base_fee_update_fraction.to(),
                    max_blobs_per_tx: p.max.to(),
                    ..alloy_eips::eip7840::BlobParams::cancun()
                };
                config.blob_schedule.insert(fork.to_ascii_lowercase(), params);
            }
        }
        let h = &self.genesis_block_header;
        let alloc = self
            .pre
            .iter()
            .map(|(address, a)| {
                let storage = a.storage.iter().map(|(k, v)| (B256::from(*k), B256::from(*v))).collect();
                let account = GenesisAccount {
                    balance: a.balance,
                    nonce: Some(a.nonce.to()),
                    code: (!a.code.is_empty()).then(|| a.code.clone()),
                    storage: Some(storage),
                    ..Default::default()
                };
                (*address, account)
            })
            .collect();
        Ok(Genesis {
            config,
            nonce: u64::from_be_bytes(h.nonce.0),
            timestamp: h.timestamp.to(),
            extra_data: h.extra_data.clone(),
            gas_limit: h.gas_limit.to(),
            difficulty: h.difficulty,
            mix_hash: h.mix_hash,
            coinbase: h.coinbase,
            alloc,
            base_fee_per_gas: h.base_fee_per_gas.map(|b| b.to()),
            excess_blob_gas: h.excess_blob_gas.map(|b| b.to()),
            blob_gas_used: h.blob_gas_used.map(|b| b.to()),
            number: Some(h.number.to()),
            parent_hash: Some(h.parent_hash),
            ..Default::default()
        })
    }
}
