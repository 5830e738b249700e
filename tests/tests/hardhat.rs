//! A Hardhat 2 project (tests/hardhat, npm) whose network config points at a Fogchain devnet
//! deploys the Sale contract and runs its mocha tests there (`hardhat test --network fogchain`).

use fogchain_e2e::{repo_root, Devnet};
use std::process::Command;

#[test]
fn hardhat_mocha_tests_run_against_a_devnet() {
    let project = repo_root().join("tests/hardhat");
    assert!(
        project.join("node_modules/hardhat").exists(),
        "npm packages missing: run `npm ci --prefix tests/hardhat` (scripts/test.sh does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let keys: Vec<String> = (1..=3).map(|i| devnet.account_key(i)).collect();
    let output = Command::new(project.join("node_modules/.bin/hardhat"))
        .args(["test", "--network", "fogchain", "test/sale.test.cjs"])
        .current_dir(&project)
        .env("FOGCHAIN_RPC", devnet.rpc_url(1))
        .env("FOGCHAIN_CHAIN_ID", devnet.network.chain_id.to_string())
        .env("FOGCHAIN_KEYS", keys.join(","))
        .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
        .env("CI", "true")
        .output()
        .expect("run hardhat");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "hardhat test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("4 passing"), "{stdout}");
    devnet.stop();
}
