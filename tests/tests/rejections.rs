//! Invalid transactions are rejected with geth's wording and change nothing.

use alloy_consensus::{SignableTransaction, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use fogchain_e2e::{
    tx::{eip1559, key, legacy, sign, transfer, GWEI},
    Devnet, Rpc,
};
use serde_json::json;

/// geth's message of a -32000 refusal; its data must name a refusal kind (what clients decide by).
fn rejected(rpc: &Rpc, raw: &str) -> String {
    let err = rpc.try_call("eth_sendRawTransaction", json!([raw])).expect_err("transaction must be rejected");
    assert_eq!(err.code, -32000, "{}", err.message);
    let kind = fogchain_client::Refusal::of_data(err.data.as_ref());
    let expected = match err.message.as_str() {
        m if m.starts_with("nonce too low") => Some(fogchain_client::Refusal::NonceTooLow),
        "already known" => Some(fogchain_client::Refusal::AlreadyKnown),
        m if m.starts_with("insufficient funds") => Some(fogchain_client::Refusal::InsufficientFunds),
        m if m.starts_with("exceeds block gas limit") => Some(fogchain_client::Refusal::ExceedsBlockGasLimit),
        _ => kind,
    };
    assert!(kind.is_some() && kind == expected, "{}: data {:?}", err.message, err.data);
    err.message
}

#[test]
fn invalid_transactions_are_rejected_with_geth_wording_and_no_state_change() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(0);
    let chain_id = devnet.network.chain_id;
    let sender = key(&devnet.account_key(0));
    let to = Address::repeat_byte(0x11);

    // One accepted transaction so that nonce 0 is used.
    let (raw, hash) = sign(&sender, transfer(chain_id, 0, to, 1));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    rpc.wait_receipt(&hash);
    let state = |rpc: &Rpc| {
        (
            rpc.call("eth_getBlockByNumber", json!(["latest", false]))["hash"].clone(),
            rpc.call("eth_getBalance", json!([sender.address(), "latest"])),
            rpc.call("eth_getTransactionCount", json!([sender.address(), "pending"])),
            rpc.call("eth_getBalance", json!([to, "latest"])),
        )
    };
    let before = state(&rpc);

    // Wrong chain id.
    let (raw, _) = sign(&sender, transfer(chain_id + 1, 1, to, 1));
    assert!(rejected(&rpc, &raw).starts_with("invalid chain id for signer"));
    // Pre-EIP-155 legacy transaction (no chain id): geth refuses it over RPC.
    let (raw, _) = sign(&sender, legacy(None, 1, to, 1));
    assert_eq!(rejected(&rpc, &raw), "only replay-protected (EIP-155) transactions allowed over RPC");
    // Bad signature: r = 0 cannot recover.
    let tx = transfer(chain_id, 1, to, 1);
    let bad: TxEnvelope = tx.into_signed(Signature::new(U256::ZERO, U256::from(1), false)).into();
    let raw = format!("0x{}", alloy_primitives::hex::encode(bad.encoded_2718()));
    assert_eq!(rejected(&rpc, &raw), "invalid sender");
    // Nonce too low.
    let (raw, _) = sign(&sender, transfer(chain_id, 0, to, 2));
    assert_eq!(rejected(&rpc, &raw), "nonce too low: next nonce 1, tx nonce 0");
    // An account the network's permissioning does not know (docs/permissioning.md).
    let stranger = PrivateKeySigner::random();
    let (raw, _) = sign(&stranger, transfer(chain_id, 0, to, 1));
    assert_eq!(rejected(&rpc, &raw), "account not permitted to transact");
    // Insufficient funds: more value than the (10,000 ETH) balance.
    let (raw, _) = sign(&sender, transfer(chain_id, 1, to, 20_000 * 10u128.pow(18)));
    let msg = rejected(&rpc, &raw);
    assert!(msg.starts_with("insufficient funds for gas * price + value: balance "), "{msg}");
    // Gas above the block gas limit.
    let (raw, _) =
        sign(&sender, eip1559(chain_id, 1, TxKind::Call(to), U256::ZERO, Bytes::new(), 30_000_001));
    assert_eq!(rejected(&rpc, &raw), "exceeds block gas limit");
    // Over 128 KiB.
    let big = Bytes::from(vec![1u8; 128 * 1024]);
    let (raw, _) = sign(&sender, eip1559(chain_id, 1, TxKind::Call(to), U256::ZERO, big, 25_000_000));
    assert!(rejected(&rpc, &raw).starts_with("oversized data: transaction size "));
    // Intrinsic gas too low.
    let (raw, _) = sign(&sender, eip1559(chain_id, 1, TxKind::Call(to), U256::ZERO, Bytes::new(), 20_000));
    assert_eq!(rejected(&rpc, &raw), "intrinsic gas too low: gas 20000, minimum needed 21000");
    // Tip above fee cap.
    let mut tx = transfer(chain_id, 1, to, 1);
    tx.max_priority_fee_per_gas = tx.max_fee_per_gas + 1;
    let (raw, _) = sign(&sender, tx);
    assert_eq!(rejected(&rpc, &raw), "max priority fee per gas higher than max fee per gas");
    // Undecodable bytes.
    let err = rpc.try_call("eth_sendRawTransaction", json!(["0x02deadbeef"])).unwrap_err();
    assert_eq!(err.code, -32000);
    assert!(err.message.starts_with("rlp:"), "{}", err.message);

    // Nothing changed: same head, balances and nonces; nothing pooled.
    assert_eq!(state(&rpc), before);

    // A future nonce is queued (not mined) and replacing it needs a 10% higher price.
    let (raw, queued) = sign(&sender, transfer(chain_id, 5, to, 1));
    rpc.call("eth_sendRawTransaction", json!([raw.clone()]));
    assert_eq!(rejected(&rpc, &raw), "already known");
    let mut cheaper = transfer(chain_id, 5, to, 2);
    cheaper.max_fee_per_gas = 105 * GWEI;
    let (raw, _) = sign(&sender, cheaper);
    assert_eq!(rejected(&rpc, &raw), "replacement transaction underpriced");
    let pending = rpc.call("eth_getTransactionByHash", json!([queued]));
    assert!(pending["blockHash"].is_null(), "queued transaction is pending, not mined");
    assert_eq!(rpc.quantity("eth_getTransactionCount", json!([sender.address(), "pending"])), 1);
    devnet.stop();
}
