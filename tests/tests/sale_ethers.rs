//! The sales-order scenario driven by a real client: ethers.js v6 (npm) against a fresh devnet,
//! with the committed Sale and SaleFactory artifacts (direct deploy and through the factory).

use fogchain_e2e::{repo_root, run_client, shared_data, Devnet};

#[test]
fn ethers_sale_scenario_on_a_fresh_devnet() {
    let js = repo_root().join("tests/js");
    assert!(
        js.join("node_modules/ethers").exists(),
        "npm packages missing: run `npm ci --prefix tests/js` (scripts/test.sh does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let (network, scenario) = (dir.path().join("network.json"), shared_data().join("sale-scenario.json"));
    run_client("node", "tests/js/sale-scenario.mjs", &[network.as_os_str(), scenario.as_os_str()]);
    devnet.stop();
}
