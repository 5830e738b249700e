//! Transaction decode + pool admission + block selection: raw EIP-2718 bytes as
//! `eth_sendRawTransaction` gets them, and transactions built from the input and signed by a
//! funded key (to reach the pool rules: replacement, limits, eviction, ordering).
#![no_main]

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_network::TxSignerSync;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let env = fogchain_fuzz::env();
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        if let Ok(tx) = TxEnvelope::decode_2718(&mut &rest[..]) {
            let _ = env.pool.add(tx, rest.len());
        }
    } else {
        let key = &env.keys[usize::from(mode / 2) % env.keys.len()];
        let fee_cap = u128::from(u64_at(rest, 8) % 20_000_000_000);
        let mut tx = TxEip1559 {
            chain_id: 1337,
            nonce: u64_at(rest, 0) % 40,
            gas_limit: 21_000 + u64_at(rest, 16) % 30_000_000,
            max_fee_per_gas: fee_cap,
            max_priority_fee_per_gas: u128::from(u64_at(rest, 24)) % (fee_cap + 1),
            to: TxKind::Call(Address::repeat_byte(1)),
            value: U256::from(u64_at(rest, 32)),
            access_list: Default::default(),
            input: Bytes::copy_from_slice(rest.get(40..).unwrap_or_default()),
        };
        let Ok(sig) = key.sign_transaction_sync(&mut tx) else { return };
        let _ = env.pool.add(tx.into_signed(sig).into(), rest.len() + 120);
    }
    let best = env.pool.best(Some(u64_at(data, 1) % 2_000_000_000), 100, 30_000_000);
    assert!(
        best.transactions.iter().map(|t| alloy_consensus::Transaction::gas_limit(t.inner())).sum::<u64>()
            <= 30_000_000
    );
    let _ = env.pool.content();
});
