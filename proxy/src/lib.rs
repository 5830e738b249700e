//! The Fogchain IoT proxy: how devices and outside apps reach the chain.
//!
//! It runs on its own host and talks to the nodes over JSON-RPC only:
//! - [`gateway`]: authenticated, rate-limited, load-balanced JSON-RPC over HTTP / HTTPS;
//! - [`mqtt`] + [`bridge`]: an MQTT broker (embedded rumqttd behind an authenticating front, or an
//!   external one) whose device messages become transactions, with a crash-safe [`journal`];
//! - [`shadow`]: AWS-IoT-style device shadows;
//! - [`warehouse`] + [`barcode`]: the sales-order locker release with a signed challenge;
//! - [`things`] + [`session`] + [`app`]: the browser apps (shop, dashboard) and their HTTP API;
//! - [`certs`]: a private CA and device certificates for X.509 client authentication.

pub mod app;
pub mod auth;
pub mod barcode;
pub mod bridge;
pub mod certs;
pub mod chain;
pub mod config;
mod error;
pub mod gateway;
mod gateway_ws;
pub mod guard;
pub mod journal;
mod metrics;
pub mod mqtt;
pub mod session;
pub mod shadow;
pub mod tasks;
pub mod things;
pub mod tls;
pub mod upstream;
pub mod warehouse;

pub use error::{ProxyError, Result};

use config::{MqttMode, ProxyConfig};
use std::{net::SocketAddr, sync::Arc};

/// Makes glibc serve allocations of 1 MiB and more with mmap and unmap them when freed.
///
/// Each argon2id password check allocates a 19 MiB block. glibc's default threshold adapts: after
/// the first such block is freed, later ones come from the arenas and stay there, and with a
/// thread's allocations hopping between arenas a burst of wrong-password CONNECTs left ~300 MiB
/// resident (measured with tests/tests/proxy_hostile.rs). A fixed threshold keeps the resident
/// memory at what the running checks need (`[limits] auth-parallel` x 19 MiB).
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy for later allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// File in the proxy's data dir where a running proxy writes its [`ListenAddrs`] (JSON), for
/// launchers and tests (ports may be 0 in the config).
pub const LISTEN_ADDRS_FILE: &str = "proxy.addr.json";

/// Where a running proxy listens.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct ListenAddrs {
    /// The JSON-RPC gateway.
    pub http: SocketAddr,
    /// MQTT (embedded broker only).
    pub mqtt: Option<SocketAddr>,
    /// MQTT over WebSocket (embedded broker, `[mqtt] ws-listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_ws: Option<SocketAddr>,
    /// Prometheus `/metrics`, when `[metrics] addr` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    /// Where the JSON-RPC gateway listens.
    pub http: SocketAddr,
    /// Where devices connect over MQTT (embedded broker only).
    pub mqtt: Option<SocketAddr>,
    /// Where browsers connect over MQTT over WebSocket (`[mqtt] ws-listen`).
    pub mqtt_ws: Option<SocketAddr>,
    /// Where Prometheus scrapes `/metrics` (`[metrics] addr`).
    pub metrics: Option<SocketAddr>,
    tasks: tasks::Tasks,
}

impl Proxy {
    /// Starts everything `config` describes. Fails early on a bad key, certificate, or a node
    /// that serves another chain id; nodes that are down are only logged (the proxy queues).
    pub async fn start(config: &ProxyConfig) -> crate::Result<Self> {
        return_large_blocks_to_the_os();
        std::fs::create_dir_all(&config.data_dir)?;
        let auth = auth::Authenticator::new(config)?;
        // The shutdown protocol of every long-lived task (tasks.rs).
        let tasks = tasks::Tasks::new();
        let upstream = upstream::Upstream::start(&config.upstream, &tasks)?;
        let chain = Arc::new(chain::Chain::new(
            upstream.clone(),
            &config.chain.gateway_key_file,
            config.chain.chain_id,
        )?);
        match chain.check_chain_id().await {
            Ok(()) => match chain.gateway_permitted().await {
                Ok(true) => {}
                Ok(false) => tracing::error!(
                    gateway = %chain.address(),
                    "the network's account permissioning does not let the gateway account transact: \
                     every transaction it sends will be refused until the admins permit it (docs/permissioning.md)"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot read the gateway account's permission"),
            },
            Err(e @ ProxyError::ChainIdMismatch { .. }) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "nodes not reachable yet"),
        }
        let mut mqtt_addr = None;
        let mut ws_addr = None;
        let mut bridge = None;
        let device_sessions = guard::Caps::<String>::sessions(&config.limits);
        if let Some(m) = &config.mqtt {
            let bind = |what: &'static str, addr: SocketAddr| async move {
                tokio::net::TcpListener::bind(addr).await.map_err(|source| ProxyError::Listen {
                    what,
                    addr,
                    source,
                })
            };
            let mut embedded = None;
            let link = match m.mode {
                MqttMode::Embedded => {
                    let broker = mqtt::EmbeddedBroker::start(config, m.max_packet_bytes).await?;
                    let listener = bind("MQTT", m.listen.expect("checked by config")).await?;
                    mqtt_addr = Some(listener.local_addr()?);
                    let ws = match m.ws_listen {
                        Some(addr) => Some(bind("MQTT over WebSocket", addr).await?),
                        None => None,
                    };
                    ws_addr = ws.as_ref().map(|l| l.local_addr()).transpose()?;
                    let tls = m.tls.as_ref().map(|t| tls::server_config(t, &[])).transpose()?;
                    let link = bridge::BrokerLink {
                        host: broker.bridge.ip().to_string(),
                        port: broker.bridge.port(),
                        credentials: Some(broker.bridge_credentials()),
                        shadow_prefix: mqtt::INTERNAL_SHADOW_PREFIX.into(),
                        client_id: mqtt::BRIDGE_USER.into(),
                        shared_group: None,
                        shadows: m.shadows,
                    };
                    embedded = Some((broker, listener, ws, tls));
                    link
                }
                MqttMode::External => {
                    let broker = m.broker.as_deref().expect("checked by config");
                    let (host, port) = broker
                        .rsplit_once(':')
                        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                        .ok_or_else(|| {
                            ProxyError::Config(format!("[mqtt] broker must be host:port, got {broker:?}"))
                        })?;
                    bridge::BrokerLink {
                        host,
                        port,
                        credentials: m.username.clone().zip(m.password.clone()),
                        shadow_prefix: mqtt::SHADOW_PREFIX.into(),
                        client_id: m.client_id.clone(),
                        shared_group: m.shared_group.clone(),
                        shadows: m.shadows,
                    }
                }
            };
            let b = bridge::Bridge::start(config, chain.clone(), link, &tasks).await?;
            // Devices are let in once the bridge listens (the listeners queue them until then).
            if let Some((broker, listener, ws, tls)) = embedded {
                let front = mqtt::Front::new(
                    auth.clone(),
                    broker,
                    m,
                    config.limits.clone(),
                    b.offers(),
                    device_sessions.clone(),
                );
                if let Some(ws) = ws {
                    tasks.spawn(front.clone().serve_ws(ws, tls.clone()));
                }
                tasks.spawn(front.serve(listener, tls));
            }
            bridge = Some(b);
        }
        let warehouse = match &bridge {
            Some(b) => {
                let lockers =
                    config.devices.iter().filter(|d| d.role == "locker").map(|d| d.id.clone()).collect();
                Some(warehouse::Warehouse::new(
                    config.warehouse.clone(),
                    chain.clone(),
                    b.clone(),
                    lockers,
                    &config.data_dir,
                )?)
            }
            None => None,
        };
        let gateway = gateway::Gateway::new(
            config,
            auth,
            upstream.clone(),
            warehouse,
            (bridge.clone(), device_sessions),
        );
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .map_err(|source| ProxyError::Listen { what: "HTTP", addr: config.http.listen, source })?;
        let http = listener.local_addr()?;
        let tls = config.http.tls.as_ref().map(|t| tls::server_config(t, &[b"http/1.1"])).transpose()?;
        let metrics_addr = match config.metrics.addr {
            Some(addr) => {
                let max = config.metrics.max_connections;
                Some(metrics::serve(addr, max, &upstream, bridge.clone(), &tasks).await?)
            }
            None => None,
        };
        tasks.spawn(gateway.serve(listener, tls));
        tracing::info!(%http, mqtt = ?mqtt_addr, mqtt_ws = ?ws_addr, metrics = ?metrics_addr, gateway = %chain.address(), "proxy started");
        Ok(Self { http, mqtt: mqtt_addr, mqtt_ws: ws_addr, metrics: metrics_addr, tasks })
    }

    /// Stops: every listener and bridge task is told to end and awaited (at most 10 s). The
    /// embedded broker's thread ends with the process.
    pub async fn stop(self) {
        if !self.tasks.shutdown(std::time::Duration::from_secs(10)).await {
            tracing::warn!("some proxy tasks did not end within 10 s");
        }
    }
}
