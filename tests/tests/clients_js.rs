//! Real third-party clients from npm against a 3-node devnet: ethers v6, viem and web3.js v4
//! (events over WebSocket and filter polling, getLogs with topics, revert reasons, receipts and
//! blocks), and 1,000 newHeads subscribers that must each get every block once, in order.

use fogchain_e2e::{run_client, Devnet};

fn run_js(script: &str, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let network = dir.path().join("network.json");
    let mut argv = vec![network.as_os_str()];
    argv.extend(args.iter().map(std::ffi::OsStr::new));
    run_client("node", &format!("tests/js/{script}"), &argv);
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
