//! Block execution against a real RocksDB state: receipts, failed transactions, EIP-161, and the
//! incremental state root checked against a from-scratch recomputation after every block.

use alloy_consensus::{transaction::Recovered, Header, SignableTransaction, TxEip1559, TxEnvelope};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_network::TxSignerSync;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use fogchain_evm::{
    execute_block, validate_block, Budget, CallOutcome, CallParams, ExecError, ExecutedBlock, Mode,
};
use fogchain_genesis::{prague_chain_config, ChainSpec};
use fogchain_storage::{ChainReader, Storage};

const CHAIN_ID: u64 = 1337;
/// slot0 += 1; LOG1(topic 0xc0, data = new value).
const COUNTER: &[u8] = &[
    0x60, 0x01, 0x60, 0x00, 0x54, 0x01, 0x80, 0x60, 0x00, 0x55, 0x60, 0x00, 0x52, 0x60, 0xc0, 0x60, 0x20,
    0x60, 0x00, 0xa1, 0x00,
];
/// REVERT with Error("no") ABI data would be long; a bare REVERT(0, 0) is enough here.
const REVERTER: &[u8] = &[0x60, 0x00, 0x60, 0x00, 0xfd];
const COUNTER_ADDR: Address = Address::repeat_byte(0xcc);
const REVERTER_ADDR: Address = Address::repeat_byte(0xdd);

struct Net {
    _dir: tempfile::TempDir,
    spec: ChainSpec,
    storage: Storage,
    keys: Vec<PrivateKeySigner>,
}

fn net() -> Net {
    let keys: Vec<PrivateKeySigner> =
        (1..=3u64).map(|i| PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap()).collect();
    let mut genesis =
        Genesis { config: prague_chain_config(CHAIN_ID), gas_limit: 30_000_000, ..Default::default() };
    for k in &keys {
        genesis.alloc.insert(k.address(), GenesisAccount::default().with_balance(U256::from(10u128.pow(21))));
    }
    genesis
        .alloc
        .insert(COUNTER_ADDR, GenesisAccount::default().with_code(Some(Bytes::from_static(COUNTER))));
    genesis
        .alloc
        .insert(REVERTER_ADDR, GenesisAccount::default().with_code(Some(Bytes::from_static(REVERTER))));
    let spec = ChainSpec::new(genesis, Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), &spec).unwrap();
    Net { _dir: dir, spec, storage, keys }
}

fn tx(
    key: &PrivateKeySigner,
    nonce: u64,
    to: TxKind,
    value: u128,
    input: Bytes,
    gas: u64,
) -> Recovered<TxEnvelope> {
    let mut tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::from(value),
        access_list: Default::default(),
        input,
    };
    let sig = key.sign_transaction_sync(&mut tx).unwrap();
    Recovered::new_unchecked(tx.into_signed(sig).into(), key.address())
}

fn template(net: &Net) -> (Header, Header) {
    let (hash, parent) = net.storage.head().unwrap();
    let header = fogchain_evm::child_header(
        &net.spec,
        hash,
        &parent,
        parent.timestamp + 1,
        Address::repeat_byte(0xbe),
    );
    (parent, header)
}

fn write(net: &Net, executed: &ExecutedBlock) {
    let executed = executed.clone();
    let root = executed.header.state_root;
    net.storage.write_block(&executed.clone().into_block_write(executed.header.hash_slow(), None)).unwrap();
    assert_eq!(net.storage.state_root_from_scratch().unwrap(), root, "incremental root");
}

#[test]
fn receipts_failed_transactions_and_incremental_state_root() {
    let net = net();
    let [a, b, c] = [&net.keys[0], &net.keys[1], &net.keys[2]];
    let fresh = Address::repeat_byte(0x77);
    let (parent, header) = template(&net);
    let txs = vec![
        tx(a, 0, TxKind::Call(COUNTER_ADDR), 0, Bytes::new(), 100_000),
        tx(a, 1, TxKind::Call(fresh), 5, Bytes::new(), 21_000),
        tx(b, 0, TxKind::Call(REVERTER_ADDR), 0, Bytes::new(), 50_000),
        // Out of gas: a halted transaction is included with a failed receipt.
        tx(b, 1, TxKind::Call(COUNTER_ADDR), 0, Bytes::new(), 21_100),
        // EIP-161: a zero-value call to an empty account does not create it.
        tx(c, 0, TxKind::Call(Address::repeat_byte(0x99)), 0, Bytes::new(), 21_000),
        // Nonce gap: left out in Build mode.
        tx(c, 5, TxKind::Call(fresh), 1, Bytes::new(), 21_000),
    ];
    let executed = execute_block(
        &net.spec,
        &net.storage,
        &parent,
        header.clone(),
        txs.clone(),
        None,
        Mode::Build { max_transactions: 100 },
    )
    .unwrap();
    assert_eq!(executed.transactions.len(), 5);
    assert_eq!(executed.skipped.len(), 1);
    assert!(!executed.skipped[0].permanent);
    assert!(executed.skipped[0].reason.starts_with("nonce too high"), "{}", executed.skipped[0].reason);
    let status: Vec<bool> = executed.receipts.iter().map(|r| r.status()).collect();
    assert_eq!(status, [true, true, false, false, true]);
    assert_eq!(executed.receipts[0].logs().len(), 1);
    assert_eq!(executed.receipts[0].logs()[0].topics()[0], B256::with_last_byte(0xc0));
    assert!(executed
        .header
        .logs_bloom
        .contains_input(alloy_primitives::BloomInput::Raw(COUNTER_ADDR.as_slice())));
    assert_eq!(
        executed.receipts[3].cumulative_gas_used() - executed.receipts[2].cumulative_gas_used(),
        21_100
    );
    assert_eq!(executed.header.gas_used, executed.receipts[4].cumulative_gas_used());
    write(&net, &executed);

    let s = &net.storage;
    assert_eq!(s.account(&a.address()).unwrap().unwrap().nonce, 2);
    assert_eq!(s.account(&b.address()).unwrap().unwrap().nonce, 2, "failed transactions bump the nonce");
    assert_eq!(s.account(&fresh).unwrap().unwrap().balance, U256::from(5));
    assert!(s.account(&Address::repeat_byte(0x99)).unwrap().is_none(), "EIP-161");
    assert_eq!(s.storage(&COUNTER_ADDR, &U256::ZERO).unwrap(), U256::from(1));
    let beneficiary = s.account(&Address::repeat_byte(0xbe)).unwrap().unwrap();
    assert!(beneficiary.balance > U256::ZERO, "tips go to the beneficiary");

    // A second block: contract creation, storage overwrite, deleting a slot is covered by the
    // trie tests; the from-scratch root check runs in `write`.
    let (parent, header) = template(&net);
    let mut init = vec![
        0x60,
        COUNTER.len() as u8,
        0x60,
        0x0c,
        0x60,
        0x00,
        0x39,
        0x60,
        COUNTER.len() as u8,
        0x60,
        0x00,
        0xf3,
    ];
    init.extend_from_slice(COUNTER);
    let txs = vec![
        tx(a, 2, TxKind::Create, 0, Bytes::from(init), 200_000),
        tx(a, 3, TxKind::Call(COUNTER_ADDR), 0, Bytes::new(), 100_000),
        tx(c, 1, TxKind::Call(COUNTER_ADDR), 0, Bytes::new(), 100_000),
    ];
    let executed = execute_block(
        &net.spec,
        &net.storage,
        &parent,
        header,
        txs.clone(),
        None,
        Mode::Build { max_transactions: 100 },
    )
    .unwrap();
    assert!(executed.receipts.iter().all(|r| r.status()));
    let created = a.address().create(2);

    // Validation of the same block by another node gives the same header; a tampered one fails.
    let validated =
        validate_block(&net.spec, &net.storage, &parent, &executed.header, txs.clone(), None).unwrap();
    assert_eq!(validated.header, executed.header);
    let mut tampered = executed.header.clone();
    tampered.state_root = B256::repeat_byte(1);
    let err = validate_block(&net.spec, &net.storage, &parent, &tampered, txs.clone(), None).unwrap_err();
    assert!(matches!(err, ExecError::Mismatch { field: "stateRoot", .. }), "{err}");
    let err = validate_block(&net.spec, &net.storage, &parent, &executed.header, txs[1..].to_vec(), None)
        .unwrap_err();
    assert!(matches!(err, ExecError::InvalidTransaction { index: 0, .. }), "{err}");

    write(&net, &executed);
    assert_eq!(net.storage.code(&keccak256(COUNTER)).unwrap().unwrap().as_ref(), COUNTER);
    assert_eq!(net.storage.account(&created).unwrap().unwrap().code_hash, keccak256(COUNTER));
    assert_eq!(net.storage.storage(&COUNTER_ADDR, &U256::ZERO).unwrap(), U256::from(3));

    // eth_call and eth_estimateGas on the new state.
    let (_, head) = net.storage.head().unwrap();
    let params = CallParams { from: Some(a.address()), to: Some(COUNTER_ADDR), ..Default::default() };
    match fogchain_evm::call(&net.spec, &net.storage, &head, &params, 50_000_000, Budget::unlimited())
        .unwrap()
    {
        CallOutcome::Success { logs, .. } => {
            assert_eq!(logs[0].data.data.as_ref(), B256::with_last_byte(4).as_slice())
        }
        other => panic!("{other:?}"),
    }
    let estimate =
        fogchain_evm::estimate_gas(&net.spec, &net.storage, &head, &params, 50_000_000, Budget::unlimited())
            .unwrap();
    assert!((26_000..30_000).contains(&estimate), "estimate {estimate}");
    let params = CallParams { to: Some(REVERTER_ADDR), ..Default::default() };
    assert!(matches!(
        fogchain_evm::call(&net.spec, &net.storage, &head, &params, 1_000_000, Budget::unlimited()).unwrap(),
        CallOutcome::Revert { .. }
    ));
    assert!(matches!(
        fogchain_evm::estimate_gas(&net.spec, &net.storage, &head, &params, 1_000_000, Budget::unlimited()),
        Err(fogchain_evm::CallError::Reverted { .. })
    ));
}
