//! Third-party clients against a devnet's proxy: paho-mqtt (PyPI) as an MQTT 5 device using
//! request/response and QoS 2 (tests/py/paho_mqtt5.py); MQTT.js (npm) over WebSocket, as a
//! browser connects, with MQTT 5 and 3.1.1 (tests/js/mqtt-ws.mjs); ethers and ws (npm) over the
//! gateway's JSON-RPC WebSocket with roles (tests/js/gateway-ws.mjs). scripts/test.sh installs
//! them.

use fogchain_e2e::{run_client, Devnet};

fn run(program: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    run_client(program, script, &[dir.path().join("network.json").as_os_str()]);
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
