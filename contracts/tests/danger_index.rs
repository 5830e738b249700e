//! DangerIndex against tests/fixtures/data/danger-index-vectors.json (every case exact) and its
//! gateway-only submit flow, executed with revm over real RocksDB state.

mod common;

use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_sol_types::{SolCall, SolError, SolEvent};
use common::Chain;
use fogchain_contracts::{risk, DangerIndex};
use fogchain_evm::CallOutcome;

const PREDEPLOYED: Address = Address::repeat_byte(0xd1);

fn vectors() -> serde_json::Value {
    common::shared_data("danger-index-vectors.json")
}

fn h5(case: &serde_json::Value) -> [U256; 5] {
    let h: Vec<U256> =
        case["h"].as_array().unwrap().iter().map(|v| U256::from(v.as_u64().unwrap())).collect();
    h.try_into().unwrap()
}

/// `compute(p, h, cs)` for one vector case.
fn compute_call(case: &serde_json::Value) -> DangerIndex::computeCall {
    DangerIndex::computeCall {
        p: U256::from(case["p"].as_u64().unwrap()),
        h: h5(case),
        cs: U256::from(case["cs"].as_u64().unwrap()),
    }
}

#[test]
fn compute_matches_every_vector_exactly() {
    let chain = Chain::new(&[(PREDEPLOYED, Bytes::from(DangerIndex::DEPLOYED_BYTECODE.to_vec()))]);
    let vectors = vectors();
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 200);
    for case in cases {
        let input = compute_call(case);
        let CallOutcome::Success { output, .. } = chain.call(PREDEPLOYED, input.abi_encode()) else {
            panic!("compute reverted for {case}");
        };
        let out = DangerIndex::computeCall::abi_decode_returns(&output).unwrap();
        assert_eq!(out.diX100, U256::from(case["di_x100"].as_u64().unwrap()), "{case}");
        assert_eq!(out.ehX100, U256::from(case["eh_x100"].as_u64().unwrap()), "{case}");
        assert_eq!(risk::name(out.risk), case["risk"].as_str().unwrap(), "{case}");
    }
    for case in vectors["invalid"].as_array().unwrap() {
        let input = compute_call(case);
        let CallOutcome::Revert { output, .. } = chain.call(PREDEPLOYED, input.abi_encode()) else {
            panic!("{case} must revert");
        };
        let reason = alloy_sol_types::Revert::abi_decode(&output).unwrap().reason;
        let expected = case["expect"].as_str().unwrap().trim_start_matches("revert: ");
        assert_eq!(reason, expected);
    }
    // Out-of-range inputs revert with a reason too.
    let bad = DangerIndex::computeCall { p: U256::from(10_001), h: [U256::ZERO; 5], cs: U256::from(1) };
    let CallOutcome::Revert { output, .. } = chain.call(PREDEPLOYED, bad.abi_encode()) else { panic!() };
    assert_eq!(alloy_sol_types::Revert::abi_decode(&output).unwrap().reason, "precipitation out of range");
}

#[test]
fn submit_is_gateway_only_and_records_the_latest_reading() {
    let mut chain = Chain::new(&[]);
    let (ok, _, gas) = chain.send(0, TxKind::Create, DangerIndex::BYTECODE.to_vec());
    assert!(ok);
    println!("gas: deploy {gas}");
    let contract = chain.keys[0].address().create(0);
    let region = B256::repeat_byte(0x0f);
    let submit = DangerIndex::submitCall {
        region,
        p: U256::from(1000),
        h: [U256::from(5000); 5],
        cs: U256::from(10000),
    };
    // Not a gateway yet.
    let (ok, _, _) = chain.send(1, TxKind::Call(contract), submit.abi_encode());
    assert!(!ok, "non-gateway submit must revert");
    let (ok, _, _) = chain.send(
        1,
        TxKind::Call(contract),
        DangerIndex::addGatewayCall { gateway: chain.keys[1].address() }.abi_encode(),
    );
    assert!(!ok, "only the admin adds gateways");
    let (ok, _, _) = chain.send(
        0,
        TxKind::Call(contract),
        DangerIndex::addGatewayCall { gateway: chain.keys[1].address() }.abi_encode(),
    );
    assert!(ok);
    let (ok, logs, gas) = chain.send(1, TxKind::Call(contract), submit.abi_encode());
    assert!(ok);
    println!("gas: submit (first for a region) {gas}");
    let event = DangerIndex::DangerIndexUpdated::decode_log_data(&logs[0].data).unwrap();
    assert_eq!(
        (event.region, event.diX100, event.ehX100, event.risk),
        (region, U256::from(3725), U256::from(4159), risk::LOW)
    );
    assert_eq!(event.reporter, chain.keys[1].address());

    let CallOutcome::Success { output, .. } =
        chain.call(contract, DangerIndex::latestCall { region }.abi_encode())
    else {
        panic!()
    };
    let latest = DangerIndex::latestCall::abi_decode_returns(&output).unwrap();
    // Block 5: deploy, rejected submit, rejected addGateway, addGateway, submit.
    assert_eq!((latest.diX100, latest.risk, latest.blockNumber), (U256::from(3725), risk::LOW, 5));

    // The paper's ABI: Set(CS, P, H0..H4) records region 0, Get() reads it.
    let set = DangerIndex::SetCall {
        _CS: U256::from(10000),
        _P: U256::from(1000),
        _H0: U256::from(5000),
        _H1: U256::from(5000),
        _H2: U256::from(5000),
        _H3: U256::from(5000),
        _H4: U256::from(5000),
    };
    let (ok, _, gas) = chain.send(1, TxKind::Call(contract), set.abi_encode());
    assert!(ok);
    println!("gas: Set (first for region 0) {gas}");
    let (ok, _, gas) = chain.send(1, TxKind::Call(contract), submit.abi_encode());
    assert!(ok);
    println!("gas: submit (update of a region) {gas}");
    let CallOutcome::Success { output, .. } = chain.call(contract, DangerIndex::GetCall {}.abi_encode())
    else {
        panic!()
    };
    assert_eq!(DangerIndex::GetCall::abi_decode_returns(&output).unwrap(), U256::from(3725));
}
