//! Genesis state-root and hash vectors from public genesis files (Sepolia, Holesky), as
//! published in geth's and reth's chain specs.

use alloy_primitives::b256;
use fogchain_genesis::{ChainSpec, Fork};

/// Loads a public genesis file with the fork schedule of its network (geth's `params`
/// `SepoliaChainConfig` / `HoleskyChainConfig`: every fork through London at block 0, the merge
/// later for Sepolia and at genesis for Holesky, Shanghai after genesis for both).
fn load(name: &str, chain_id: u64, merged_at_genesis: bool) -> ChainSpec {
    let path = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/data")
    .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut config = serde_json::json!({
        "chainId": chain_id, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
        "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0,
        "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0, "shanghaiTime": 1_900_000_000u64
    });
    if merged_at_genesis {
        config["terminalTotalDifficulty"] = serde_json::json!(0);
    }
    value["config"] = config;
    ChainSpec::from_json(&value.to_string()).unwrap()
}

#[test]
fn sepolia_state_root_and_hash_match_geth() {
    let spec = load("sepolia.json", 11155111, false);
    assert_eq!(
        spec.genesis_header.state_root,
        b256!("0x5eb6e371a698b8d68f665192350ffcecbbbf322916f4b51bd79bb6887da3f494")
    );
    // London-shaped header (base fee 1 gwei): the hash geth reports for Sepolia's genesis.
    assert_eq!(spec.fork_at(0, 0), Fork::London);
    assert_eq!(spec.genesis_header.base_fee_per_gas, Some(1_000_000_000));
    assert_eq!(
        spec.genesis_hash,
        b256!("0x25a5cc106eea7138acab33231d7160d69cb777ee0c2c553fcddf5138993e6dd9")
    );
}

#[test]
fn holesky_state_root_with_code_and_storage_matches_geth() {
    let spec = load("holesky.json", 17000, true);
    assert!(spec.alloc.values().any(|a| !a.code.is_empty() && !a.storage.is_empty()));
    assert_eq!(
        spec.genesis_header.state_root,
        b256!("0x69d8c9d72f6fa4ad42d4702b433707212f90db395eb54dc20bc85de253788783")
    );
    assert_eq!(spec.fork_at(0, spec.genesis.timestamp), Fork::Paris);
    assert_eq!(
        spec.genesis_hash,
        b256!("0xb5f7f912443c940f21fd611f12828d75b534364ed9e95ca4e307729a4661bde4")
    );
}

#[test]
fn fogchain_section_round_trips_and_rejects_unknown_fields() {
    let g = alloy_genesis::Genesis {
        config: fogchain_genesis::prague_chain_config(1337),
        gas_limit: 30_000_000,
        ..Default::default()
    };
    let spec = ChainSpec::new(g, Default::default()).unwrap();
    assert_eq!(spec.fork_at(0, 0), Fork::Prague);
    assert_eq!(spec.genesis_header.base_fee_per_gas, Some(1_000_000_000));
    assert!(spec.genesis_header.requests_hash.is_some());
    let again = ChainSpec::from_json(&spec.to_json().unwrap()).unwrap();
    assert_eq!(again.genesis_hash, spec.genesis_hash);

    let mut v: serde_json::Value = serde_json::from_str(&spec.to_json().unwrap()).unwrap();
    v["fogchain"]["bogus"] = serde_json::json!(1);
    let err = ChainSpec::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(err.contains("bogus"), "{err}");
    v["fogchain"] = serde_json::json!({"members": [{"raftId": 0, "address": "0x0000000000000000000000000000000000000001"}]});
    assert!(ChainSpec::from_json(&v.to_string()).is_err());
}
