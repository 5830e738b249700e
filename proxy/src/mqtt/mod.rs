//! The embedded MQTT broker and its device-facing front.
//!
//! rumqttd (MQTT 3.1.1) routes, queues and delivers (QoS 0/1, persistent sessions, retained
//! messages) on a loopback port; it has no per-client topic ACLs and never delivers
//! `$`-prefixed topics, so devices do not reach it directly. They connect to the [`Front`]
//! (plain TCP, TLS, or WebSocket), which speaks MQTT 3.1, 3.1.1 and 5.0 ([`codec`]) and:
//! - authenticates the CONNECT (device id + password, bounded by [`crate::guard`], or a client
//!   certificate whose CN is the device id), then connects to rumqttd with an internal
//!   per-device secret;
//! - takes a device's messages (`devices/{id}/messages`) itself and hands them to the bridge,
//!   answering PUBACK (QoS 1) or PUBREC (QoS 2) only once the bridge has journaled them (fsync):
//!   an acknowledged message survives a crash; a QoS 2 message re-sent before PUBREL is not
//!   handed over twice;
//! - lets a device publish only under `devices/{id}/` and to its own shadow requests
//!   `$fogchain/things/{id}/shadow/...`, and subscribe only there (see [`front`]);
//! - maps `$fogchain/` to rumqttd's internal `_fogchain/` and back.
//!
//! Why not a broker that speaks MQTT 5 and QoS 2 itself: rumqttd 0.20's MQTT 5 listener is
//! incomplete and it does not deliver QoS 2, and the front must see every device message
//! anyway (authentication, ACL, ack after fsync). Terminating the protocol versions in the
//! front keeps one broker, one ACL and one journal path for all of them (docs/proxy.md).

mod codec;
mod front;
mod upstream;
mod ws;

pub use codec::{Version, TOPIC_ALIAS_MAX};
pub use front::Front;

use crate::config::ProxyConfig;
use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Shadow topic prefix devices use.
pub const SHADOW_PREFIX: &str = "$fogchain";
/// The same prefix inside rumqttd.
pub const INTERNAL_SHADOW_PREFIX: &str = "_fogchain";
/// The bridge's username at the embedded broker.
pub const BRIDGE_USER: &str = "fogchain-bridge";

/// The running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    /// rumqttd's loopback address.
    pub internal: SocketAddr,
    /// Where the bridge connects: a loopback relay to rumqttd (see [`relay`]).
    pub bridge: SocketAddr,
    /// Internal secrets: username -> password at rumqttd.
    pub(crate) secrets: Arc<HashMap<String, String>>,
}

impl EmbeddedBroker {
    /// Starts rumqttd on a free loopback port with one internal secret per device and one for
    /// the bridge; waits until it accepts connections.
    pub async fn start(config: &ProxyConfig, max_packet: usize) -> crate::Result<Self> {
        // Below Linux's ephemeral range (32768–60999): an outgoing connection's source port cannot
        // take it between this check and rumqttd's bind.
        let port = (0..200)
            .map(|_| rand::random_range(20_000..32_000u16))
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .map_or_else(|| std::net::TcpListener::bind("127.0.0.1:0")?.local_addr().map(|a| a.port()), Ok)?;
        let internal: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut secrets = HashMap::new();
        for d in &config.devices {
            secrets.insert(d.id.clone(), hex::encode(rand::random::<[u8; 24]>()));
        }
        secrets.insert(BRIDGE_USER.to_string(), hex::encode(rand::random::<[u8; 24]>()));
        let connections = rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: max_packet,
            max_inflight_count: 500,
            auth: Some(secrets.clone()),
            external_auth: None,
            dynamic_filters: true,
        };
        let mut v4 = HashMap::new();
        v4.insert(
            "internal".to_string(),
            rumqttd::ServerSettings {
                name: "fogchain-internal".into(),
                listen: internal,
                tls: None,
                next_connection_delay_ms: 0,
                connections,
            },
        );
        let broker_config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 100_000,
                max_outgoing_packet_count: 1000,
                max_segment_size: (max_packet * 16).max(1 << 20),
                max_segment_count: 10,
                ..Default::default()
            },
            v4: Some(v4),
            ..Default::default()
        };
        std::thread::Builder::new().name("rumqttd".into()).spawn(move || {
            let mut broker = rumqttd::Broker::new(broker_config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(internal).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                return Err(crate::error::ProxyError::Broker(format!(
                    "the embedded MQTT broker did not start on {internal}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let relay_listener = TcpListener::bind("127.0.0.1:0").await?;
        let bridge = relay_listener.local_addr()?;
        tokio::spawn(relay(relay_listener, internal));
        Ok(Self { internal, bridge, secrets: Arc::new(secrets) })
    }

    /// The bridge's credentials at rumqttd.
    pub fn bridge_credentials(&self) -> (String, String) {
        (BRIDGE_USER.to_string(), self.secrets[BRIDGE_USER].clone())
    }
}

/// Relays connections on `listener` to `target` byte for byte, acknowledging `target`'s segments
/// at once (TCP_QUICKACK) and sending without Nagle: rumqttd leaves Nagle on, so without this a
/// small packet it writes right after another waits for the bridge's delayed ACK (40 ms).
async fn relay(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut client_rd, mut client_wr) = client.into_split();
            let (mut server_rd, mut server_wr) = server.into_split();
            let up = async {
                let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
                let _ = server_wr.shutdown().await;
            };
            let down = async {
                let fd = std::os::fd::AsRawFd::as_raw_fd(server_rd.as_ref());
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    quickack(fd);
                    match server_rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if client_wr.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client_wr.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

/// Sets TCP_QUICKACK on `fd` (Linux; the kernel clears it again on its own, so it is re-armed
/// before every read).
pub(crate) fn quickack(fd: std::os::fd::RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this task owns, with a valid pointer and length.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
