//! The bridge against an external broker: Debian's Mosquitto with a password file and the ACL
//! of docs/proxy.md. Devices talk to Mosquitto; the proxy is one of its clients.

use fogchain_e2e::{free_port, mqtt::Mqtt, readings, wait_for, Devnet};
use serde_json::json;
use std::{process::Command, time::Duration};

const WAIT: Duration = Duration::from_secs(120);

struct Broker(std::process::Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bridge_through_an_external_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let mosquitto = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect(
            "the mosquitto broker is missing: apt-get install -y mosquitto (scripts/test.sh installs it)",
        );

    // Mosquitto with passwords for the devices and the bridge, and per-device topic ACLs.
    let conf_dir = dir.path().join("mosquitto");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let passwd = conf_dir.join("passwd");
    let mut users: Vec<(String, String)> = (0..3)
        .map(|i| {
            let d = net.device(i);
            (d.id.clone(), d.password.clone())
        })
        .collect();
    users.push(("fogchain-bridge".into(), "bridge-secret".into()));
    for (i, (user, password)) in users.iter().enumerate() {
        let mut c = Command::new("mosquitto_passwd");
        if i == 0 {
            c.arg("-c");
        }
        let status = c.arg("-b").arg(&passwd).arg(user).arg(password).status().unwrap();
        assert!(status.success());
    }
    let acl = conf_dir.join("acl");
    std::fs::write(
        &acl,
        "pattern readwrite devices/%u/#\npattern readwrite $fogchain/things/%u/shadow/#\nuser fogchain-bridge\ntopic readwrite #\ntopic readwrite $fogchain/#\n",
    )
    .unwrap();
    let port = free_port();
    let conf = conf_dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\n",
            passwd.display(),
            acl.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(conf_dir.join("mosquitto.log")).unwrap();
    let _broker = Broker(
        Command::new(mosquitto)
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for("mosquitto listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());

    // The proxy, now bridged to Mosquitto.
    let external = format!("mode = \"external\"\nbroker = \"127.0.0.1:{port}\"\nusername = \"fogchain-bridge\"\npassword = \"bridge-secret\"");
    let _proxy = net.rerun_proxy("proxy-external", |text| {
        let start = text.find("mode = \"embedded\"").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        format!("{}{external}{}", &text[..start], &text[end..])
    });

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
