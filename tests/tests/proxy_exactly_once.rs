//! Exactly once at the MQTT level, with raw packets: a QoS 2 PUBLISH re-sent with DUP before
//! PUBREL gets PUBREC again and is recorded once; a message without `Seq` sent again as a new
//! PUBLISH (a device that lost its ack) within the dedupe window is acknowledged as a duplicate
//! and recorded once.

use fogchain_e2e::{
    mqtt::{host_port, raw},
    readings, wait_for, Devnet,
};
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

/// PUBLISH at `qos` with packet id `pkid`; `dup` sets the DUP flag.
fn publish(topic: &str, payload: &str, qos: u8, pkid: u16, dup: bool) -> Vec<u8> {
    let mut body = Vec::new();
    raw::string(topic, &mut body);
    body.extend_from_slice(&pkid.to_be_bytes());
    body.extend_from_slice(payload.as_bytes());
    let mut p = vec![0x30 | (qos << 1) | if dup { 0x08 } else { 0 }];
    raw::remaining_length(body.len(), &mut p);
    p.extend(body);
    p
}

/// Reads one packet: (first byte, body).
fn read_packet(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (first[0], body)
}

/// Reads packets until one of type `kind` (high nibble) arrives.
fn expect(s: &mut TcpStream, kind: u8) -> Vec<u8> {
    loop {
        let (first, body) = read_packet(s);
        if first >> 4 == kind {
            return body;
        }
    }
}

#[test]
fn qos2_resends_and_seqless_repeats_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let device = net.device(0).clone();
    let (host, port) = host_port(&net.proxy_mqtt());
    let mut s = TcpStream::connect((host.as_str(), port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s.write_all(&raw::connect("raw-device", &device.username, &device.password)).unwrap();
    assert_eq!(expect(&mut s, 2), vec![0, 0], "CONNACK accepted");
    let topic = format!("devices/{}/messages", device.id);

    // QoS 2: PUBLISH, PUBREC; the same PUBLISH again with DUP; PUBREC again; PUBREL, PUBCOMP.
    let qos2 = r#"{"Payload": "qos2-once", "Topic": "exactly/once", "MessageContent": "raw"}"#;
    s.write_all(&publish(&topic, qos2, 2, 7, false)).unwrap();
    assert_eq!(expect(&mut s, 5), vec![0, 7], "PUBREC");
    s.write_all(&publish(&topic, qos2, 2, 7, true)).unwrap();
    assert_eq!(expect(&mut s, 5), vec![0, 7], "PUBREC for the re-sent PUBLISH");
    s.write_all(&[0x62, 0x02, 0x00, 0x07]).unwrap(); // PUBREL
    assert_eq!(expect(&mut s, 7), vec![0, 7], "PUBCOMP");

    // No Seq, QoS 1, sent twice as new PUBLISHes: both PUBACKed, recorded once.
    let seqless = r#"{"Payload": "seqless-once", "Topic": "exactly/once", "MessageContent": "raw"}"#;
    for pkid in [8u16, 9] {
        s.write_all(&publish(&topic, seqless, 1, pkid, false)).unwrap();
        assert_eq!(expect(&mut s, 4), pkid.to_be_bytes().to_vec(), "PUBACK");
    }

    let rpc = net.rpc(0);
    let registry = net.contract("SensorRegistry");
    let mine = || {
        readings(&rpc, &registry, &device.id)
            .into_iter()
            .filter(|r| r.1 == "exactly/once")
            .collect::<Vec<_>>()
    };
    // Both PUBACKs came after the journal decided (accepted or duplicate): once both readings are
    // on chain and the gateway has no transaction in flight, a second copy would be there too.
    let gateway = net.proxy().gateway;
    wait_for("both messages on chain and nothing in flight", || {
        let pending = rpc.quantity("eth_getTransactionCount", serde_json::json!([gateway, "pending"]));
        let latest = rpc.quantity("eth_getTransactionCount", serde_json::json!([gateway, "latest"]));
        (mine().len() >= 2 && pending == latest).then_some(())
    });
    let got = mine();
    let payloads: Vec<String> = got.iter().map(|r| String::from_utf8_lossy(&r.2).into_owned()).collect();
    assert_eq!(payloads.iter().filter(|p| *p == "qos2-once").count(), 1, "{payloads:?}");
    assert_eq!(payloads.iter().filter(|p| *p == "seqless-once").count(), 1, "{payloads:?}");
    net.stop();
}
