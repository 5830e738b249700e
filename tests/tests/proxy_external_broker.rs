//! The bridge against an external broker: Debian's Mosquitto with a password file and the ACL
//! of docs/proxy.md. Devices talk to Mosquitto; the proxy is one of its clients.

use fogchain_e2e::{
    mosquitto::{replace_mqtt_section, Mosquitto},
    mqtt::Mqtt,
    readings, Devnet,
};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

#[test]
fn bridge_through_an_external_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let users: Vec<(String, String)> = (0..3)
        .map(|i| {
            let d = net.device(i);
            (d.id.clone(), d.password.clone())
        })
        .collect();
    let broker = Mosquitto::start(&dir.path().join("mosquitto"), &users);
    let port = broker.port;

    // The proxy, now bridged to Mosquitto.
    let _proxy =
        net.rerun_proxy("proxy-external", |text| replace_mqtt_section(&text, &broker.proxy_section("")));

    let url = format!("mqtt://127.0.0.1:{port}");
    let (sensor, sensor_pw) = (users[0].0.clone(), users[0].1.clone());
    let device = Mqtt::device(&url, "ext-sensor", &sensor, &sensor_pw);
    assert_eq!(device.subscribe(&format!("devices/{sensor}/acks")), vec![true]);
    device.publish(
        &format!("devices/{sensor}/messages"),
        json!({"Payload": {"P": 120}, "Topic": "sensors/rain", "MessageContent": "via mosquitto", "Seq": 1})
            .to_string(),
    );
    let ack = device.wait_json(&format!("devices/{sensor}/acks"), WAIT, |a| a["status"] == "recorded");
    assert_eq!(ack["seq"], 1);
    let rpc = net.rpc(0);
    let registry = net.contract("SensorRegistry");
    rpc.wait_receipt(ack["txHash"].as_str().unwrap()); // node 0 may apply the block a moment later
    assert!(readings(&rpc, &registry, &sensor).iter().any(|r| r.1 == "sensors/rain"));

    // Mosquitto's ACL drops another device's forged message; nothing reaches the chain.
    let (other, other_pw) = (users[1].0.clone(), users[1].1.clone());
    let forger = Mqtt::device(&url, "ext-forger", &other, &other_pw);
    forger.publish(
        &format!("devices/{sensor}/messages"),
        json!({"Payload": "forged", "Topic": "x", "Seq": 9}).to_string(),
    );
    // A later genuine message is recorded, and the forged one is not.
    device.publish(
        &format!("devices/{sensor}/messages"),
        json!({"Payload": "genuine", "Topic": "sensors/rain", "Seq": 2}).to_string(),
    );
    let ack = device
        .wait_json(&format!("devices/{sensor}/acks"), WAIT, |a| a["seq"] == 2 && a["status"] == "recorded");
    rpc.wait_receipt(ack["txHash"].as_str().unwrap());
    let got = readings(&rpc, &registry, &sensor);
    assert!(got.iter().all(|r| r.2 != b"forged"), "{got:?}");

    // Shadows use the real $fogchain prefix at an external broker.
    let shadow = format!("$fogchain/things/{sensor}/shadow");
    assert_eq!(device.subscribe(&format!("{shadow}/update/#")), vec![true]);
    device.publish(&format!("{shadow}/update"), json!({"state": {"desired": {"interval": 60}}}).to_string());
    let delta = device.wait_json(&format!("{shadow}/update/delta"), WAIT, |_| true);
    assert_eq!(delta["state"]["interval"], 60);
}
