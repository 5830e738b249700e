//! Every method that the Ethereum execution-apis OpenRPC spec describes and Fogchain serves
//! answers on a devnet, and each result validates against the spec's result schema
//! (tests/openrpc/schemas.json, generated from ethereum/execution-apis by build_schemas.py;
//! validated with Python's jsonschema by validate.py).

use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
use alloy_sol_types::SolCall;
use fogchain_contracts::DangerIndex;
use fogchain_e2e::{
    repo_root,
    tx::{deploy_code, eip1559, key, legacy, sign, transfer, COUNTER_RUNTIME},
    Devnet,
};
use serde_json::{json, Value};
use std::process::Command;

#[test]
fn results_validate_against_the_execution_apis_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(1);
    let chain_id = devnet.network.chain_id;
    let sender = key(&devnet.account_key(2));
    let gateway = key(&devnet.account_key(0));
    let danger: Address = devnet.network.contract("DangerIndex").unwrap();

    let log_filter = rpc.call("eth_newFilter", json!([{"fromBlock": "0x0", "address": danger}]));
    let block_filter = rpc.call("eth_newBlockFilter", json!([]));
    let pending_filter = rpc.call("eth_newPendingTransactionFilter", json!([]));
    let mut results: Vec<Value> = Vec::new();
    let mut record = |method: &str, params: Value| -> Value {
        let result = rpc.call(method, params);
        results.push(json!({"method": method, "result": result}));
        result
    };
    record("eth_newFilter", json!([{"address": danger}]));
    record("eth_newBlockFilter", json!([]));
    record("eth_newPendingTransactionFilter", json!([]));

    // One of each transaction type, a contract, and a log.
    let (raw, deploy_hash) = sign(
        &sender,
        eip1559(chain_id, 0, TxKind::Create, U256::ZERO, deploy_code(COUNTER_RUNTIME), 300_000),
    );
    let sent = record("eth_sendRawTransaction", json!([raw]));
    assert_eq!(sent, json!(deploy_hash));
    let (raw, legacy_hash) = sign(&sender, legacy(Some(chain_id), 1, Address::repeat_byte(9), 5));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    let submit = DangerIndex::submitCall {
        region: keccak256("openrpc"),
        p: U256::from(100u64),
        h: [U256::from(4000u64); 5],
        cs: U256::from(2000u64),
    };
    let (raw, log_hash) = sign(
        &gateway,
        eip1559(chain_id, 0, TxKind::Call(danger), U256::ZERO, submit.abi_encode().into(), 300_000),
    );
    rpc.call("eth_sendRawTransaction", json!([raw]));
    let counter = rpc.wait_receipt(&deploy_hash)["contractAddress"].clone();
    rpc.wait_receipt(&legacy_hash);
    let receipt = rpc.wait_receipt(&log_hash);
    let (number, block_hash) = (receipt["blockNumber"].clone(), receipt["blockHash"].clone());
    let index = receipt["transactionIndex"].clone();

    // A queued transaction for txpool_*.
    let (raw, _) = sign(&sender, transfer(chain_id, 9, Address::repeat_byte(9), 1));
    rpc.call("eth_sendRawTransaction", json!([raw]));

    let call = json!({"from": sender.address(), "to": counter, "data": Bytes::new()});
    let danger_call = json!({"to": danger, "data": Bytes::from(DangerIndex::computeCall {
        p: U256::from(100u64), h: [U256::from(4000u64); 5], cs: U256::from(2000u64) }.abi_encode())});
    for (method, params) in [
        ("eth_chainId", json!([])),
        ("eth_blockNumber", json!([])),
        ("eth_syncing", json!([])),
        ("eth_accounts", json!([])),
        ("eth_coinbase", json!([])),
        ("net_version", json!([])),
        ("eth_gasPrice", json!([])),
        ("eth_maxPriorityFeePerGas", json!([])),
        ("eth_feeHistory", json!(["0x4", "latest", [10.0, 50.0]])),
        ("eth_getBalance", json!([sender.address(), "latest"])),
        ("eth_getTransactionCount", json!([sender.address(), "pending"])),
        ("eth_getCode", json!([counter, "latest"])),
        ("eth_getStorageAt", json!([counter, "0x0", "latest"])),
        ("eth_getProof", json!([counter, ["0x0"], "latest"])),
        ("eth_call", json!([danger_call, "latest"])),
        ("eth_estimateGas", json!([call])),
        ("eth_createAccessList", json!([call, "latest"])),
        ("eth_getBlockByNumber", json!([number, false])),
        ("eth_getBlockByNumber", json!([number, true])),
        ("eth_getBlockByNumber", json!(["0xffffff", false])),
        ("eth_getBlockByHash", json!([block_hash, true])),
        ("eth_getBlockTransactionCountByHash", json!([block_hash])),
        ("eth_getBlockTransactionCountByNumber", json!([number])),
        ("eth_getBlockReceipts", json!([number])),
        ("eth_getTransactionByHash", json!([log_hash])),
        ("eth_getTransactionByHash", json!([legacy_hash])),
        ("eth_getTransactionByHash", json!([deploy_hash])),
        ("eth_getTransactionByBlockHashAndIndex", json!([block_hash, index])),
        ("eth_getTransactionByBlockNumberAndIndex", json!([number, index])),
        ("eth_getTransactionReceipt", json!([log_hash])),
        ("eth_getTransactionReceipt", json!([deploy_hash])),
        ("eth_getTransactionReceipt", json!([legacy_hash])),
        ("eth_getLogs", json!([{"fromBlock": "0x0", "address": danger}])),
        ("eth_getFilterChanges", json!([log_filter])),
        ("eth_getFilterChanges", json!([block_filter])),
        ("eth_getFilterChanges", json!([pending_filter])),
        ("eth_getFilterLogs", json!([log_filter])),
        ("eth_uninstallFilter", json!([block_filter])),
        ("txpool_status", json!([])),
        ("txpool_content", json!([])),
        ("txpool_contentFrom", json!([sender.address()])),
        ("debug_getRawBlock", json!([number])),
        ("debug_getRawHeader", json!([number])),
        ("debug_getRawReceipts", json!([number])),
        ("debug_getRawTransaction", json!([log_hash])),
        ("debug_traceTransaction", json!([log_hash, {"tracer": "callTracer"}])),
    ] {
        record(method, params);
    }
    let path = dir.path().join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    let output = Command::new("python3")
        .arg(repo_root().join("tests/openrpc/validate.py"))
        .arg(&path)
        .output()
        .expect("python3 (scripts/test.sh installs jsonschema)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "results that do not validate:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"ok\": true"), "{stdout}");
    devnet.stop();
}
