//! Scale-out: two proxies share the devices' messages through one Mosquitto with an MQTT shared
//! subscription (`$share/fogchain/devices/+/messages`), each with its own gateway account,
//! client id and journal. One is SIGKILLed mid-stream and restarted: every message the broker
//! accepted is on chain exactly once (the killed proxy's unacknowledged messages wait in its
//! persistent session at Mosquitto and are delivered when it is back; docs/proxy.md).

use alloy_primitives::{Address, TxKind, U256};
use alloy_sol_types::SolCall;
use fogchain_contracts::SensorRegistry;
use fogchain_e2e::{
    kill,
    mosquitto::{replace_mqtt_section, Mosquitto},
    mqtt::{Mqtt, ProxyProcess},
    process_alive, readings,
    tx::{eip1559, key, sign},
    wait_for, Devnet,
};
use serde_json::json;
use std::{collections::BTreeMap, path::Path, time::Duration};

/// Messages per device.
const PER_DEVICE: u64 = 150;

/// A proxy config for directory `dir` from the devnet's: its own gateway key, listeners on free
/// ports, no metrics, the shared group at `broker`, generous device rates.
fn group_member(
    base: &str,
    dir: &Path,
    key_file: &Path,
    client_id: &str,
    shadows: bool,
    broker: &Mosquitto,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    let mut section = "";
    for line in base.lines() {
        if line.starts_with('[') {
            section = if line.starts_with("[metrics]") { "skip" } else { "" };
        }
        if section == "skip" {
            continue;
        }
        if line.starts_with("gateway-key-file") {
            text.push_str(&format!("gateway-key-file = {:?}\n", key_file.display().to_string()));
        } else if line.starts_with("listen = ") && !text.contains("[mqtt]") {
            text.push_str("listen = \"127.0.0.1:0\"\n");
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    let extra = format!("client-id = \"{client_id}\"\nshared-group = \"fogchain\"\nshadows = {shadows}\n");
    let mut text = replace_mqtt_section(&text, &broker.proxy_section(&extra));
    text.push_str("\n[limits]\ndevice-messages-per-second = 1000\ndevice-burst = 1000\n");
    let config = dir.join("proxy.toml");
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn two_proxies_share_the_devices_and_a_killed_one_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let rpc = net.rpc(0);
    let chain_id = net.network.chain_id;
    let registry: Address = net.contract("SensorRegistry").parse().unwrap();

    // Proxy B's gateway account (a funded, permitted devnet account) becomes a gateway of
    // SensorRegistry (account 0 is its admin).
    let admin = key(&net.account_key(0));
    let b_key = net.account_key(7);
    let b_gateway = key(&b_key).address();
    let nonce = rpc.quantity("eth_getTransactionCount", json!([admin.address(), "pending"]));
    let call = SensorRegistry::addGatewayCall { gateway: b_gateway }.abi_encode();
    let (raw, hash) =
        sign(&admin, eip1559(chain_id, nonce, TxKind::Call(registry), U256::ZERO, call.into(), 200_000));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    assert_eq!(rpc.wait_receipt(&hash)["status"], "0x1");

    // Mosquitto, and the devnet's proxy replaced by two members of a shared group.
    let users: Vec<(String, String)> =
        (0..2).map(|i| (net.device(i).id.clone(), net.device(i).password.clone())).collect();
    let broker = Mosquitto::start(&dir.path().join("mosquitto"), &users);
    let pid = net.proxy().pid.expect("proxy pid") as i32;
    kill(pid, libc::SIGTERM);
    wait_for("the devnet's proxy to stop", || (!process_alive(pid)).then_some(()));
    let base = std::fs::read_to_string(net.proxy_config()).unwrap();
    let b_key_file = dir.path().join("proxy-b.key");
    std::fs::write(&b_key_file, b_key.trim_start_matches("0x")).unwrap();
    let a_config = group_member(
        &base,
        &dir.path().join("proxy/a"),
        &dir.path().join("proxy/gateway.key"),
        "bridge-a",
        true,
        &broker,
    );
    let b_config = group_member(&base, &dir.path().join("proxy/b"), &b_key_file, "bridge-b", false, &broker);
    let _a = ProxyProcess::start(&a_config);
    let mut b = ProxyProcess::start(&b_config);

    // Two sensors publish PER_DEVICE messages each (QoS 1: Mosquitto's PUBACK is the
    // acceptance); proxy B is SIGKILLed a third of the way and restarted two thirds in.
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let sensors: Vec<Mqtt> =
        users.iter().map(|(id, pw)| Mqtt::device(&url, &format!("{id}-pub"), id, pw)).collect();
    for i in 1..=PER_DEVICE {
        for (s, (id, _)) in sensors.iter().zip(&users) {
            let payload = json!({"Payload": format!("m-{id}-{i}"), "Topic": "scale/out", "MessageContent": "shared", "Seq": i});
            s.publish(&format!("devices/{id}/messages"), payload.to_string());
        }
        if i == PER_DEVICE / 3 {
            let _ = b.child.kill(); // SIGKILL
            let _ = b.child.wait();
        }
        if i == 2 * PER_DEVICE / 3 {
            b = ProxyProcess::start(&b_config);
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Every message on chain exactly once, recorded by one proxy or the other.
    let mut by_gateway: BTreeMap<String, usize> = BTreeMap::new();
    for (id, _) in &users {
        let got = wait_for(&format!("all of {id}'s messages on chain"), || {
            let r = readings(&rpc, &registry.to_string(), id);
            (r.iter().filter(|x| x.1 == "scale/out").count() as u64 >= PER_DEVICE).then_some(r)
        });
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in got.iter().filter(|x| x.1 == "scale/out") {
            *counts.entry(String::from_utf8_lossy(&r.2).into_owned()).or_default() += 1;
        }
        for i in 1..=PER_DEVICE {
            assert_eq!(counts.get(&format!("m-{id}-{i}")), Some(&1), "message {i} of {id}: {counts:?}");
        }
        assert_eq!(counts.len() as u64, PER_DEVICE);
    }
    // Both members recorded some (the broker shared the load).
    let gateways = [net.proxy().gateway, b_gateway];
    for g in gateways {
        let sent = rpc.quantity("eth_getTransactionCount", json!([g, "latest"]));
        by_gateway.insert(g.to_string(), sent as usize);
    }
    println!("transactions per gateway: {by_gateway:?}");
    for (name, gateway) in [("A", gateways[0]), ("B", gateways[1])] {
        let log =
            fogchain_e2e::mqtt::tail(&dir.path().join(format!("proxy/{}/proxy.log", name.to_lowercase())));
        assert!(by_gateway[&gateway.to_string()] > 1, "proxy {name} recorded nothing: {by_gateway:?}\n{log}");
    }
    drop(b);
}
