//! The sales-order scenario driven by a real client: ethers.js v6 (npm) against a fresh devnet,
//! with the committed Sale and SaleFactory artifacts (direct deploy and through the factory).

use fogchain_e2e::{repo_root, shared_data, Devnet};
use std::process::Command;

#[test]
fn ethers_sale_scenario_on_a_fresh_devnet() {
    let js = repo_root().join("tests/js");
    assert!(
        js.join("node_modules/ethers").exists(),
        "npm packages missing: run `npm ci --prefix tests/js` (scripts/test.sh does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let output = Command::new("node")
        .arg(js.join("sale-scenario.mjs"))
        .arg(dir.path().join("network.json"))
        .arg(shared_data().join("sale-scenario.json"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ethers scenario failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    devnet.stop();
}
