//! The wallet-facing JSON-RPC surface of one devnet node: shapes of every method, batches, CORS,
//! historical state reads and geth's revert error.

use alloy_primitives::{Address, Bytes, TxKind, U256};
use fogchain_e2e::{
    tx::{deploy_code, eip1559, key, revert_code, sign, transfer, COUNTER_RUNTIME},
    Devnet,
};
use serde_json::{json, Value};

#[test]
fn wallet_methods_batches_cors_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(0);
    let chain_id = devnet.network.chain_id;
    let sender = key(&devnet.account_key(0));
    let to = Address::repeat_byte(0x55);

    assert_eq!(rpc.quantity("eth_chainId", json!([])), chain_id);
    assert_eq!(rpc.call("net_version", json!([])), chain_id.to_string());
    assert!(rpc.call("web3_clientVersion", json!([])).as_str().unwrap().starts_with("Fogchain/v"));
    assert_eq!(rpc.call("eth_syncing", json!([])), json!(false));
    assert_eq!(rpc.call("eth_accounts", json!([])), json!([]));
    assert_eq!(rpc.quantity("eth_blockNumber", json!([])), 0);
    let genesis = rpc.call("eth_getBlockByNumber", json!(["earliest", false]));
    assert_eq!(genesis["hash"], devnet.network.genesis_hash.to_string());
    assert_eq!(genesis["baseFeePerGas"], "0x3b9aca00");

    // A transfer and a contract deployment.
    let (raw, t1) = sign(&sender, transfer(chain_id, 0, to, 1_000));
    assert_eq!(rpc.call("eth_sendRawTransaction", json!([raw])), json!(t1));
    let r1 = rpc.wait_receipt(&t1);
    let (raw, t2) = sign(
        &sender,
        eip1559(chain_id, 1, TxKind::Create, U256::ZERO, deploy_code(COUNTER_RUNTIME), 200_000),
    );
    rpc.call("eth_sendRawTransaction", json!([raw]));
    let r2 = rpc.wait_receipt(&t2);
    let contract = r2["contractAddress"].as_str().unwrap().to_string();
    assert_eq!(r1["status"], "0x1");
    assert_eq!(r1["gasUsed"], "0x5208");
    assert_eq!(r1["from"], json!(sender.address().to_string().to_lowercase()));
    assert!(r1["effectiveGasPrice"].is_string() && r1["logsBloom"].is_string() && r1["type"] == "0x2");
    assert!(r2["to"].is_null());

    // Transactions and blocks, hashes or full objects.
    let tx = rpc.call("eth_getTransactionByHash", json!([t1]));
    assert_eq!(tx["hash"], json!(t1));
    assert_eq!(tx["blockNumber"], r1["blockNumber"]);
    assert_eq!(tx["from"], r1["from"]);
    let block = rpc.call("eth_getBlockByHash", json!([r1["blockHash"], true]));
    assert_eq!(block["transactions"][0]["hash"], json!(t1));
    assert_eq!(block["miner"], block["miner"].as_str().map(str::to_lowercase).unwrap());
    assert_eq!(block["extraData"].as_str().unwrap().len(), 2 + 65 * 2, "65-byte seal");
    let by_number = rpc.call("eth_getBlockByNumber", json!([r1["blockNumber"], false]));
    assert_eq!(by_number["hash"], block["hash"]);
    assert_eq!(by_number["transactions"], json!([t1]));
    assert!(rpc.call("eth_getBlockByNumber", json!(["0x999", false])).is_null());
    assert!(rpc.call("eth_getTransactionReceipt", json!([format!("0x{}", "ab".repeat(32))])).is_null());

    // State, latest and historical.
    let first_block = r1["blockNumber"].as_str().unwrap().to_string();
    assert_eq!(rpc.call("eth_getBalance", json!([to, "latest"])), "0x3e8");
    assert_eq!(rpc.call("eth_getBalance", json!([to, "0x0"])), "0x0", "state at genesis");
    assert_eq!(
        rpc.call("eth_getCode", json!([contract, "latest"])),
        json!(format!("0x{}", alloy_primitives::hex::encode(COUNTER_RUNTIME)))
    );
    assert_eq!(rpc.call("eth_getCode", json!([contract, first_block])), "0x", "no code before deployment");
    assert_eq!(rpc.quantity("eth_getTransactionCount", json!([sender.address(), "latest"])), 2);
    assert_eq!(
        rpc.quantity("eth_getTransactionCount", json!([sender.address(), {"blockHash": r1["blockHash"]}])),
        1,
        "EIP-1898"
    );
    let (raw, t3) = sign(
        &sender,
        eip1559(chain_id, 2, TxKind::Call(contract.parse().unwrap()), U256::ZERO, Bytes::new(), 100_000),
    );
    rpc.call("eth_sendRawTransaction", json!([raw]));
    rpc.wait_receipt(&t3);
    assert_eq!(
        rpc.call("eth_getStorageAt", json!([contract, "0x0", "latest"])),
        json!(format!("0x{:064x}", 1))
    );

    // Calls and estimates.
    let call = json!({"from": sender.address(), "to": contract});
    assert_eq!(rpc.call("eth_call", json!([call, "latest"])), "0x");
    let estimate = rpc.quantity("eth_estimateGas", json!([call]));
    assert!((26_000..32_000).contains(&estimate), "{estimate}");
    assert_eq!(
        rpc.quantity("eth_estimateGas", json!([{"from": sender.address(), "to": to, "value": "0x1"}])),
        21_000
    );
    // A revert with an Error(string) reason: code 3, geth's message, the revert data.
    let reason = alloy_primitives::hex::decode(
        "08c379a0\
         0000000000000000000000000000000000000000000000000000000000000020\
         0000000000000000000000000000000000000000000000000000000000000004\
         6e6f706500000000000000000000000000000000000000000000000000000000",
    )
    .unwrap();
    let init = revert_code(&reason);
    let err = rpc.try_call("eth_call", json!([{"data": init.clone()}, "latest"])).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (3, "execution reverted: nope"));
    let full: Value = reqwest::blocking::Client::new()
        .post(devnet.rpc_url(0))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"data": init}]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["error"]["data"], json!(format!("0x{}", alloy_primitives::hex::encode(&reason))));

    // Fees.
    let tip = rpc.quantity("eth_maxPriorityFeePerGas", json!([]));
    assert_eq!(tip, 1_000_000_000);
    assert!(rpc.quantity("eth_gasPrice", json!([])) > tip);
    let history = rpc.call("eth_feeHistory", json!(["0x4", "latest", [25.0, 75.0]]));
    assert_eq!(history["baseFeePerGas"].as_array().unwrap().len(), 5);
    assert_eq!(history["gasUsedRatio"].as_array().unwrap().len(), 4);
    assert_eq!(history["reward"].as_array().unwrap().len(), 4);
    assert_eq!(history["oldestBlock"], "0x0");

    // Bad parameters: -32602; unknown method: -32601.
    assert_eq!(rpc.try_call("eth_getBalance", json!(["0x1234"])).unwrap_err().code, -32602);
    assert_eq!(rpc.try_call("eth_nope", json!([])).unwrap_err().code, -32601);

    // A JSON-RPC batch over HTTP.
    let client = reqwest::blocking::Client::new();
    let batch: Value = client
        .post(devnet.rpc_url(0))
        .json(&json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
            {"jsonrpc": "2.0", "id": 3, "method": "eth_nope", "params": []}
        ]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let batch = batch.as_array().unwrap();
    assert_eq!(batch.len(), 3);
    let by_id = |id: u64| batch.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id(1)["result"], json!(format!("0x{chain_id:x}")));
    assert!(by_id(2)["result"].is_string());
    assert_eq!(by_id(3)["error"]["code"], -32601);

    // Malformed JSON: -32700; not a request: -32600 (JSON-RPC 2.0 spec codes, as geth).
    let raw = |body: &'static str| -> Value {
        client
            .post(devnet.rpc_url(0))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(raw("{bad json")["error"]["code"], -32700);
    assert_eq!(raw(r#"{"jsonrpc":"2.0","id":1}"#)["error"]["code"], -32600);
    assert_eq!(raw("[]")["error"]["code"], -32600);

    // CORS for browser dapps: preflight and the header on responses.
    let preflight = client
        .request(reqwest::Method::OPTIONS, devnet.rpc_url(0))
        .header("Origin", "http://dapp.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    devnet.stop();
}
