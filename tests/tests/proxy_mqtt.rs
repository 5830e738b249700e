//! The IoT proxy's MQTT side with a real MQTT client (rumqttc) against `fogchain devnet`'s
//! proxy: authentication, topic ACLs, registry messages recorded and acked, action messages
//! yielding the exact danger index of the shared vectors on Publish_Topic, duplicates, rate
//! limits and device shadows.

use alloy_primitives::{keccak256, Address, U256};
use alloy_signer::SignerSync;
use alloy_sol_types::SolValue;
use fogchain_e2e::{mqtt::Mqtt, readings, shared_data, tx::key, Devnet};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

#[test]
fn mqtt_devices_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let rpc = net.rpc(0);
    let url = net.proxy_mqtt();
    let registry = net.contract("SensorRegistry");
    let danger_index: Address = net.contract("DangerIndex").parse().unwrap();

    // Authentication: no credentials, and a wrong password, are refused at CONNECT.
    let anonymous = Mqtt::connect(&url, "anonymous", None);
    assert!(anonymous.wait_closed(WAIT).contains("NotAuthorized"));
    let wrong = Mqtt::connect(&url, "intruder", Some(("sensor-1", "not-the-password")));
    assert!(wrong.wait_closed(WAIT).contains("BadUserNamePassword"));

    // A last will on another device's topic would be a forged message: refused at CONNECT.
    let (id0, pw0) = (net.device(0).id.as_str(), net.device(0).password.as_str());
    let will =
        Mqtt::connect_with_will(&url, "will", Some((id0, pw0)), Some(("devices/sensor-2/messages", "{}")));
    assert!(will.wait_closed(WAIT).contains("NotAuthorized"));

    let sensor = net.mqtt_device(0);
    assert_eq!(net.device(0).id, "sensor-1");
    assert_eq!(sensor.subscribe("devices/sensor-1/acks"), vec![true]);
    // another device's topics cannot be subscribed to
    assert_eq!(sensor.subscribe("devices/sensor-2/#"), vec![false]);
    assert_eq!(sensor.subscribe("#"), vec![false]);

    // A registry message (the paper's RM) is recorded through SensorRegistry and acked.
    let rm = json!({"Payload": {"CS": 812, "unit": "W/m2"}, "Topic": "sensors/solar", "MessageContent": "reading", "Seq": 1});
    sensor.publish("devices/sensor-1/messages", rm.to_string());
    let accepted = sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["seq"] == 1);
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    let recorded =
        sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["seq"] == 1 && a["status"] != "accepted");
    assert_eq!(recorded["status"], "recorded", "{recorded}");
    let receipt = rpc.wait_receipt(recorded["txHash"].as_str().unwrap());
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(
        u64::from_str_radix(receipt["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
        recorded["blockNumber"].as_u64().unwrap()
    );
    let got = readings(&rpc, &registry, "sensor-1");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "sensors/solar");
    assert_eq!(serde_json::from_slice::<Value>(&got[0].2).unwrap(), rm["Payload"]);

    // The same Seq again is a duplicate, not a second record.
    sensor.publish("devices/sensor-1/messages", rm.to_string());
    let dup = sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["seq"] == 1 && a["status"] != "recorded");
    assert_eq!(dup["status"], "duplicate");
    // Bad input is refused with a reason and loses nothing else.
    sensor.publish("devices/sensor-1/messages", "{not json");
    let bad = sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["status"] == "rejected");
    assert!(bad["reason"].as_str().unwrap().starts_with("message is not JSON"), "{bad}");

    // A device-signed reading goes through recordSigned: the chain checks the device's key.
    let chain_id = net.network.chain_id;
    let signed = |seq: u64, payload: &str, signer: &alloy_signer_local::PrivateKeySigner| {
        let registry: Address = registry.parse().unwrap();
        let digest = keccak256(
            (
                U256::from(chain_id),
                registry,
                keccak256("sensor-1"),
                seq,
                keccak256("sensors/signed"),
                keccak256(payload),
            )
                .abi_encode(),
        );
        let signature = signer.sign_message_sync(digest.as_slice()).unwrap();
        json!({"Payload": payload, "Topic": "sensors/signed", "Seq": seq,
               "Signature": format!("0x{}", alloy_primitives::hex::encode(signature.as_bytes()))})
    };
    let device_key = key(net.device(0).private_key.as_str());
    sensor.publish("devices/sensor-1/messages", signed(100, "{\"H\":4210}", &device_key).to_string());
    let ack =
        sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["seq"] == 100 && a["status"] != "accepted");
    assert_eq!(ack["status"], "recorded", "{ack}");
    rpc.wait_receipt(ack["txHash"].as_str().unwrap()); // node 0 may apply the block a moment later
    let tx = rpc.call("eth_getTransactionByHash", json!([ack["txHash"]]));
    let selector = alloy_primitives::hex::encode(
        <fogchain_contracts::SensorRegistry::recordSignedCall as alloy_sol_types::SolCall>::SELECTOR,
    );
    assert!(tx["input"].as_str().unwrap().starts_with(&format!("0x{selector}")), "not recordSigned: {tx}");
    assert!(tx["to"].as_str().unwrap().eq_ignore_ascii_case(&registry));
    let last = readings(&rpc, &registry, "sensor-1").pop().unwrap();
    assert_eq!(
        (last.0, last.2.as_slice()),
        (100, b"{\"H\":4210}".as_slice()),
        "recorded under the device's own seq"
    );
    // signed with another key: the contract refuses it, the device is told why
    let forger = key(net.device(1).private_key.as_str());
    sensor.publish("devices/sensor-1/messages", signed(101, "{\"H\":1}", &forger).to_string());
    let ack =
        sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["seq"] == 101 && a["status"] != "accepted");
    assert_eq!(ack["status"], "failed", "{ack}");
    assert!(ack["reason"].as_str().unwrap().contains("signature is not the device's"), "{ack}");
    // Signed readings sent back to back reach the chain in seq order (each needs seq > last).
    for seq in [102, 103, 104] {
        sensor.publish(
            "devices/sensor-1/messages",
            signed(seq, &format!("{{\"n\":{seq}}}"), &device_key).to_string(),
        );
    }
    for seq in [102, 103, 104] {
        let ack =
            sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["seq"] == seq && a["status"] != "accepted");
        assert_eq!(ack["status"], "recorded", "{ack}");
    }

    // Action messages (the paper's AM) yield the exact danger index on Publish_Topic.
    let actuator = net.mqtt_device(2);
    assert_eq!(net.device(2).id, "actuator-1");
    assert_eq!(actuator.subscribe("devices/actuator-1/commands"), vec![true]);
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(shared_data().join("danger-index-vectors.json")).unwrap(),
    )
    .unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    let mut latencies = Vec::new();
    for (i, case) in cases.iter().take(6).enumerate() {
        let am = json!({
            "Payload": "", "Topic": "fire/danger",
            "MessageContent": {
                "Address": danger_index,
                "Values": {"CS": case["cs"], "P": case["p"], "H": case["h"]},
                "Publish_Topic": "devices/actuator-1/commands",
            },
            "Seq": 200 + i,
        });
        let sent = std::time::Instant::now();
        sensor.publish("devices/sensor-1/messages", am.to_string());
        let decision = actuator.wait_json("devices/actuator-1/commands", WAIT, |_| true);
        latencies.push(sent.elapsed());
        assert_eq!(decision["diX100"], case["di_x100"], "case {i}: {decision}");
        assert_eq!(decision["risk"], case["risk"], "case {i}");
        assert_eq!(decision["device"], "sensor-1");
        let receipt = rpc.wait_receipt(decision["txHash"].as_str().unwrap());
        assert_eq!(receipt["status"], "0x1");
    }
    latencies.sort();
    println!("AM -> decision on Publish_Topic (one chain round trip): {latencies:?}");
    // An AM the contract refuses (humidity over 100 %) fails with the contract's reason.
    let am = json!({"MessageContent": {"Address": danger_index, "Values": {"CS": 100, "P": 0, "H": [10001, 0, 0, 0, 0]},
        "Publish_Topic": "devices/actuator-1/commands"}, "Seq": 250});
    sensor.publish("devices/sensor-1/messages", am.to_string());
    let failed =
        sensor.wait_json("devices/sensor-1/acks", WAIT, |a| a["seq"] == 250 && a["status"] != "accepted");
    assert_eq!(failed["status"], "failed");
    assert!(failed["reason"].as_str().unwrap().contains("humidity out of range"), "{failed}");

    // A device publishing under another device's prefix is disconnected; nothing is recorded.
    let other = net.mqtt_device(1);
    assert_eq!(net.device(1).id, "sensor-2");
    other.publish(
        "devices/sensor-1/messages",
        json!({"Payload": "forged", "Topic": "t", "Seq": 99}).to_string(),
    );
    other.wait_closed(WAIT);
    // Throttling: sensor-2 over its rate (10 messages/s, burst 20) gets refusals with a reason.
    let other = net.mqtt_device(1);
    other.subscribe("devices/sensor-2/acks");
    for n in 1..=40 {
        other.publish(
            "devices/sensor-2/messages",
            json!({"Payload": {"n": n}, "Topic": "sensors/rain", "Seq": n}).to_string(),
        );
    }
    let throttled = other.wait_json("devices/sensor-2/acks", WAIT, |a| a["status"] == "rejected");
    assert!(throttled["reason"].as_str().unwrap().contains("rate limit"), "{throttled}");
    // the forged message never reached the chain
    let sensor1 = readings(&rpc, &registry, "sensor-1");
    assert!(sensor1.iter().all(|r| r.2 != b"forged"), "{sensor1:?}");

    // Device shadow: desired -> delta; reported; version conflict.
    let shadow = "$fogchain/things/actuator-1/shadow";
    assert_eq!(actuator.subscribe(&format!("{shadow}/#")), vec![true]);
    assert_eq!(actuator.subscribe("$fogchain/things/sensor-1/shadow/#"), vec![false]);
    actuator.publish(
        &format!("{shadow}/update"),
        json!({"state": {"desired": {"valve": "open"}}, "clientToken": "c1"}).to_string(),
    );
    let delta = actuator.wait_json(&format!("{shadow}/update/delta"), WAIT, |_| true);
    assert_eq!(delta["state"], json!({"valve": "open"}));
    let version = delta["version"].as_u64().unwrap();
    actuator.publish(
        &format!("{shadow}/update"),
        json!({"state": {"reported": {"valve": "open"}}, "version": version, "clientToken": "c2"})
            .to_string(),
    );
    let accepted =
        actuator.wait_json(&format!("{shadow}/update/accepted"), WAIT, |a| a["clientToken"] == "c2");
    assert_eq!(accepted["version"], version + 1);
    actuator.publish(
        &format!("{shadow}/update"),
        json!({"state": {"reported": {"valve": "shut"}}, "version": version, "clientToken": "c3"})
            .to_string(),
    );
    let rejected = actuator.wait_json(&format!("{shadow}/update/rejected"), WAIT, |_| true);
    assert_eq!(
        (rejected["code"].as_u64(), rejected["message"].as_str()),
        (Some(409), Some("Version conflict"))
    );
    actuator.publish(&format!("{shadow}/get"), json!({"clientToken": "c4"}).to_string());
    let doc = actuator.wait_json(&format!("{shadow}/get/accepted"), WAIT, |_| true);
    assert_eq!(doc["state"]["reported"]["valve"], "open");
    assert!(doc["state"].get("delta").is_none(), "{doc}");
    assert_eq!(doc["clientToken"], "c4");
}
