//! eth_getLogs (index-backed, topic positions, OR lists, wildcards, blockHash), filters, and
//! the block/transaction/txpool/debug methods of the full JSON-RPC surface, on a 3-node devnet.

use alloy_primitives::{keccak256, Address, TxKind, B256, U256};
use alloy_sol_types::{SolCall, SolEvent};
use fogchain_contracts::DangerIndex;
use fogchain_e2e::{
    tx::{eip1559, key, sign, transfer},
    Devnet, Rpc,
};
use serde_json::{json, Value};

fn submit(region: B256) -> Vec<u8> {
    let h = [U256::from(5000u64); 5];
    DangerIndex::submitCall { region, p: U256::from(120u64), h, cs: U256::from(300u64) }.abi_encode()
}

fn logs(rpc: &Rpc, filter: Value) -> Vec<Value> {
    rpc.call("eth_getLogs", json!([filter])).as_array().unwrap().clone()
}

#[test]
fn logs_filters_and_the_rest_of_the_surface() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let chain_id = devnet.network.chain_id;
    let rpc = devnet.rpc(1);
    let contract: Address = devnet.network.contract("DangerIndex").unwrap();
    let gateway = key(&devnet.account_key(0));
    let topic0 = DangerIndex::DangerIndexUpdated::SIGNATURE_HASH;
    let (north, south) = (keccak256("north"), keccak256("south"));

    let log_filter = rpc.call("eth_newFilter", json!([{"address": contract, "topics": [topic0]}]));
    let block_filter = rpc.call("eth_newBlockFilter", json!([]));
    let pending_filter = rpc.call("eth_newPendingTransactionFilter", json!([]));

    let regions = [north, south, north, north, south];
    let mut hashes = Vec::new();
    let mut raws = Vec::new();
    for (nonce, region) in regions.iter().enumerate() {
        let tx = eip1559(
            chain_id,
            nonce as u64,
            TxKind::Call(contract),
            U256::ZERO,
            submit(*region).into(),
            300_000,
        );
        let (raw, hash) = sign(&gateway, tx);
        rpc.call("eth_sendRawTransaction", json!([raw]));
        hashes.push(hash);
        raws.push(raw);
    }
    let receipts: Vec<Value> = hashes.iter().map(|h| rpc.wait_receipt(h)).collect();
    let head = rpc.block_number();
    let from = receipts[0]["blockNumber"].as_str().unwrap().to_string();

    // By address, by event, by indexed region, OR lists, wildcards.
    let all = logs(&rpc, json!({"fromBlock": "0x0", "toBlock": "latest", "address": contract}));
    assert_eq!(all.len(), 5);
    for (log, receipt) in all.iter().zip(&receipts) {
        assert_eq!(log, &receipt["logs"][0], "getLogs and the receipt agree");
    }
    let northern = logs(&rpc, json!({"fromBlock": from, "topics": [topic0, north]}));
    assert_eq!(northern.len(), 3);
    let either = logs(&rpc, json!({"fromBlock": from, "topics": [null, [north, south]]}));
    assert_eq!(either.len(), 5);
    let wildcard_then_south = logs(&rpc, json!({"fromBlock": "earliest", "topics": [null, south]}));
    assert_eq!(wildcard_then_south.len(), 2);
    let none = logs(&rpc, json!({"fromBlock": "0x0", "address": Address::repeat_byte(1)}));
    assert!(none.is_empty());
    let two_addresses =
        logs(&rpc, json!({"fromBlock": "0x0", "address": [Address::repeat_byte(1), contract]}));
    assert_eq!(two_addresses.len(), 5);
    let by_hash = logs(&rpc, json!({"blockHash": receipts[2]["blockHash"]}));
    let in_block: Vec<Value> = receipts
        .iter()
        .filter(|r| r["blockHash"] == receipts[2]["blockHash"])
        .map(|r| r["logs"][0].clone())
        .collect();
    assert_eq!(by_hash, in_block);
    let err = rpc.try_call("eth_getLogs", json!([{"fromBlock": "0x5", "toBlock": "0x2"}])).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (-32000, "invalid block range params"));
    // Same answer on another node.
    assert_eq!(logs(&devnet.rpc(2), json!({"fromBlock": "0x0", "address": contract})), all);

    // Filters.
    let changes = rpc.call("eth_getFilterChanges", json!([log_filter]));
    assert_eq!(changes.as_array().unwrap(), &all);
    assert_eq!(rpc.call("eth_getFilterChanges", json!([log_filter])), json!([]));
    // As geth: a filter without fromBlock starts at the latest block.
    let from_genesis = rpc.call("eth_newFilter", json!([{"fromBlock": "0x0", "address": contract}]));
    assert_eq!(rpc.call("eth_getFilterLogs", json!([from_genesis])).as_array().unwrap(), &all);
    assert_eq!(rpc.call("eth_getFilterChanges", json!([from_genesis])).as_array().unwrap(), &all);
    let blocks = rpc.call("eth_getFilterChanges", json!([block_filter]));
    let blocks = blocks.as_array().unwrap();
    assert!(!blocks.is_empty());
    assert_eq!(blocks.last().unwrap(), &rpc.call("eth_getBlockByNumber", json!(["latest", false]))["hash"]);
    let pending = rpc.call("eth_getFilterChanges", json!([pending_filter]));
    for hash in &hashes {
        assert!(pending.as_array().unwrap().contains(&json!(hash)), "{hash} in {pending}");
    }
    assert_eq!(rpc.call("eth_uninstallFilter", json!([log_filter])), true);
    assert_eq!(rpc.call("eth_uninstallFilter", json!([log_filter])), false);
    let err = rpc.try_call("eth_getFilterChanges", json!([log_filter])).unwrap_err();
    assert_eq!(err.message, "filter not found");

    // Blocks and transactions by position.
    let receipt = &receipts[3];
    let number = receipt["blockNumber"].clone();
    let index = receipt["transactionIndex"].clone();
    let count = rpc.call("eth_getBlockTransactionCountByNumber", json!([number]));
    assert_eq!(count, rpc.call("eth_getBlockTransactionCountByHash", json!([receipt["blockHash"]])));
    assert!(count.as_str().unwrap() != "0x0");
    let by_number = rpc.call("eth_getTransactionByBlockNumberAndIndex", json!([number, index]));
    assert_eq!(by_number["hash"], json!(hashes[3]));
    assert_eq!(
        by_number,
        rpc.call("eth_getTransactionByBlockHashAndIndex", json!([receipt["blockHash"], index]))
    );
    assert!(rpc.call("eth_getTransactionByBlockNumberAndIndex", json!([number, "0x99"])).is_null());
    let block_receipts = rpc.call("eth_getBlockReceipts", json!([number]));
    assert!(block_receipts.as_array().unwrap().contains(receipt));
    assert_eq!(rpc.call("eth_getUncleCountByBlockNumber", json!([number])), "0x0");
    assert_eq!(rpc.call("eth_getUncleCountByBlockHash", json!([receipt["blockHash"]])), "0x0");
    assert!(rpc
        .call("eth_getBlockTransactionCountByNumber", json!([format!("0x{:x}", head + 100)]))
        .is_null());

    // Misc.
    assert_eq!(
        rpc.call("web3_sha3", json!(["0x68656c6c6f20776f726c64"])),
        "0x47173285a8d7341e5e972fc677286384f802f8ef42a5ec5f03bbfa254cb01fad"
    );
    assert_eq!(rpc.call("net_listening", json!([])), true);
    assert_eq!(rpc.call("net_peerCount", json!([])), "0x2");
    assert_eq!(rpc.call("eth_hashrate", json!([])), "0x0");
    assert!(rpc.call("eth_protocolVersion", json!([])).is_string());
    let leader = devnet.leader_index(0);
    for i in 0..3 {
        let node = devnet.rpc(i);
        assert_eq!(node.call("eth_mining", json!([])), json!(i == leader));
        assert_eq!(
            node.call("eth_coinbase", json!([])).as_str().unwrap().to_lowercase(),
            devnet.network.nodes[i].address.unwrap().to_string().to_lowercase()
        );
    }

    // Raw encodings.
    assert_eq!(rpc.call("debug_getRawTransaction", json!([hashes[0]])), json!(raws[0]));
    let raw_header = rpc.call("debug_getRawHeader", json!([number]));
    let header_bytes = alloy_primitives::hex::decode(raw_header.as_str().unwrap()).unwrap();
    assert_eq!(json!(keccak256(&header_bytes)), receipt["blockHash"]);
    let raw_block = rpc.call("debug_getRawBlock", json!([number]));
    assert!(raw_block.as_str().unwrap().len() > raw_header.as_str().unwrap().len());
    let raw_receipts = rpc.call("debug_getRawReceipts", json!([number]));
    assert_eq!(raw_receipts.as_array().unwrap().len(), count_of(&count));

    // txpool: a transaction behind a nonce gap is queued.
    let sender = key(&devnet.account_key(5));
    let (raw, gap_hash) = sign(&sender, transfer(chain_id, 1, Address::repeat_byte(3), 1));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    assert_eq!(rpc.call("txpool_status", json!([])), json!({"pending": "0x0", "queued": "0x1"}));
    let content = rpc.call("txpool_content", json!([]));
    let address = sender.address().to_string();
    let queued = &content["queued"][&address]["1"];
    assert_eq!(queued["hash"], json!(gap_hash), "{content}");
    let from = rpc.call("txpool_contentFrom", json!([address]));
    assert_eq!(&from["queued"]["1"], queued);
    let inspect = rpc.call("txpool_inspect", json!([]));
    let line = inspect["queued"][&address]["1"].as_str().unwrap();
    assert!(line.contains("1 wei + 21000 gas ×"), "{line}");
    // Closing the gap makes both pending, then they are mined.
    let (raw, first) = sign(&sender, transfer(chain_id, 0, Address::repeat_byte(3), 1));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    rpc.wait_receipt(&first);
    rpc.wait_receipt(&gap_hash);
    assert_eq!(rpc.call("txpool_status", json!([])), json!({"pending": "0x0", "queued": "0x0"}));
    devnet.stop();
}

fn count_of(quantity: &Value) -> usize {
    usize::from_str_radix(quantity.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}
