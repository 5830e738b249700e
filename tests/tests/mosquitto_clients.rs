//! `scripts/mqtt-e2e.sh` with Debian's mosquitto_pub / mosquitto_sub against a devnet's proxy
//! (scripts/test.sh installs mosquitto-clients when missing).

use fogchain_e2e::{repo_root, Devnet};

#[test]
fn mosquitto_clients_against_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/mqtt-e2e.sh"))
        .arg(net.dir.join("network.json"))
        .output()
        .expect("run scripts/mqtt-e2e.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "mqtt-e2e.sh failed:\n{text}");
    assert!(text.contains("mqtt-e2e: all checks passed"));
}
