//! debug_traceTransaction / debug_traceCall with geth's tracers, and eth_createAccessList, on a
//! contract that calls another contract.

use alloy_primitives::{Address, Bytes, TxKind, U256};
use fogchain_e2e::{
    tx::{deploy_code, eip1559, key, sign, COUNTER_RUNTIME},
    Devnet,
};
use serde_json::json;

/// Runtime that CALLs `target` with no data and all gas, then stops.
fn proxy_runtime(target: Address) -> Vec<u8> {
    let mut code = vec![0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x73];
    code.extend_from_slice(target.as_slice());
    code.extend_from_slice(&[0x5a, 0xf1, 0x50, 0x00]); // GAS CALL POP STOP
    code
}

#[test]
fn geth_tracers_access_lists_and_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(1);
    let chain_id = devnet.network.chain_id;
    let sender = key(&devnet.account_key(2));
    let deploy = |nonce: u64, runtime: &[u8]| {
        let (raw, hash) = sign(
            &sender,
            eip1559(chain_id, nonce, TxKind::Create, U256::ZERO, deploy_code(runtime), 300_000),
        );
        rpc.call("eth_sendRawTransaction", json!([raw]));
        rpc.wait_receipt(&hash)["contractAddress"].as_str().unwrap().parse::<Address>().unwrap()
    };
    let counter = deploy(0, COUNTER_RUNTIME);
    let proxy = deploy(1, &proxy_runtime(counter));
    let (raw, hash) =
        sign(&sender, eip1559(chain_id, 2, TxKind::Call(proxy), U256::ZERO, Bytes::new(), 200_000));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    assert_eq!(rpc.wait_receipt(&hash)["status"], "0x1");
    let lower = |a: Address| a.to_string().to_lowercase();

    // callTracer: the proxy's frame holds the counter's.
    let trace = rpc.call("debug_traceTransaction", json!([hash, {"tracer": "callTracer"}]));
    assert_eq!(trace["type"], "CALL");
    assert_eq!(trace["from"].as_str().unwrap(), lower(sender.address()));
    assert_eq!(trace["to"].as_str().unwrap(), lower(proxy));
    let inner = &trace["calls"][0];
    assert_eq!(inner["type"], "CALL", "{trace}");
    assert_eq!(inner["from"].as_str().unwrap(), lower(proxy));
    assert_eq!(inner["to"].as_str().unwrap(), lower(counter));
    assert!(inner["calls"].is_null() || inner["calls"].as_array().unwrap().is_empty());
    // withLog: the counter's LOG1 shows in its frame.
    let with_logs = rpc.call(
        "debug_traceTransaction",
        json!([hash, {"tracer": "callTracer", "tracerConfig": {"withLog": true}}]),
    );
    assert_eq!(with_logs["calls"][0]["logs"].as_array().unwrap().len(), 1);

    // Struct logger (default): opcodes with depth, gas and storage.
    let steps = rpc.call("debug_traceTransaction", json!([hash]));
    assert_eq!(steps["failed"], false);
    let logs = steps["structLogs"].as_array().unwrap();
    assert!(logs.iter().any(|l| l["op"] == "CALL" && l["depth"] == 1));
    assert!(logs.iter().any(|l| l["op"] == "SSTORE" && l["depth"] == 2));
    let disabled =
        rpc.call("debug_traceTransaction", json!([hash, {"disableStorage": true, "disableStack": true}]));
    assert!(disabled["structLogs"][0].get("stack").is_none());

    // prestateTracer: the counter's slot 0 before the call (1, from no earlier call: 0 -> set by
    // this call, so absent or zero), and the accounts involved.
    let pre = rpc.call("debug_traceTransaction", json!([hash, {"tracer": "prestateTracer"}]));
    for a in [sender.address(), proxy, counter] {
        assert!(pre.get(lower(a)).is_some(), "{a} missing from {pre}");
    }
    assert!(pre[lower(counter)]["code"].as_str().unwrap().len() > 2);
    let diff = rpc.call(
        "debug_traceTransaction",
        json!([hash, {"tracer": "prestateTracer", "tracerConfig": {"diffMode": true}}]),
    );
    let slot0 = format!("0x{:064x}", 0);
    assert_eq!(diff["post"][lower(counter)]["storage"][&slot0], format!("0x{:064x}", 1), "{diff}");

    // debug_traceCall: the same nesting for a call that is not sent (counter now at 1 -> 2).
    let call = json!({"from": sender.address(), "to": proxy, "gas": "0x30000"});
    let traced = rpc.call("debug_traceCall", json!([call, "latest", {"tracer": "callTracer"}]));
    assert_eq!(traced["calls"][0]["to"].as_str().unwrap(), lower(counter));

    // eth_createAccessList: the counter and its slot; sender and proxy excluded.
    let list = rpc.call("eth_createAccessList", json!([call]));
    let entries = list["accessList"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["address"].as_str().unwrap(), lower(counter));
    assert_eq!(entries[0]["storageKeys"], json!([slot0]));
    assert!(
        u64::from_str_radix(list["gasUsed"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap() > 21_000
    );

    // eth_getProof: the account and its slots verify against the block's state root.
    let block = rpc.call("eth_getBlockByNumber", json!(["latest", false]));
    let state_root: alloy_primitives::B256 = block["stateRoot"].as_str().unwrap().parse().unwrap();
    let proof = rpc.call("eth_getProof", json!([counter, ["0x0", "0x1"], block["number"]]));
    let nodes = |v: &serde_json::Value| -> Vec<Bytes> {
        v.as_array().unwrap().iter().map(|n| n.as_str().unwrap().parse().unwrap()).collect()
    };
    let quantity = |v: &serde_json::Value| {
        U256::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    let account = alloy_trie::TrieAccount {
        nonce: quantity(&proof["nonce"]).to::<u64>(),
        balance: quantity(&proof["balance"]),
        storage_root: proof["storageHash"].as_str().unwrap().parse().unwrap(),
        code_hash: proof["codeHash"].as_str().unwrap().parse().unwrap(),
    };
    assert_eq!(account.code_hash, alloy_primitives::keccak256(COUNTER_RUNTIME));
    alloy_trie::proof::verify_proof(
        state_root,
        alloy_trie::Nibbles::unpack(alloy_primitives::keccak256(counter)),
        Some(alloy_rlp::encode(account)),
        &nodes(&proof["accountProof"]),
    )
    .expect("account proof");
    let slot0 = &proof["storageProof"][0];
    assert_eq!(quantity(&slot0["value"]), U256::from(1));
    alloy_trie::proof::verify_proof(
        account.storage_root,
        alloy_trie::Nibbles::unpack(alloy_primitives::keccak256(alloy_primitives::B256::ZERO)),
        Some(alloy_rlp::encode(U256::from(1))),
        &nodes(&slot0["proof"]),
    )
    .expect("storage proof of slot 0");
    let slot1 = &proof["storageProof"][1];
    assert_eq!(quantity(&slot1["value"]), U256::ZERO);
    alloy_trie::proof::verify_proof(
        account.storage_root,
        alloy_trie::Nibbles::unpack(alloy_primitives::keccak256(alloy_primitives::B256::with_last_byte(1))),
        None,
        &nodes(&slot1["proof"]),
    )
    .expect("absence proof of slot 1");
    // An account that does not exist: an absence proof.
    let nobody = Address::repeat_byte(0x77);
    let absent = rpc.call("eth_getProof", json!([nobody, [], "latest"]));
    assert_eq!(absent["balance"], "0x0");
    alloy_trie::proof::verify_proof(
        state_root,
        alloy_trie::Nibbles::unpack(alloy_primitives::keccak256(nobody)),
        None,
        &nodes(&absent["accountProof"]),
    )
    .expect("absence proof of an account");

    // Errors.
    let err = rpc.try_call("debug_traceTransaction", json!([format!("0x{:064x}", 7)])).unwrap_err();
    assert!(err.message.contains("not found"), "{}", err.message);
    let err = rpc.try_call("debug_traceTransaction", json!([hash, {"tracer": "4byteTracer"}])).unwrap_err();
    assert_eq!(err.code, -32602, "{}", err.message);
    devnet.stop();
}
