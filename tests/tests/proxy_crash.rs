//! The proxy is SIGKILLed while device messages are in flight and restarted: every message it
//! acked as accepted ends up on chain exactly once (journal + same signed transactions resent),
//! and a device that re-sends what it did not see acked creates no duplicates (Seq).

use fogchain_e2e::{
    kill,
    mqtt::{Mqtt, MqttEvent, ProxyProcess},
    Devnet,
};
use serde_json::{json, Value};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

const MESSAGES: u64 = 300;
/// Messages published at a time; 40 acks + 4 chunks stay below MESSAGES.
const CHUNK: u64 = 20;

fn drain_acks(m: &Mqtt, accepted: &mut BTreeSet<u64>, recorded: &mut BTreeSet<u64>, for_: Duration) {
    let deadline = Instant::now() + for_;
    while let Some(event) = m.next(deadline.saturating_duration_since(Instant::now())) {
        if let MqttEvent::Publish { payload, .. } = event {
            let ack: Value = serde_json::from_slice(&payload).unwrap();
            let seq = ack["seq"].as_u64().unwrap_or(0);
            match ack["status"].as_str() {
                Some("accepted") | Some("duplicate") => {
                    accepted.insert(seq);
                }
                Some("recorded") => {
                    recorded.insert(seq);
                }
                other => panic!("unexpected ack {other:?}: {ack}"),
            }
        }
    }
}

#[test]
fn acked_messages_survive_a_proxy_crash_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = Box::leak(Box::new(dir));
    eprintln!("DIR {}", dir.path().display());
    let net = Devnet::start(dir.path());
    let rpc = net.rpc(0);
    let registry = net.contract("SensorRegistry");
    let device = net.device(0);
    let (id, password) = (device.id.as_str(), device.password.as_str());
    let topic = format!("devices/{id}/messages");
    let acks = format!("devices/{id}/acks");
    let message = |n: u64| json!({"Payload": {"n": n}, "Topic": "sensors/crash", "Seq": n}).to_string();

    // Run the proxy with a device rate limit above this test's burst.
    let (proxy, config) = net.rerun_proxy("proxy-fast", |text| {
        text + "\n[limits]\ndevice-messages-per-second = 5000\ndevice-burst = 5000\n"
    });

    // kill -9 the proxy once some messages are acked and others in flight.
    let m = Mqtt::device(&net.proxy_mqtt(), "crash-1", id, password);
    m.subscribe(&acks);
    // Messages go out in chunks, at most three chunks ahead of the acks; once 40 are acked, one
    // more chunk is published and the proxy is killed at once, so that chunk is in flight.
    let (mut accepted, mut recorded) = (BTreeSet::new(), BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut published = 0;
    let publish_chunk = |published: &mut u64| {
        for n in *published + 1..=*published + CHUNK {
            m.publish(&topic, message(n));
        }
        *published += CHUNK;
    };
    while accepted.len() < 40 {
        assert!(Instant::now() < deadline, "no acks from the proxy");
        if published < accepted.len() as u64 + 3 * CHUNK {
            publish_chunk(&mut published);
        }
        drain_acks(&m, &mut accepted, &mut recorded, Duration::from_millis(20));
    }
    publish_chunk(&mut published);
    kill(proxy.child.id() as i32, libc::SIGKILL);
    drain_acks(&m, &mut accepted, &mut recorded, Duration::from_millis(200));
    let acked_before_crash = accepted.clone();
    drop(m);
    assert!(
        (acked_before_crash.len() as u64) < published,
        "every published message was acked before the crash; the test needs some in flight"
    );

    // Restart it; the device re-sends what it did not see accepted (same Seq).
    drop(proxy);
    let _proxy = ProxyProcess::start(&config);
    let m = Mqtt::device(&net.proxy_mqtt(), "crash-2", id, password);
    m.subscribe(&acks);
    for n in (1..=MESSAGES).filter(|n| !accepted.contains(n)) {
        m.publish(&topic, message(n));
    }
    // Wait until every seq is on chain.
    let deadline = Instant::now() + Duration::from_secs(300);
    let counts = loop {
        drain_acks(&m, &mut accepted, &mut recorded, Duration::from_millis(500));
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for (_, t, payload) in fogchain_e2e::readings(&rpc, &registry, id) {
            if t == "sensors/crash" {
                let v: Value = serde_json::from_slice(&payload).unwrap();
                *counts.entry(v["n"].as_u64().unwrap()).or_default() += 1;
            }
        }
        if counts.len() as u64 == MESSAGES || Instant::now() > deadline {
            break counts;
        }
    };
    println!("device after the restart: {:?} PUBLISH sent, PUBACK received", m.counters);
    for n in &acked_before_crash {
        assert!(counts.contains_key(n), "message {n} was acked before the crash but is not on chain");
    }
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    assert_eq!(
        counts.len() as u64,
        MESSAGES,
        "missing: {:?}",
        (1..=MESSAGES).filter(|n| !counts.contains_key(n)).collect::<Vec<_>>()
    );
    println!("acked before the crash: {}, all {MESSAGES} on chain exactly once", acked_before_crash.len());
}
