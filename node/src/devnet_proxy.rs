//! The devnet's IoT proxy: demo devices, the proxy's gateway account, its config and process.
//!
//! Files in `DIR/proxy/` (created with the network, reused afterwards): `gateway.key` (the
//! proxy's own account: funded and made a gateway of SensorRegistry and DangerIndex in genesis),
//! `devices.json` (demo devices: id, kind, password, signing key; registered in DeviceRegistry
//! in genesis), `api.token` (an admin bearer token for the gateway), `proxy.toml` (rewritten at
//! every start), `data/` (journal, shadows) and `proxy.log`.

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use eyre::{bail, WrapErr};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::process::Child;

/// Demo devices: (id, kind).
const DEMO_DEVICES: [(&str, &str); 4] =
    [("sensor-1", "sensor"), ("sensor-2", "sensor"), ("actuator-1", "actuator"), ("locker-1", "locker")];

/// One demo device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DemoDevice {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) password: String,
    pub(crate) private_key: String,
}

impl DemoDevice {
    fn signer(&self) -> eyre::Result<PrivateKeySigner> {
        Ok(self.private_key.trim_start_matches("0x").parse()?)
    }
}

/// What the genesis needs to know about the proxy.
pub(crate) struct IotSetup {
    pub(crate) gateway: Address,
    pub(crate) devices: Vec<DemoDevice>,
}

impl IotSetup {
    /// `(on-chain id, key address, kind)` of each device, for DeviceRegistry.register.
    pub(crate) fn registrations(&self) -> eyre::Result<Vec<(B256, Address, String)>> {
        self.devices
            .iter()
            .map(|d| Ok((fogchain_proxy::bridge::device_key(&d.id), d.signer()?.address(), d.kind.clone())))
            .collect()
    }
}

fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

/// Loads `dir` or creates the gateway key, demo devices and API token there.
pub(crate) fn load_or_create(dir: &Path) -> eyre::Result<IotSetup> {
    std::fs::create_dir_all(dir)?;
    let key_path = dir.join("gateway.key");
    let gateway = fogchain_node::seal::load_or_create_key(&key_path)?.address();
    let devices_path = dir.join("devices.json");
    let devices: Vec<DemoDevice> = match std::fs::read(&devices_path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).wrap_err_with(|| format!("{}", devices_path.display()))?
        }
        Err(_) => {
            let devices: Vec<DemoDevice> = DEMO_DEVICES
                .iter()
                .map(|(id, kind)| DemoDevice {
                    id: id.to_string(),
                    kind: kind.to_string(),
                    password: random_hex(12),
                    private_key: format!("0x{}", hex::encode(PrivateKeySigner::random().to_bytes())),
                })
                .collect();
            fogchain_node::seal::write_private(&devices_path, &serde_json::to_string_pretty(&devices)?)?;
            devices
        }
    };
    if !dir.join("api.token").exists() {
        let (token, _) = fogchain_proxy::auth::new_token();
        fogchain_node::seal::write_private(&dir.join("api.token"), &token)?;
    }
    Ok(IotSetup { gateway, devices })
}

/// Ports of the proxy.
pub(crate) struct ProxyPorts {
    pub(crate) http: u16,
    pub(crate) mqtt: u16,
}

/// Writes `DIR/proxy/proxy.toml` for nodes at `rpc_urls`; ports 0 are replaced by free ones so
/// that a restarted proxy listens where it did.
pub(crate) fn write_config(
    dir: &Path,
    chain_id: u64,
    rpc_urls: &[String],
    ports: &ProxyPorts,
    contracts: &Value,
    node_admin_token: &str,
) -> eyre::Result<PathBuf> {
    let setup = load_or_create(dir)?;
    let token = std::fs::read_to_string(dir.join("api.token"))?.trim().to_string();
    let token_hash = hex::encode(fogchain_proxy::auth::sha256(token.as_bytes()));
    let port = |p: u16| -> eyre::Result<u16> {
        if p == 0 {
            crate::devnet::free_port()
        } else {
            Ok(p)
        }
    };
    let mut devices = String::new();
    for d in &setup.devices {
        let role = if d.kind == "locker" { "locker" } else { "device" };
        devices.push_str(&format!(
            "\n[[devices]]\nid = \"{}\"\nrole = \"{role}\"\npassword-hash = \"{}\"\n",
            d.id,
            fogchain_proxy::auth::hash_password(&d.password)?
        ));
    }
    let text = format!(
        r#"# Written by `fogchain devnet` at every start; edit the devnet flags instead.
data-dir = "data"

[upstream]
nodes = {nodes}
admin-token = "{node_admin_token}"

[http]
listen = "127.0.0.1:{http}"

[mqtt]
mode = "embedded"
listen = "127.0.0.1:{mqtt}"

[chain]
chain-id = {chain_id}
gateway-key-file = "gateway.key"
sensor-registry = "{registry}"
danger-index = ["{danger}"]

[[clients]]
name = "devnet-admin"
role = "admin"
token-sha256 = "{token_hash}"
{devices}"#,
        nodes = serde_json::to_string(rpc_urls)?,
        node_admin_token = node_admin_token,
        http = port(ports.http)?,
        mqtt = port(ports.mqtt)?,
        registry = contracts["SensorRegistry"].as_str().unwrap_or_default(),
        danger = contracts["DangerIndex"].as_str().unwrap_or_default(),
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Starts `fogchain proxy --config CONFIG` (dies with the launcher).
pub(crate) fn spawn(dir: &Path, config: &Path) -> eyre::Result<Child> {
    let _ = std::fs::remove_file(dir.join("data/proxy.addr.json"));
    crate::devnet::spawn_child("proxy", config, &dir.join("proxy.log")).wrap_err("starting the proxy")
}

/// Waits until the proxy wrote its addresses; returns (http, mqtt).
pub(crate) async fn wait_ready(dir: &Path, child: &mut Child) -> eyre::Result<(SocketAddr, SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let path = dir.join("data/proxy.addr.json");
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("the proxy exited with {status}:\n{}", tail.join("\n"));
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let http = v["http"].as_str().and_then(|s| s.parse().ok());
                let mqtt = v["mqtt"].as_str().and_then(|s| s.parse().ok());
                if let (Some(h), Some(m)) = (http, mqtt) {
                    return Ok((h, m));
                }
            }
        }
        if Instant::now() > deadline {
            bail!("the proxy did not start within 60 s; see {}", dir.join("proxy.log").display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `"proxy"` section of network.json.
pub(crate) fn network_json(
    dir: &Path,
    http: SocketAddr,
    mqtt: SocketAddr,
    pid: Option<u32>,
) -> eyre::Result<Value> {
    let setup = load_or_create(dir)?;
    let token = std::fs::read_to_string(dir.join("api.token"))?.trim().to_string();
    let device = |d: &DemoDevice| -> eyre::Result<Value> {
        Ok(json!({
            "id": d.id,
            "kind": d.kind,
            "username": d.id,
            "password": d.password,
            "privateKey": d.private_key,
            "address": d.signer()?.address(),
        }))
    };
    let devices: Vec<Value> =
        setup.devices.iter().filter(|d| d.kind != "locker").map(device).collect::<Result<_, _>>()?;
    let locker = setup.devices.iter().find(|d| d.kind == "locker").map(device).transpose()?;
    Ok(json!({
        "http": format!("http://{http}"),
        "mqtt": format!("mqtt://{mqtt}"),
        "token": token,
        "gateway": setup.gateway,
        "config": dir.join("proxy.toml"),
        "pid": pid,
        "devices": devices,
        "locker": locker,
    }))
}
