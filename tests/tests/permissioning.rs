//! Permissioning on a running 3-node devnet whose account permissioning has two admins and a
//! threshold of 2: every node's pool refuses an unknown account; ethers.js (an admin proposes,
//! the other approves, the account transacts, its deployment is refused); a Hardhat deployment by
//! an account that may not deploy fails with the clear error; and namespaces a node's config
//! switches off are refused as geth refuses them.

use alloy_primitives::Address;
use alloy_signer_local::PrivateKeySigner;
use fogchain_e2e::{
    kill, process_alive, repo_root, run_client,
    tx::{sign, transfer},
    wait_for, Devnet,
};
use serde_json::json;
use std::process::Command;

#[test]
fn accounts_and_namespaces_are_permissioned() {
    let dir = tempfile::tempdir().unwrap();
    let admins: Vec<String> = (0..2).map(|i| dev_address(i).to_string()).collect();
    let devnet = Devnet::start_with(
        dir.path(),
        &["--no-proxy", "--admin", &admins[0], "--admin", &admins[1], "--admin-threshold", "2"],
    );
    let chain_id = devnet.network.chain_id;

    // A funded stranger: every node's pool refuses it, whatever its balance.
    let newcomer = PrivateKeySigner::random();
    let funder = PrivateKeySigner::from_bytes(&parse_key(&devnet.account_key(3))).unwrap();
    let rpc = devnet.rpc(0);
    let (raw, hash) = sign(&funder, transfer(chain_id, 0, newcomer.address(), 10u128.pow(18)));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    rpc.wait_receipt(&hash.to_string());
    let (raw, _) = sign(&newcomer, transfer(chain_id, 0, Address::repeat_byte(9), 1));
    for i in 0..devnet.node_count() {
        let err = devnet.rpc(i).try_call("eth_sendRawTransaction", json!([raw])).expect_err("admitted");
        assert_eq!(
            (err.code, err.message.as_str()),
            (-32000, "account not permitted to transact"),
            "node {i}"
        );
    }

    // ethers.js: the M-of-N approval that lets the newcomer transact (but not deploy).
    let key = format!("0x{}", alloy_primitives::hex::encode(newcomer.to_bytes()));
    let network = dir.path().join("network.json");
    run_client("node", "tests/js/permissioning.mjs", &[network.as_os_str(), std::ffi::OsStr::new(&key)]);

    // Hardhat, with the newcomer's key: the deployment fails with the clear error.
    let project = repo_root().join("tests/hardhat");
    let output = Command::new(project.join("node_modules/.bin/hardhat"))
        .args(["test", "--network", "fogchain", "test/permissioning.test.cjs"])
        .current_dir(&project)
        .env("FOGCHAIN_RPC", devnet.rpc_url(1))
        .env("FOGCHAIN_CHAIN_ID", chain_id.to_string())
        .env("FOGCHAIN_KEYS", &key)
        .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
        .env("CI", "true")
        .output()
        .expect("run hardhat (npm ci --prefix tests/hardhat)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "hardhat failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 passing"), "{stdout}");

    // Node 2 restarted serving only eth and net to all, and txpool as its admin namespace (on
    // loopback: to all).
    let pid = devnet.node_pid(2);
    kill(pid, libc::SIGKILL);
    wait_for("node 2 to exit", || (!process_alive(pid)).then_some(()));
    let config_path = devnet.node_config(2);
    let mut config: toml::Table = std::fs::read_to_string(&config_path).unwrap().parse().unwrap();
    let rpc_section = config.get_mut("rpc").and_then(|v| v.as_table_mut()).unwrap();
    rpc_section.insert("api".into(), toml::Value::Array(vec!["eth".into(), "net".into()]));
    rpc_section.insert("admin-api".into(), toml::Value::Array(vec!["txpool".into()]));
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut node = devnet.restart_node(2);
    let rpc = node.rpc();
    for method in ["web3_clientVersion", "debug_getRawHeader", "raft_cluster", "admin_peers", "no_suchMethod"]
    {
        let err = rpc.try_call(method, json!([])).expect_err(method);
        assert_eq!(err.code, -32601, "{method}");
        assert_eq!(err.message, format!("the method {method} does not exist/is not available"));
    }
    rpc.call("eth_blockNumber", json!([]));
    rpc.call("txpool_status", json!([]));
    assert_eq!(
        rpc.call("rpc_modules", json!([])),
        json!({"eth": "1.0", "net": "1.0", "rpc": "1.0", "txpool": "1.0"})
    );
    // In a batch, the refused call is refused alone.
    let answers = rpc.batch(&[("eth_chainId", json!([])), ("debug_getRawHeader", json!(["latest"]))]);
    assert!(answers[0].is_ok());
    assert_eq!(answers[1].as_ref().unwrap_err().code, -32601);
    drop(node);
    devnet.stop();
}

fn parse_key(hex: &str) -> alloy_primitives::B256 {
    hex.parse().unwrap()
}

/// Address of test-mnemonic account `i`.
fn dev_address(i: usize) -> Address {
    fogchain_devnet::dev_accounts().unwrap()[i].address()
}
