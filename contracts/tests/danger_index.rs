//! DangerIndex against ../shared/data/danger-index-vectors.json (every case exact) and its
//! gateway-only submit flow, executed with revm over real RocksDB state.

use alloy_consensus::{transaction::Recovered, Header, SignableTransaction, TxEip1559, TxEnvelope};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_network::TxSignerSync;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolError, SolEvent};
use fogchain_contracts::{risk, DangerIndex};
use fogchain_evm::{call, execute_block, next_base_fee, CallOutcome, CallParams, Mode};
use fogchain_genesis::{prague_chain_config, ChainSpec};
use fogchain_storage::{BlockWrite, ChainReader, Storage, StoredBody};

const CHAIN_ID: u64 = 1337;
const PREDEPLOYED: Address = Address::repeat_byte(0xd1);

fn vectors() -> serde_json::Value {
    let dir = match std::env::var_os("FOGCHAIN_SHARED_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let text = std::fs::read_to_string(dir.join("data/danger-index-vectors.json")).expect("shared data");
    serde_json::from_str(&text).unwrap()
}

struct Chain {
    _dir: tempfile::TempDir,
    spec: ChainSpec,
    storage: Storage,
    keys: Vec<PrivateKeySigner>,
    nonces: Vec<u64>,
}

impl Chain {
    fn new() -> Self {
        let keys: Vec<PrivateKeySigner> =
            (1..=2u64).map(|i| PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap()).collect();
        let mut genesis =
            Genesis { config: prague_chain_config(CHAIN_ID), gas_limit: 30_000_000, ..Default::default() };
        for k in &keys {
            genesis
                .alloc
                .insert(k.address(), GenesisAccount::default().with_balance(U256::from(10u128.pow(21))));
        }
        let code = Bytes::from(DangerIndex::DEPLOYED_BYTECODE.to_vec());
        genesis.alloc.insert(PREDEPLOYED, GenesisAccount::default().with_code(Some(code)));
        let spec = ChainSpec::new(genesis, Default::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &spec).unwrap();
        Self { _dir: dir, spec, storage, keys, nonces: vec![0; 2] }
    }

    fn call(&self, to: Address, input: Vec<u8>) -> CallOutcome {
        let (_, head) = self.storage.head().unwrap();
        let params = CallParams { to: Some(to), input: input.into(), ..Default::default() };
        call(&self.spec, &self.storage, &head, &params, 50_000_000).unwrap()
    }

    /// Executes one transaction from key `k` in its own block; returns (status, logs, gas used).
    fn send(&mut self, k: usize, to: TxKind, input: Vec<u8>) -> (bool, Vec<alloy_primitives::Log>, u64) {
        let mut tx = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: self.nonces[k],
            gas_limit: 3_000_000,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1,
            to,
            value: U256::ZERO,
            access_list: Default::default(),
            input: input.into(),
        };
        self.nonces[k] += 1;
        let sig = self.keys[k].sign_transaction_sync(&mut tx).unwrap();
        let tx = Recovered::new_unchecked(TxEnvelope::from(tx.into_signed(sig)), self.keys[k].address());
        let (hash, parent) = self.storage.head().unwrap();
        let template = Header {
            parent_hash: hash,
            number: parent.number + 1,
            gas_limit: parent.gas_limit,
            timestamp: parent.timestamp + 1,
            base_fee_per_gas: next_base_fee(&self.spec, &parent),
            ..Default::default()
        };
        let out = execute_block(&self.spec, &self.storage, &parent, template, [tx], Mode::Validate).unwrap();
        let body = StoredBody {
            transactions: out.transactions.iter().map(|t| t.inner().clone()).collect(),
            senders: out.transactions.iter().map(|t| t.signer()).collect(),
        };
        let receipt = out.receipts[0].clone();
        self.storage
            .write_block(&BlockWrite {
                hash: out.header.hash_slow(),
                header: out.header,
                body,
                receipts: out.receipts,
                state: out.state,
                applied_index: None,
            })
            .unwrap();
        (receipt.status(), receipt.logs().to_vec(), receipt.cumulative_gas_used())
    }
}

fn h5(case: &serde_json::Value) -> [U256; 5] {
    let h: Vec<U256> =
        case["h"].as_array().unwrap().iter().map(|v| U256::from(v.as_u64().unwrap())).collect();
    h.try_into().unwrap()
}

#[test]
fn compute_matches_every_vector_exactly() {
    let chain = Chain::new();
    let vectors = vectors();
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 200);
    for case in cases {
        let input = DangerIndex::computeCall {
            p: U256::from(case["p"].as_u64().unwrap()),
            h: h5(case),
            cs: U256::from(case["cs"].as_u64().unwrap()),
        };
        let CallOutcome::Success { output, .. } = chain.call(PREDEPLOYED, input.abi_encode()) else {
            panic!("compute reverted for {case}");
        };
        let out = DangerIndex::computeCall::abi_decode_returns(&output).unwrap();
        assert_eq!(out.diX100, U256::from(case["di_x100"].as_u64().unwrap()), "{case}");
        assert_eq!(out.ehX100, U256::from(case["eh_x100"].as_u64().unwrap()), "{case}");
        assert_eq!(risk::name(out.risk), case["risk"].as_str().unwrap(), "{case}");
    }
    for case in vectors["invalid"].as_array().unwrap() {
        let input = DangerIndex::computeCall {
            p: U256::from(case["p"].as_u64().unwrap()),
            h: h5(case),
            cs: U256::from(case["cs"].as_u64().unwrap()),
        };
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
    let mut chain = Chain::new();
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
