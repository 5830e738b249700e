//! Real third-party clients from npm against a 3-node devnet: ethers v6, viem and web3.js v4
//! (events over WebSocket and filter polling, getLogs with topics, revert reasons, receipts and
//! blocks), and 1,000 newHeads subscribers that must each get every block once, in order.

use fogchain_e2e::{repo_root, Devnet};
use std::process::Command;

fn run_js(script: &str, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let output = Command::new("node")
        .arg(repo_root().join("tests/js").join(script))
        .arg(dir.path().join("network.json"))
        .args(args)
        .output()
        .expect("run node (scripts/test.sh installs the npm packages)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    println!("{stdout}");
    devnet.stop();
}

#[test]
fn ethers_viem_and_web3js_events_logs_reverts_receipts() {
    run_js("clients.mjs", &[]);
}

#[test]
fn a_thousand_new_heads_subscribers_get_every_block_once_in_order() {
    run_js("subscribers.mjs", &["40"]);
}
