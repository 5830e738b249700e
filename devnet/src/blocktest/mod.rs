//! `fogchain blocktest`: Ethereum's blockchain reference tests through Fogchain's own block
//! pipeline, with geth's rules for running them (`evm blocktest`).
//!
//! Each test gets a fresh RocksDB store in a temporary directory. Its genesis is built from the
//! fixture's `genesisBlockHeader` and `pre` by the chain-spec code every Fogchain network uses,
//! and must reproduce the fixture's genesis hash. Each block is decoded from its `rlp` and
//! applied by [`Chain::apply_block`] — the same call that applies a committed Raft entry on a
//! node — under Ethereum's [`fogchain_genesis::RuleSet`]. A block listed without `blockHeader` must be refused
//! (and, being refused before the write, leaves no trace); a valid block must be imported with
//! exactly the fixture's hash. At the end the head must be `lastblockhash` and every `postState`
//! account must match (balance, nonce, code, listed storage slots).

mod fixture;

pub use fixture::*;

use alloy_primitives::Address;
use fogchain_genesis::ChainSpec;
use fogchain_node::chain::{Applied, Chain, SealedBlock};
use fogchain_storage::{ChainReader, Storage};
use std::{collections::BTreeMap, path::Path, sync::Arc};

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Pass,
    /// A check failed: why.
    Fail(String),
    /// The test needs rules Fogchain does not implement: why.
    Skip(String),
}

impl Outcome {
    /// `pass`, `fail` or `skip`.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        }
    }

    /// The reason of a failure or skip (empty for a pass).
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Skip(r) => r,
        }
    }
}

/// Errors reading fixtures (a test's own failures are [`Outcome::Fail`]).
#[derive(Debug, thiserror::Error)]
pub enum BlocktestError {
    /// A fixture file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A fixture file is not a map of blockchain tests.
    #[error("{path} is not a blockchain-test fixture: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// The fixture files under `path` (itself when a file; `.json` files of a directory,
/// recursively, in name order).
pub fn fixture_files(path: &Path) -> Result<Vec<std::path::PathBuf>, BlocktestError> {
    let io = |source| BlocktestError::Io { path: path.display().to_string(), source };
    if !path.is_dir() {
        std::fs::metadata(path).map_err(io)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let p = entry.path();
        if p.is_dir() {
            out.extend(fixture_files(&p)?);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(out)
}

/// Reads one fixture file: test name -> test, in the file's order of names.
pub fn read_fixture(path: &Path) -> Result<BTreeMap<String, BlockchainTest>, BlocktestError> {
    let text = std::fs::read(path)
        .map_err(|source| BlocktestError::Io { path: path.display().to_string(), source })?;
    serde_json::from_slice(&text)
        .map_err(|source| BlocktestError::Json { path: path.display().to_string(), source })
}

/// Tests not run — those whose name contains every part listed — with the reason (as geth's and
/// reth's runners list theirs). Each is a limit of the EVM Fogchain embeds, not of a network.
pub const KNOWN_SKIPS: &[(&[&str], &str)] = &[
    (&["eip7610_create_collision", "non-empty-balance"], EIP7610),
    (&["create2collisionStorage"], EIP7610),
    (&["dynamicAccountOverwriteEmpty"], EIP7610),
    (&["RevertInCreateInInitCreate2"], EIP7610),
];

const EIP7610: &str = "EIP-7610: a CREATE onto an account with storage but no code and nonce 0 must \
    collide; revm 43 checks only code and nonce (the storage is not visible to its collision \
    check). Such accounts exist only in tests (reth skips these too)";

/// Runs test `name` on a fresh store under `scratch` (a directory that is removed afterwards).
pub fn run_test(name: &str, test: &BlockchainTest, scratch: &Path) -> Outcome {
    if let Some((_, reason)) = KNOWN_SKIPS.iter().find(|(parts, _)| parts.iter().all(|p| name.contains(p))) {
        return Outcome::Skip((*reason).to_string());
    }
    match run_checked(test, scratch) {
        Ok(()) => Outcome::Pass,
        Err(Refusal::Fail(reason)) => Outcome::Fail(reason),
        Err(Refusal::Skip(reason)) => Outcome::Skip(reason),
    }
}

enum Refusal {
    Fail(String),
    Skip(String),
}

fn fail<T>(reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Fail(reason.into()))
}

fn run_checked(test: &BlockchainTest, scratch: &Path) -> Result<(), Refusal> {
    let genesis = test.genesis().map_err(Refusal::Skip)?;
    let spec = ChainSpec::ethereum(genesis).or_else(|e| fail(format!("genesis: {e}")))?;
    let expected = &test.genesis_block_header;
    if spec.genesis_header.state_root != expected.state_root {
        return fail(format!(
            "genesis state root {} is not the fixture's {}",
            spec.genesis_header.state_root, expected.state_root
        ));
    }
    if spec.genesis_hash != expected.hash {
        return fail(format!("genesis hash {} is not the fixture's {}", spec.genesis_hash, expected.hash));
    }
    let storage = Storage::open(scratch, &spec).or_else(|e| fail(format!("opening the store: {e}")))?;
    let chain = Chain::new(Arc::new(spec), storage).or_else(|e| fail(format!("opening the chain: {e}")))?;
    for (i, block) in test.blocks.iter().enumerate() {
        import(&chain, i, block)?;
    }
    let (_, head) = chain.head();
    if head != test.lastblockhash {
        return fail(format!("head {head} is not lastblockhash {}", test.lastblockhash));
    }
    check_post_state(chain.storage(), test)
}

fn import(chain: &Chain, i: usize, block: &FixtureBlock) -> Result<(), Refusal> {
    let applied = match SealedBlock::decode(&block.rlp) {
        Err(e) => Err(format!("undecodable block: {e}")),
        Ok(b) => {
            let parent = b.header().parent_hash;
            if block.block_header.is_some() && parent != chain.head().1 {
                let known =
                    chain.storage().header(&parent).or_else(|e| fail(format!("reading the chain: {e}")))?;
                if known.is_some() {
                    return Err(Refusal::Skip(format!(
                        "block #{i} is valid on a side chain (parent {parent} is not the head): Fogchain \
                         keeps one final chain and does not reorganise (Raft commits are final)"
                    )));
                }
            }
            chain.apply_block(&b, None, None, |_| None).map_err(|e| e.to_string())
        }
    };
    match (&block.block_header, applied) {
        (Some(expected), Ok(Applied::Head { hash, .. })) => {
            if hash != expected.hash {
                return fail(format!("block #{i} imported as {hash}, fixture has {}", expected.hash));
            }
            Ok(())
        }
        (Some(_), Ok(Applied::Stale(_))) => fail(format!("block #{i} did not extend the head")),
        (Some(_), Err(reason)) => fail(format!("block #{i} refused: {reason}")),
        (None, Ok(_)) => fail(format!(
            "block #{i} imported, but it is invalid ({})",
            block.expect_exception.as_deref().unwrap_or("no reason given")
        )),
        (None, Err(_)) => Ok(()),
    }
}

fn check_post_state(storage: &Storage, test: &BlockchainTest) -> Result<(), Refusal> {
    let read = |e: fogchain_storage::StorageError| Refusal::Fail(format!("reading state: {e}"));
    if let Some(root) = test.post_state_hash {
        let (_, head) = storage.head().map_err(read)?;
        if head.state_root != root {
            return fail(format!("state root {} is not postStateHash {root}", head.state_root));
        }
    }
    let Some(post) = &test.post_state else { return Ok(()) };
    for (address, want) in post {
        let got = storage.account(address).map_err(read)?;
        let Some(got) = got else { return fail(format!("account {address} is missing")) };
        let field = |name: &str, got: String, want: String| -> Result<(), Refusal> {
            if got == want {
                Ok(())
            } else {
                fail(format!("account {address}: {name} is {got}, want {want}"))
            }
        };
        field("balance", got.balance.to_string(), want.balance.to_string())?;
        field("nonce", got.nonce.to_string(), want.nonce.to::<u64>().to_string())?;
        let code = storage.code(&got.code_hash).map_err(read)?.unwrap_or_default();
        if code != want.code {
            return fail(format!(
                "account {address}: code differs ({} bytes, want {})",
                code.len(),
                want.code.len()
            ));
        }
        check_storage(storage, address, &want.storage)?;
    }
    Ok(())
}

fn check_storage(
    storage: &Storage,
    address: &Address,
    want: &BTreeMap<alloy_primitives::U256, alloy_primitives::U256>,
) -> Result<(), Refusal> {
    for (slot, value) in want {
        let got = storage.storage(address, slot).or_else(|e| fail(format!("reading state: {e}")))?;
        if got != *value {
            return fail(format!("account {address}: slot {slot:#x} is {got:#x}, want {value:#x}"));
        }
    }
    Ok(())
}
