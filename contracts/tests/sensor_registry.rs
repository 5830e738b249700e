//! Device-signed readings: SensorRegistry.recordSigned against DeviceRegistry, with the
//! rejections issue #4 lists (revoked device, wrong key, replayed seq, other chain or registry).

mod common;

use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolConstructor, SolEvent, SolValue};
use common::{Chain, CHAIN_ID};
use fogchain_contracts::{DeviceRegistry, SensorRegistry};
use fogchain_evm::CallOutcome;

struct Setup {
    chain: Chain,
    devices: Address,
    sensors: Address,
    device: B256,
    key: PrivateKeySigner,
}

fn setup() -> Setup {
    let mut chain = Chain::new(&[]);
    let admin = chain.keys[0].address();
    assert!(chain.send(0, TxKind::Create, DeviceRegistry::BYTECODE.to_vec()).0);
    let devices = admin.create(0);
    let mut init = SensorRegistry::BYTECODE.to_vec();
    init.extend(SensorRegistry::constructorCall { devices_: devices }.abi_encode());
    assert!(chain.send(0, TxKind::Create, init).0);
    let sensors = admin.create(1);
    let key = PrivateKeySigner::from_bytes(&keccak256(b"device key")).unwrap();
    let device = keccak256(b"sensor-17");
    let register =
        DeviceRegistry::registerCall { deviceId: device, key: key.address(), kind: "sensor".into() };
    assert!(chain.send(0, TxKind::Call(devices), register.abi_encode()).0);
    Setup { chain, devices, sensors, device, key }
}

/// The device's EIP-191 signature over the registry's digest for `chain_id` and `registry`.
fn sign(
    key: &PrivateKeySigner,
    chain_id: u64,
    registry: Address,
    device: B256,
    seq: u64,
    topic: &str,
    payload: &[u8],
) -> Bytes {
    let digest = keccak256(
        (U256::from(chain_id), registry, device, seq, keccak256(topic), keccak256(payload)).abi_encode(),
    );
    Bytes::from(key.sign_message_sync(digest.as_slice()).unwrap().as_bytes().to_vec())
}

fn record_signed(s: &mut Setup, seq: u64, signature: Bytes) -> (bool, Vec<alloy_primitives::Log>, u64) {
    let call = SensorRegistry::recordSignedCall {
        deviceId: s.device,
        seq,
        topic: "forest/plot-3/humidity".into(),
        payload: Bytes::from_static(b"{\"h\":5123}"),
        signature,
    };
    // Relayed by an account that is not a gateway: the signature is the authority.
    s.chain.send(1, TxKind::Call(s.sensors), call.abi_encode())
}

const TOPIC: &str = "forest/plot-3/humidity";
const PAYLOAD: &[u8] = b"{\"h\":5123}";

#[test]
fn signed_readings_are_accepted_once_and_only_from_the_device_key() {
    let mut s = setup();
    // The digest the contract computes equals ours.
    let digest_call = SensorRegistry::digestCall {
        deviceId: s.device,
        seq: 1,
        topic: TOPIC.into(),
        payload: PAYLOAD.into(),
    };
    let CallOutcome::Success { output, .. } = s.chain.call(s.sensors, digest_call.abi_encode()) else {
        panic!()
    };
    let expected = keccak256(
        (U256::from(CHAIN_ID), s.sensors, s.device, 1u64, keccak256(TOPIC), keccak256(PAYLOAD)).abi_encode(),
    );
    assert_eq!(SensorRegistry::digestCall::abi_decode_returns(&output).unwrap(), expected);

    let good = sign(&s.key, CHAIN_ID, s.sensors, s.device, 1, TOPIC, PAYLOAD);
    let (ok, logs, gas) = record_signed(&mut s, 1, good.clone());
    assert!(ok, "registered device's signature");
    println!("gas: recordSigned {gas}");
    let reading = SensorRegistry::Reading::decode_log_data(&logs[0].data).unwrap();
    assert_eq!((reading.deviceId, reading.seq, reading.topic.as_str()), (s.device, 1, TOPIC));
    assert_eq!(reading.topicHash, keccak256(TOPIC));

    // Replay of the same signed reading.
    assert!(!record_signed(&mut s, 1, good).0, "replayed seq");
    // A signature by another key.
    let stranger = PrivateKeySigner::from_bytes(&keccak256(b"not the device")).unwrap();
    assert!(
        !{
            let sig = sign(&stranger, CHAIN_ID, s.sensors, s.device, 2, TOPIC, PAYLOAD);
            record_signed(&mut s, 2, sig)
        }
        .0,
        "wrong key"
    );
    // Signatures made for another chain, or for another registry.
    assert!(
        !{
            let sig = sign(&s.key, CHAIN_ID + 1, s.sensors, s.device, 2, TOPIC, PAYLOAD);
            record_signed(&mut s, 2, sig)
        }
        .0,
        "other chain"
    );
    assert!(
        !{
            let sig = sign(&s.key, CHAIN_ID, s.devices, s.device, 2, TOPIC, PAYLOAD);
            record_signed(&mut s, 2, sig)
        }
        .0,
        "other registry"
    );
    // The right one still goes through; a higher seq with a gap is fine.
    assert!(
        {
            let sig = sign(&s.key, CHAIN_ID, s.sensors, s.device, 5, TOPIC, PAYLOAD);
            record_signed(&mut s, 5, sig)
        }
        .0
    );
    let CallOutcome::Success { output, .. } =
        s.chain.call(s.sensors, SensorRegistry::latestCall { deviceId: s.device }.abi_encode())
    else {
        panic!()
    };
    let latest = SensorRegistry::latestCall::abi_decode_returns(&output).unwrap();
    assert_eq!((latest.seq, latest.topic.as_str(), latest.payload.as_ref()), (5, TOPIC, PAYLOAD));

    // A revoked device is refused.
    assert!(
        s.chain
            .send(0, TxKind::Call(s.devices), DeviceRegistry::revokeCall { deviceId: s.device }.abi_encode())
            .0
    );
    assert!(
        !{
            let sig = sign(&s.key, CHAIN_ID, s.sensors, s.device, 6, TOPIC, PAYLOAD);
            record_signed(&mut s, 6, sig)
        }
        .0,
        "revoked device"
    );
}

#[test]
fn gateway_records_and_signed_batches() {
    let mut s = setup();
    let gateway = s.chain.keys[1].address();
    let record =
        SensorRegistry::recordCall { deviceId: s.device, topic: TOPIC.into(), payload: PAYLOAD.into() };
    assert!(!s.chain.send(1, TxKind::Call(s.sensors), record.abi_encode()).0, "not a gateway yet");
    assert!(
        s.chain.send(0, TxKind::Call(s.sensors), SensorRegistry::addGatewayCall { gateway }.abi_encode()).0
    );
    let (ok, _, gas) = s.chain.send(1, TxKind::Call(s.sensors), record.abi_encode());
    assert!(ok);
    println!("gas: record {gas}");

    // 100 signed readings from 100 devices in one transaction.
    let mut batch = SensorRegistry::recordSignedBatchCall {
        deviceIds: vec![],
        seqs: vec![],
        topics: vec![],
        payloads: vec![],
        signatures: vec![],
    };
    for i in 0..100u64 {
        let key = PrivateKeySigner::from_bytes(&keccak256(format!("device {i}"))).unwrap();
        let id = keccak256(format!("device-{i}"));
        let register =
            DeviceRegistry::registerCall { deviceId: id, key: key.address(), kind: "sensor".into() };
        assert!(s.chain.send(0, TxKind::Call(s.devices), register.abi_encode()).0);
        batch.deviceIds.push(id);
        batch.seqs.push(1);
        batch.topics.push(TOPIC.into());
        batch.payloads.push(PAYLOAD.into());
        batch.signatures.push(sign(&key, CHAIN_ID, s.sensors, id, 1, TOPIC, PAYLOAD));
    }
    let (ok, logs, gas) = s.chain.send(1, TxKind::Call(s.sensors), batch.abi_encode());
    assert!(ok);
    assert_eq!(logs.len(), 100);
    println!("gas: recordSignedBatch of 100 {gas} ({} per reading)", gas / 100);
}
