//! Block execution throughput: value transfers and contract calls, 1,000 transactions per block,
//! executed with revm over a real RocksDB state, including receipts and the incremental state
//! root (not the database write). Run: `cargo bench -p fogchain-evm --bench block_execution`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use alloy_consensus::{
    transaction::{Recovered, SignerRecoverable},
    Header, SignableTransaction, TxEip1559, TxEnvelope,
};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_network::TxSignerSync;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fogchain_evm::{execute_block, Mode};
use fogchain_genesis::{prague_chain_config, ChainSpec};
use fogchain_storage::{ChainReader, Storage};

const TXS: usize = 1_000;
const CHAIN_ID: u64 = 1337;
/// Counter: slot0 += 1 per call.
const COUNTER: &[u8] = &[0x60, 0x01, 0x60, 0x00, 0x54, 0x01, 0x60, 0x00, 0x55, 0x00];

struct Fixture {
    _dir: tempfile::TempDir,
    spec: ChainSpec,
    storage: Storage,
    keys: Vec<PrivateKeySigner>,
}

fn fixture() -> Fixture {
    let keys: Vec<PrivateKeySigner> = (1..=TXS as u64)
        .map(|i| PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap())
        .collect();
    let mut genesis =
        Genesis { config: prague_chain_config(CHAIN_ID), gas_limit: 1_000_000_000, ..Default::default() };
    for k in &keys {
        genesis.alloc.insert(k.address(), GenesisAccount::default().with_balance(U256::from(10u128.pow(22))));
    }
    genesis.alloc.insert(
        Address::repeat_byte(0xcc),
        GenesisAccount::default().with_code(Some(Bytes::from_static(COUNTER))),
    );
    let spec = ChainSpec::new(genesis, Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), &spec).unwrap();
    Fixture { _dir: dir, spec, storage, keys }
}

fn signed(f: &Fixture, to: Address, gas: u64) -> Vec<Recovered<TxEnvelope>> {
    f.keys
        .iter()
        .map(|k| {
            let mut tx = TxEip1559 {
                chain_id: CHAIN_ID,
                nonce: 0,
                gas_limit: gas,
                max_fee_per_gas: 10_000_000_000,
                max_priority_fee_per_gas: 1,
                to: TxKind::Call(to),
                value: U256::from(1),
                access_list: Default::default(),
                input: Bytes::new(),
            };
            let sig = k.sign_transaction_sync(&mut tx).unwrap();
            let env: TxEnvelope = tx.into_signed(sig).into();
            Recovered::new_unchecked(env, k.address())
        })
        .collect()
}

fn template(f: &Fixture) -> (Header, Header) {
    let (hash, parent) = f.storage.head().unwrap();
    let header =
        fogchain_evm::child_header(&f.spec, hash, &parent, parent.timestamp + 1, Address::repeat_byte(0xbe));
    (parent, header)
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("block_execution");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(20);
    for (name, to, gas) in [
        ("transfers", Address::repeat_byte(0x42), 21_000),
        ("contract_calls", Address::repeat_byte(0xcc), 60_000),
    ] {
        let txs = signed(&f, to, gas);
        let (parent, header) = template(&f);
        group.bench_function(name, |b| {
            b.iter_batched(
                || txs.clone(),
                |txs| {
                    let out = execute_block(
                        &f.spec,
                        &f.storage,
                        &parent,
                        header.clone(),
                        txs,
                        None,
                        Mode::Validate,
                    )
                    .unwrap();
                    assert_eq!(out.receipts.len(), TXS);
                    out
                },
                BatchSize::LargeInput,
            )
        });
    }
    let txs = signed(&f, Address::repeat_byte(0x42), 21_000);
    group.bench_function("sender_recovery", |b| {
        b.iter(|| txs.iter().map(|t| t.inner().recover_signer().unwrap()).collect::<Vec<_>>())
    });
    let envelopes: Vec<TxEnvelope> = txs.iter().map(|t| t.inner().clone()).collect();
    group.bench_function("sender_recovery_parallel", |b| {
        b.iter(|| fogchain_evm::recover_senders(&envelopes).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
