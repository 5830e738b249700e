//! A node killed with SIGKILL restarts on the same datadir with everything it had applied.

use alloy_primitives::{Address, Bytes, TxKind, U256};
use fogchain_e2e::{
    tx::{deploy_code, eip1559, key, sign, transfer, COUNTER_RUNTIME},
    Devnet, Rpc,
};
use serde_json::{json, Value};

struct Snapshot {
    head: Value,
    balances: Vec<Value>,
    code: Value,
    storage: Value,
    receipts: Vec<Value>,
}

fn snapshot(rpc: &Rpc, accounts: &[String], contract: &str, txs: &[String]) -> Snapshot {
    Snapshot {
        head: rpc.call("eth_getBlockByNumber", json!(["latest", true])),
        balances: accounts.iter().map(|a| rpc.call("eth_getBalance", json!([a, "latest"]))).collect(),
        code: rpc.call("eth_getCode", json!([contract, "latest"])),
        storage: rpc.call("eth_getStorageAt", json!([contract, "0x0", "latest"])),
        receipts: txs.iter().map(|h| rpc.call("eth_getTransactionReceipt", json!([h]))).collect(),
    }
}

#[test]
fn sigkill_and_restart_keeps_head_state_and_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(0);
    let chain_id = devnet.network.chain_id;
    let sender = key(&devnet.account_key(0));
    let receiver = Address::repeat_byte(0x42);

    let mut hashes = Vec::new();
    let (raw, hash) = sign(
        &sender,
        eip1559(chain_id, 0, TxKind::Create, U256::ZERO, deploy_code(COUNTER_RUNTIME), 200_000),
    );
    rpc.call("eth_sendRawTransaction", json!([raw]));
    hashes.push(hash.clone());
    let contract = rpc.wait_receipt(&hash)["contractAddress"].as_str().unwrap().to_string();
    for nonce in 1..=5u64 {
        let tx = if nonce % 2 == 0 {
            transfer(chain_id, nonce, receiver, 1_000_000_000_000_000)
        } else {
            eip1559(
                chain_id,
                nonce,
                TxKind::Call(contract.parse().unwrap()),
                U256::ZERO,
                Bytes::new(),
                100_000,
            )
        };
        let (raw, hash) = sign(&sender, tx);
        rpc.call("eth_sendRawTransaction", json!([raw]));
        hashes.push(hash);
    }
    for h in &hashes {
        assert_eq!(rpc.wait_receipt(h)["status"], "0x1");
    }
    let accounts = vec![sender.address().to_string(), receiver.to_string()];
    let before = snapshot(&rpc, &accounts, &contract, &hashes);
    assert_eq!(before.storage, format!("0x{:064x}", 3));

    devnet.kill_hard();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(0);
    let after = snapshot(&rpc, &accounts, &contract, &hashes);
    assert_eq!(after.head, before.head, "head block");
    assert_eq!(after.balances, before.balances);
    assert_eq!(after.code, before.code);
    assert_eq!(after.storage, before.storage);
    assert_eq!(after.receipts, before.receipts);

    // The chain goes on from the same head.
    let (raw, hash) = sign(&sender, transfer(chain_id, 6, receiver, 1));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    let receipt = rpc.wait_receipt(&hash);
    let block = rpc.call("eth_getBlockByHash", json!([receipt["blockHash"], false]));
    assert_eq!(block["parentHash"], before.head["hash"]);
    devnet.stop();
}
