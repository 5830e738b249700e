//! `fogchain genesis new` makes a network whose nodes, started one by one with
//! `fogchain node --config`, form one cluster.

use fogchain_e2e::{
    assert_one_chain, fogchain_bin, free_port,
    tx::{key, sign, transfer},
    wait_converged, NodeProcess,
};
use serde_json::json;

#[test]
fn generated_network_forms_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let p2p = free_port().to_string();
    let status = std::process::Command::new(fogchain_bin())
        .args(["genesis", "new", "--nodes", "3", "--dev", "--rpc-port", "0", "--p2p-port", &p2p, "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    // Never overwrites an existing network.
    let again = std::process::Command::new(fogchain_bin())
        .args(["genesis", "new", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    // A permissioned network names its admins (or is made --open).
    let no_admins = std::process::Command::new(fogchain_bin())
        .args(["genesis", "new", "--nodes", "1", "--out"])
        .arg(dir.path().join("no-admins"))
        .output()
        .unwrap();
    assert!(!no_admins.status.success());
    assert!(
        String::from_utf8_lossy(&no_admins.stderr)
            .contains("a permissioned network needs admins: --admin ADDRESS"),
        "{}",
        String::from_utf8_lossy(&no_admins.stderr)
    );

    let mut nodes: Vec<NodeProcess> = (0..3)
        .map(|i| NodeProcess::start(&out.join(format!("node{i}/config.toml")), &out.join(format!("node{i}"))))
        .collect();
    let rpcs: Vec<_> = nodes.iter_mut().map(|n| n.rpc()).collect();
    // Hardhat's account 0 is funded by --dev.
    let sender = key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
    let chain_id = rpcs[0].quantity("eth_chainId", json!([]));
    let (raw, hash) = sign(&sender, transfer(chain_id, 0, alloy_primitives::Address::repeat_byte(7), 5));
    rpcs[2].call("eth_sendRawTransaction", json!([raw]));
    assert_eq!(rpcs[2].wait_receipt(&hash)["status"], "0x1");
    let refs: Vec<_> = rpcs.iter().collect();
    let head = wait_converged(&refs);
    assert!(head >= 1);
    assert_one_chain(&refs, head);
    let cluster = rpcs[0].call("raft_cluster", json!([]));
    assert_eq!(cluster.as_array().unwrap().len(), 3);
}
