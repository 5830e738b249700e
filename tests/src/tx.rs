//! Signing transactions with alloy for the tests.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use fogchain_client::Fees;

/// 1 gwei in wei.
pub const GWEI: u128 = 1_000_000_000;

/// An EIP-1559 transaction with the given fields and a 100 gwei fee cap, 1 gwei tip.
pub fn eip1559(
    chain_id: u64,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
    gas_limit: u64,
) -> TxEip1559 {
    fogchain_client::eip1559(
        chain_id,
        nonce,
        to,
        value,
        input,
        gas_limit,
        Fees { max_fee: 100 * GWEI, tip: GWEI },
    )
}

/// A value transfer.
pub fn transfer(chain_id: u64, nonce: u64, to: Address, wei: u128) -> TxEip1559 {
    eip1559(chain_id, nonce, TxKind::Call(to), U256::from(wei), Bytes::new(), 21_000)
}

/// Signs and returns the `0x`-hex EIP-2718 encoding and the tx hash.
pub fn sign<T: SignableTransaction<alloy_primitives::Signature>>(
    key: &PrivateKeySigner,
    tx: T,
) -> (String, String)
where
    TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    let signed = fogchain_client::sign(key, tx).unwrap();
    (signed.raw_hex(), signed.hash.to_string())
}

/// A legacy transaction (EIP-155 when `chain_id` is set).
pub fn legacy(chain_id: Option<u64>, nonce: u64, to: Address, wei: u128) -> TxLegacy {
    TxLegacy {
        chain_id,
        nonce,
        gas_price: 100 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(wei),
        input: Bytes::new(),
    }
}

/// Parses a hex private key.
pub fn key(hex_key: &str) -> PrivateKeySigner {
    hex_key.parse().unwrap()
}

/// Init code that copies `payload` to memory and ends with `opcode` (RETURN or REVERT) over it.
fn copy_then(opcode: u8, payload: &[u8]) -> Bytes {
    // PUSH1 len PUSH1 12 PUSH1 0 CODECOPY PUSH1 len PUSH1 0 <opcode> ; payload
    assert!(payload.len() < 256);
    let n = payload.len() as u8;
    let mut code = vec![0x60, n, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, opcode];
    code.extend_from_slice(payload);
    Bytes::from(code)
}

/// Init code that deploys `runtime` as the contract's code.
pub fn deploy_code(runtime: &[u8]) -> Bytes {
    copy_then(0xf3, runtime)
}

/// Init code that reverts with `data` (e.g. an ABI-encoded `Error(string)`).
pub fn revert_code(data: &[u8]) -> Bytes {
    copy_then(0xfd, data)
}

/// Runtime code of a counter: each call adds 1 to slot 0 and logs the new value (LOG1 with
/// topic 0xc0), returning nothing.
pub const COUNTER_RUNTIME: &[u8] = &[
    0x60, 0x01, 0x60, 0x00, 0x54, 0x01, // PUSH1 1 PUSH1 0 SLOAD ADD
    0x80, 0x60, 0x00, 0x55, // DUP1 PUSH1 0 SSTORE
    0x60, 0x00, 0x52, // PUSH1 0 MSTORE
    0x60, 0xc0, 0x60, 0x20, 0x60, 0x00, 0xa1, // PUSH1 0xc0 PUSH1 32 PUSH1 0 LOG1
    0x00, // STOP
];
