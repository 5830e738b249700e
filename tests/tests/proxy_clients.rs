//! Third-party clients against a devnet's proxy: paho-mqtt (PyPI) as an MQTT 5 device using
//! request/response and QoS 2 (tests/py/paho_mqtt5.py); MQTT.js (npm) over WebSocket, as a
//! browser connects, with MQTT 5 and 3.1.1 (tests/js/mqtt-ws.mjs); ethers and ws (npm) over the
//! gateway's JSON-RPC WebSocket with roles (tests/js/gateway-ws.mjs). scripts/test.sh installs
//! them.

use fogchain_e2e::{repo_root, Devnet};
use std::process::Command;

fn run(program: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let output = Command::new(program)
        .arg(repo_root().join(script))
        .arg(dir.path().join("network.json"))
        .output()
        .unwrap_or_else(|e| panic!("run {program} {script} (scripts/test.sh installs its packages): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"ok\": true") || stdout.contains("\"ok\":true"), "{stdout}");
    println!("{stdout}");
    devnet.stop();
}

#[test]
fn paho_mqtt5_request_response_and_qos2() {
    run("python3", "tests/py/paho_mqtt5.py");
}

#[test]
fn mqtt_js_over_websocket() {
    run("node", "tests/js/mqtt-ws.mjs");
}

#[test]
fn ethers_subscribes_through_the_gateway_websocket_with_roles() {
    run("node", "tests/js/gateway-ws.mjs");
}
