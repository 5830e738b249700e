//! When the chain is unreachable the proxy keeps accepting device messages up to its queue
//! bound, refuses the rest with a reason, and records the accepted ones once the nodes are back.

use fogchain_e2e::{kill, readings, Devnet};
use serde_json::json;
use std::{collections::BTreeSet, time::Duration};

const WAIT: Duration = Duration::from_secs(180);

#[test]
fn messages_queue_while_the_chain_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    // The proxy with a queue of 5 messages.
    let _proxy = net.rerun_proxy("proxy-queue", |text| {
        text.replacen("mode = \"embedded\"\n", "mode = \"embedded\"\nqueue-limit = 5\n", 1)
    });

    let sensor = net.mqtt_device(0);
    let id = net.device(0).id.as_str().to_string();
    let acks = format!("devices/{id}/acks");
    sensor.subscribe(&acks);

    // Every node stops answering (SIGSTOP: connections hang, as behind a dead link).
    let pids: Vec<i32> = net.network.nodes.iter().map(|n| n.pid.unwrap() as i32).collect();
    for p in &pids {
        kill(*p, libc::SIGSTOP);
    }
    for n in 1..=8u64 {
        sensor.publish(
            &format!("devices/{id}/messages"),
            json!({"Payload": {"n": n}, "Topic": "sensors/queue", "Seq": n}).to_string(),
        );
    }
    let (mut accepted, mut refused) = (BTreeSet::new(), BTreeSet::new());
    while accepted.len() + refused.len() < 8 {
        let ack = sensor.wait_json(&acks, WAIT, |a| a["status"] == "accepted" || a["status"] == "rejected");
        let seq = ack["seq"].as_u64().unwrap();
        if ack["status"] == "accepted" {
            accepted.insert(seq);
        } else {
            assert!(ack["reason"].as_str().unwrap().contains("queue full"), "{ack}");
            refused.insert(seq);
        }
    }
    assert_eq!(accepted, (1..=5).collect(), "the first 5 are queued");
    assert_eq!(refused, (6..=8).collect(), "the rest are refused with a reason");

    // The nodes come back: every queued message is recorded, the refused ones are not.
    for p in &pids {
        kill(*p, libc::SIGCONT);
    }
    let mut recorded = BTreeSet::new();
    while recorded.len() < 5 {
        let ack = sensor.wait_json(&acks, WAIT, |a| a["status"] == "recorded");
        recorded.insert(ack["seq"].as_u64().unwrap());
    }
    assert_eq!(recorded, accepted);
    // node 0 (just resumed) may apply the last block a moment after the proxy saw its receipt
    let rpc = net.rpc(0);
    let registry = net.contract("SensorRegistry");
    let count = || readings(&rpc, &registry, &id).into_iter().filter(|r| r.1 == "sensors/queue").count();
    fogchain_e2e::wait_for("5 readings on node 0", || (count() >= 5).then_some(()));
    assert_eq!(count(), 5);
}
