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
use fogchain_devnet::{DeviceEntry, ProxyEntry};
use fogchain_proxy::config::{
    ChainConfig, ClientConfig, DeviceConfig, HttpConfig, MqttConfig, ProxyConfig, UpstreamConfig,
    WarehouseConfig,
};
use serde::{Deserialize, Serialize};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::process::Child;

/// Demo devices: (id, kind).
const DEMO_DEVICES: [(&str, &str); 4] =
    [("sensor-1", "sensor"), ("sensor-2", "sensor"), ("actuator-1", "actuator"), ("locker-1", "locker")];

/// Logins of the browser apps (`/app/`): (name, role). `viewer` cannot change shadows.
const APP_USERS: [(&str, &str); 3] = [("operator", "admin"), ("viewer", "viewer"), ("shop", "dapp")];

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
    /// App logins (`users.json`).
    pub(crate) users: Vec<fogchain_devnet::UserEntry>,
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
    let users_path = dir.join("users.json");
    let users: Vec<fogchain_devnet::UserEntry> = match std::fs::read(&users_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).wrap_err_with(|| format!("{}", users_path.display()))?,
        Err(_) => {
            let users: Vec<_> = APP_USERS
                .iter()
                .map(|(name, role)| fogchain_devnet::UserEntry {
                    name: name.to_string(),
                    role: role.to_string(),
                    password: random_hex(12),
                })
                .collect();
            fogchain_node::seal::write_private(&users_path, &serde_json::to_string_pretty(&users)?)?;
            users
        }
    };
    Ok(IotSetup { gateway, devices, users })
}

/// Ports of the proxy.
pub(crate) struct ProxyPorts {
    pub(crate) http: u16,
    pub(crate) mqtt: u16,
    pub(crate) mqtt_ws: u16,
    pub(crate) metrics: Option<SocketAddr>,
}

/// Writes `DIR/proxy/proxy.toml` for nodes at `rpc_urls` (serialised from the proxy's own
/// config type); ports 0 are replaced by free ones so that a restarted proxy listens where it
/// did.
pub(crate) fn write_config(
    dir: &Path,
    chain_id: u64,
    rpc_urls: &[String],
    ports: &ProxyPorts,
    contracts: &Contracts,
    node_admin_token: &str,
) -> eyre::Result<PathBuf> {
    let setup = load_or_create(dir)?;
    let token = std::fs::read_to_string(dir.join("api.token"))?.trim().to_string();
    let port = |p: u16| if p == 0 { crate::process::free_port() } else { Ok(p) };
    let devices = setup
        .devices
        .iter()
        .map(|d| {
            Ok(DeviceConfig {
                id: d.id.clone(),
                password_hash: Some(fogchain_proxy::auth::hash_password(&d.password)?),
                role: if d.kind == "locker" { "locker" } else { "device" }.into(),
                // the demo's sensors decide for the demo's actuators
                commands: match d.kind.as_str() {
                    "sensor" => {
                        setup.devices.iter().filter(|a| a.kind == "actuator").map(|a| a.id.clone()).collect()
                    }
                    _ => Vec::new(),
                },
            })
        })
        .collect::<eyre::Result<_>>()?;
    let config = ProxyConfig {
        data_dir: "data".into(),
        upstream: UpstreamConfig::new(rpc_urls.to_vec(), Some(node_admin_token.to_string())),
        http: HttpConfig::new(SocketAddr::from(([127, 0, 0, 1], port(ports.http)?))),
        limits: Default::default(),
        roles: Default::default(),
        clients: std::iter::once(Ok(ClientConfig {
            name: "devnet-admin".into(),
            role: "admin".into(),
            token_sha256: Some(hex::encode(fogchain_proxy::auth::sha256(token.as_bytes()))),
            password_hash: None,
            cert_cn: None,
        }))
        .chain(setup.users.iter().map(|u| {
            Ok::<_, eyre::Report>(ClientConfig {
                name: u.name.clone(),
                role: u.role.clone(),
                token_sha256: None,
                password_hash: Some(fogchain_proxy::auth::hash_password(&u.password)?),
                cert_cn: None,
            })
        }))
        .collect::<eyre::Result<_>>()?,
        devices,
        mqtt: Some(MqttConfig {
            ws_listen: Some(SocketAddr::from(([127, 0, 0, 1], port(ports.mqtt_ws)?))),
            ..MqttConfig::embedded(SocketAddr::from(([127, 0, 0, 1], port(ports.mqtt)?)))
        }),
        chain: ChainConfig::new(
            chain_id,
            "gateway.key".into(),
            contracts.sensor_registry,
            vec![contracts.danger_index],
        ),
        warehouse: WarehouseConfig { sale_factory: Some(contracts.sale_factory), ..Default::default() },
        metrics: fogchain_proxy::config::MetricsConfig {
            addr: ports
                .metrics
                .map(|a| Ok::<_, eyre::Report>(SocketAddr::new(a.ip(), port(a.port())?)))
                .transpose()?,
            ..Default::default()
        },
    };
    let text = format!(
        "# Written by `fogchain devnet` at every start; edit the devnet flags instead.\n{}",
        toml::to_string(&config)?
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The contracts the proxy's bridge uses.
pub(crate) struct Contracts {
    pub(crate) sensor_registry: Address,
    pub(crate) danger_index: Address,
    pub(crate) sale_factory: Address,
}

/// Starts `fogchain-proxy --config CONFIG` (dies with the launcher).
pub(crate) fn spawn(dir: &Path, config: &Path) -> eyre::Result<Child> {
    let _ = std::fs::remove_file(dir.join("data/proxy.addr.json"));
    crate::process::spawn_child(&crate::process::proxy_bin(), None, config, &dir.join("proxy.log"))
        .wrap_err("starting the proxy")
}

/// Waits until the proxy wrote its addresses; returns (http, mqtt).
pub(crate) async fn wait_ready(dir: &Path, child: &mut Child) -> eyre::Result<fogchain_proxy::ListenAddrs> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let path = dir.join("data/proxy.addr.json");
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("the proxy exited with {status}:\n{}", tail.join("\n"));
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(addr) = serde_json::from_str::<fogchain_proxy::ListenAddrs>(&text) {
                if addr.mqtt.is_some() {
                    return Ok(addr);
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
pub(crate) fn network_entry(
    dir: &Path,
    addrs: &fogchain_proxy::ListenAddrs,
    pid: Option<u32>,
) -> eyre::Result<ProxyEntry> {
    let setup = load_or_create(dir)?;
    let token = std::fs::read_to_string(dir.join("api.token"))?.trim().to_string();
    let device = |d: &DemoDevice| -> eyre::Result<DeviceEntry> {
        Ok(DeviceEntry {
            id: d.id.clone(),
            kind: d.kind.clone(),
            username: d.id.clone(),
            password: d.password.clone(),
            private_key: d.private_key.clone(),
            address: d.signer()?.address(),
        })
    };
    let devices =
        setup.devices.iter().filter(|d| d.kind != "locker").map(device).collect::<Result<_, _>>()?;
    let locker = setup.devices.iter().find(|d| d.kind == "locker").map(device).transpose()?;
    let mqtt = addrs.mqtt.ok_or_else(|| eyre::eyre!("the proxy serves no MQTT"))?;
    Ok(ProxyEntry {
        app: Some(format!("http://{}/app/", addrs.http)),
        users: setup.users.clone(),
        http: format!("http://{}", addrs.http),
        mqtt: format!("mqtt://{mqtt}"),
        mqtt_ws: addrs.mqtt_ws.map(|a| format!("ws://{a}/mqtt")),
        metrics: addrs.metrics.map(|a| format!("http://{a}/metrics")),
        token,
        gateway: setup.gateway,
        config: dir.join("proxy.toml"),
        pid,
        devices,
        locker,
    })
}
