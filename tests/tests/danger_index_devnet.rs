//! Every danger-index vector through `DangerIndex.submit` on a devnet (the predeployed contract,
//! dev account 0 as gateway), and the invalid case as a revert with its reason.

use alloy_primitives::{keccak256, Address, TxKind, U256};
use alloy_sol_types::{SolCall, SolEvent};
use fogchain_contracts::{risk, DangerIndex};
use fogchain_e2e::{
    shared_data,
    tx::{eip1559, key, sign},
    Devnet,
};
use serde_json::{json, Value};

fn submit_call(case: &Value, region: alloy_primitives::B256) -> DangerIndex::submitCall {
    let h: Vec<U256> =
        case["h"].as_array().unwrap().iter().map(|v| U256::from(v.as_u64().unwrap())).collect();
    DangerIndex::submitCall {
        region,
        p: U256::from(case["p"].as_u64().unwrap()),
        h: h.try_into().unwrap(),
        cs: U256::from(case["cs"].as_u64().unwrap()),
    }
}

#[test]
fn every_vector_via_submit_on_a_devnet() {
    let text = std::fs::read_to_string(shared_data().join("danger-index-vectors.json")).unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(0);
    let chain_id = devnet.network.chain_id;
    let contract: Address = devnet.network.contract("DangerIndex").unwrap();
    let gateway = key(&devnet.account_key(0));

    let cases = vectors["cases"].as_array().unwrap();
    let mut hashes = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let input = submit_call(case, keccak256((i as u64).to_be_bytes())).abi_encode();
        let tx = eip1559(chain_id, i as u64, TxKind::Call(contract), U256::ZERO, input.into(), 200_000);
        let (raw, hash) = sign(&gateway, tx);
        rpc.call("eth_sendRawTransaction", json!([raw]));
        hashes.push(hash);
    }
    for (case, hash) in cases.iter().zip(&hashes) {
        let receipt = rpc.wait_receipt(hash);
        assert_eq!(receipt["status"], "0x1", "{case}");
        let log = &receipt["logs"][0];
        let topics: Vec<alloy_primitives::B256> =
            log["topics"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().parse().unwrap()).collect();
        let data = alloy_primitives::hex::decode(log["data"].as_str().unwrap()).unwrap();
        let event = DangerIndex::DangerIndexUpdated::decode_raw_log(topics, &data).unwrap();
        assert_eq!(event.diX100, U256::from(case["di_x100"].as_u64().unwrap()), "{case}");
        assert_eq!(event.ehX100, U256::from(case["eh_x100"].as_u64().unwrap()), "{case}");
        assert_eq!(risk::name(event.risk), case["risk"].as_str().unwrap(), "{case}");
        assert_eq!(event.reporter, gateway.address());
    }

    // The invalid case: eth_call answers geth's revert error with the contract's reason.
    let invalid = &vectors["invalid"][0];
    let input = submit_call(invalid, Default::default()).abi_encode();
    let call =
        json!({"from": gateway.address(), "to": contract, "data": alloy_primitives::Bytes::from(input)});
    let err = rpc.try_call("eth_call", json!([call, "latest"])).unwrap_err();
    assert_eq!(err.code, 3);
    assert_eq!(
        err.message,
        format!("execution reverted: {}", invalid["expect"].as_str().unwrap().trim_start_matches("revert: "))
    );
    devnet.stop();
}
