//! Foundry 1.7 from npm (tests/foundry: `@foundry-rs/cast`, `forge`, pinned in package-lock.json)
//! against a 3-node devnet: `cast` sends, calls, reads receipts, logs and blocks across nodes and
//! calls the `raft_` / `txpool_` / `admin_` methods with the admin token; `forge script
//! --broadcast` deploys and buys a Sale; `forge test --fork-url` reads the predeployed IoT
//! contracts and that Sale through a node. forge compiles with solcjs through tests/foundry/solc.

use fogchain_e2e::{repo_root, wait_for, Devnet};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn project() -> PathBuf {
    let project = repo_root().join("tests/foundry");
    assert!(
        project.join("node_modules/.bin/forge").exists(),
        "npm packages missing: run `npm ci --prefix tests/foundry` (scripts/test.sh does it)"
    );
    project
}

/// `tool` (cast or forge) run in the project with `args`, its output dirs under `scratch` so the
/// work tree stays clean.
fn foundry(tool: &str, scratch: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let project = project();
    Command::new(project.join("node_modules/.bin").join(tool))
        .args(args)
        .current_dir(&project)
        .env("FOUNDRY_OUT", scratch.join("out"))
        .env("FOUNDRY_CACHE_PATH", scratch.join("cache"))
        .env("FOUNDRY_BROADCAST", scratch.join("broadcast"))
        .env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"))
}

/// As [`foundry`], and the command must succeed; returns its stdout, trimmed.
fn ok(tool: &str, scratch: &Path, args: &[&str], env: &[(&str, String)]) -> String {
    let out = foundry(tool, scratch, args, env);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn cast_and_forge_against_a_devnet() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("foundry");
    let devnet = Devnet::start(&dir.path().join("devnet"));
    let (node0, node1, node2) = (devnet.rpc_url(0), devnet.rpc_url(1), devnet.rpc_url(2));
    let factory = devnet.contract("SaleFactory");
    let cast = |args: &[&str]| ok("cast", &scratch, args, &[]);

    // cast: chain id, a transaction sent to one node and read back from the others.
    assert_eq!(cast(&["chain-id", "--rpc-url", &node1]), devnet.network.chain_id.to_string());
    let seller = devnet.network.accounts[3].address.to_string();
    let sent = json_of(&cast(&[
        "send",
        "--rpc-url",
        &node0,
        "--private-key",
        &devnet.account_key(3),
        &factory,
        "createSale(string,string,uint16,uint256,string)",
        "Acme",
        "Drill",
        "2022",
        "1000000000000000000",
        "SN-CAST-1",
        "--json",
    ]));
    assert_eq!(sent["status"], "0x1", "{sent}");
    let hash = sent["transactionHash"].as_str().unwrap().to_string();
    let block = sent["blockNumber"].as_str().unwrap().to_string();
    let number = u64::from_str_radix(block.trim_start_matches("0x"), 16).unwrap();
    for i in 0..devnet.node_count() {
        let rpc = devnet.rpc(i);
        wait_for("every node to apply the block", || (rpc.block_number() >= number).then_some(()));
    }
    let receipt = json_of(&cast(&["receipt", "--rpc-url", &node2, &hash, "--json"]));
    assert_eq!(receipt["blockHash"], sent["blockHash"], "{receipt}");
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(cast(&["call", "--rpc-url", &node2, &factory, "saleCount()(uint256)"]), "1");

    let logs = json_of(&cast(&[
        "logs",
        "--rpc-url",
        &node1,
        "--from-block",
        &block,
        "--to-block",
        &block,
        "--address",
        &factory,
        "SaleCreated(address indexed sale, address indexed seller, string serialNumber)",
        "--json",
    ]));
    let logs = logs.as_array().expect("a log list");
    assert_eq!(logs.len(), 1, "{logs:?}");
    let topics = logs[0]["topics"].as_array().unwrap();
    assert!(topics[2].as_str().unwrap().ends_with(&seller.to_lowercase()[2..]), "{topics:?}");
    let sale = format!("0x{}", &topics[1].as_str().unwrap()[26..]);

    // A revert reason comes back as geth words it (code 3, "execution reverted: ..."); cast 1.7
    // prints the error and exits 0 (as it does against Anvil), so its stderr is what counts.
    let refused = foundry(
        "cast",
        &scratch,
        &["call", "--rpc-url", &node1, &sale, "buy()", "--value", "1ether", "--from", &seller],
        &[],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("execution reverted: seller cannot buy"), "{stderr}");

    // Every node serves the same block.
    let head = json_of(&cast(&["block", &block, "--rpc-url", &node0, "--json"]));
    let other = json_of(&cast(&["block", &block, "--rpc-url", &node2, "--json"]));
    assert_eq!(head["hash"], other["hash"]);

    // cast rpc: Raft and txpool methods, and the admin token as a header.
    let cluster = json_of(&cast(&["rpc", "--rpc-url", &node0, "raft_cluster"]));
    assert_eq!(cluster.as_array().map(Vec::len), Some(3), "{cluster}");
    let leader = cast(&["rpc", "--rpc-url", &node1, "raft_leader"]);
    assert!(cluster.as_array().unwrap().iter().any(|m| json!(m["nodeId"]) == json_of(&leader)), "{leader}");
    let status = json_of(&cast(&["rpc", "--rpc-url", &node2, "txpool_status"]));
    assert!(status["pending"].is_string() && status["queued"].is_string(), "{status}");
    let refused = foundry("cast", &scratch, &["rpc", "--rpc-url", &node0, "admin_nodeInfo"], &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("error code -32001: unauthorized"), "{stderr}");
    let bearer = format!("Authorization: Bearer {}", devnet.network.admin_token);
    let info = json_of(&cast(&["rpc", "--rpc-url", &node0, "--rpc-headers", &bearer, "admin_nodeInfo"]));
    assert_eq!(info["id"].as_str(), devnet.network.nodes[0].peer_id.as_deref(), "{info}");

    // forge script --broadcast: deploy a Sale, list one through the factory, buy the first.
    let script_env = [
        ("SELLER_KEY", devnet.account_key(1)),
        ("BUYER_KEY", devnet.account_key(2)),
        ("FACTORY", factory.clone()),
    ];
    let script = ok(
        "forge",
        &scratch,
        &["script", "script/Sale.s.sol", "--broadcast", "--slow", "--rpc-url", &node1, "--json"],
        &script_env,
    );
    let returns = script.lines().map(json_of).find(|l| l.get("returns").is_some()).expect("returns");
    let deployed = returns["returns"]["sale"]["value"].as_str().expect("sale address").to_string();
    let receipts: Vec<Value> = script.lines().map(json_of).filter(|l| l.get("tx_hash").is_some()).collect();
    assert_eq!(receipts.len(), 3, "{script}");
    assert!(receipts.iter().all(|r| r["status"] == "success"), "{script}");
    let buyer = devnet.network.accounts[2].address.to_string();
    let owns = cast(&["call", "--rpc-url", &node2, &deployed, "verifyOwnership(address)(bool)", &buyer]);
    assert_eq!(owns, "true");

    // forge test --fork-url: the IoT contracts' genesis state and the scripted sale, read from a node.
    let sensor = devnet.device(0);
    assert_eq!(sensor.kind, "sensor");
    let test_env = [
        ("DEVICE_REGISTRY", devnet.contract("DeviceRegistry")),
        ("DANGER_INDEX", devnet.contract("DangerIndex")),
        ("FACTORY", factory),
        ("ADMIN", devnet.network.accounts[0].address.to_string()),
        ("SENSOR_ID", sensor.id.clone()),
        ("SENSOR_KEY", sensor.address.to_string()),
        ("SALE", deployed),
    ];
    let tested = ok("forge", &scratch, &["test", "--fork-url", &node2, "-vv"], &test_env);
    assert!(tested.contains("3 passed; 0 failed"), "{tested}");
    devnet.stop();
}
