//! `[mqtt]`: the embedded broker and its front (listeners, protocol limits, duplicate window),
//! or an external broker the bridge is a client of (credentials, client id, shared group).

use super::TlsConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Which MQTT broker the bridge uses.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MqttMode {
    /// rumqttd inside the proxy, behind the proxy's authenticating front.
    Embedded,
    /// An external broker (e.g. Mosquitto); device authentication and topic ACLs are its job.
    External,
}

/// `[mqtt]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MqttConfig {
    /// `embedded` (default) or `external`.
    #[serde(default = "default_mqtt_mode")]
    pub mode: MqttMode,
    /// Embedded: where devices connect, e.g. `0.0.0.0:1883`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Embedded: MQTT over WebSocket (subprotocol `mqtt`, any path) for browsers, e.g.
    /// `127.0.0.1:8083`; behind TLS when `tls` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_listen: Option<SocketAddr>,
    /// Embedded: MQTT over TLS with this certificate (client certificates with `client-ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// External: the broker's `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// External: the bridge's username at the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// External: the bridge's password at the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// External: the bridge's MQTT client id, which names its persistent session at the broker
    /// (each proxy of a group needs its own, kept across restarts).
    #[serde(default = "default_client_id", skip_serializing_if = "is_default_client_id")]
    pub client_id: String,
    /// External: share device messages with the other proxies of this group (MQTT shared
    /// subscription `$share/{group}/devices/+/messages`): the broker gives each message to one
    /// of them. Each proxy needs its own gateway account, client id and data dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_group: Option<String>,
    /// Answer device-shadow requests. Shadows are stored per proxy: in a group, exactly one
    /// proxy should have this on.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub shadows: bool,
    /// Largest MQTT packet, bytes.
    #[serde(default = "default_max_packet_bytes", skip_serializing_if = "is_default_max_packet_bytes")]
    pub max_packet_bytes: usize,
    /// Accepted messages waiting for the chain before new ones are refused.
    #[serde(default = "default_queue_limit", skip_serializing_if = "is_default_queue_limit")]
    pub queue_limit: usize,
    /// Embedded: keep-alive a device gets when it asks for none or for more, seconds (told to
    /// MQTT 5 devices in CONNACK as server keep-alive).
    #[serde(default = "default_max_keep_alive_secs", skip_serializing_if = "is_default_max_keep_alive_secs")]
    pub max_keep_alive_secs: u16,
    /// Embedded: QoS 1/2 messages of one device waiting for the journal before the front stops
    /// reading from it (MQTT 5 receive maximum).
    #[serde(default = "default_receive_maximum", skip_serializing_if = "is_default_receive_maximum")]
    pub receive_maximum: u16,
    /// A message without `Seq` whose content equals one the same device sent within this many
    /// seconds is a duplicate (a re-send after a lost acknowledgement); 0 turns this off.
    #[serde(default = "default_dedupe_window_secs", skip_serializing_if = "is_default_dedupe_window_secs")]
    pub dedupe_window_secs: u64,
}

impl MqttConfig {
    /// The embedded broker on `listen`, plain TCP, default limits.
    pub fn embedded(listen: SocketAddr) -> Self {
        Self {
            mode: MqttMode::Embedded,
            listen: Some(listen),
            tls: None,
            broker: None,
            username: None,
            password: None,
            max_packet_bytes: default_max_packet_bytes(),
            queue_limit: default_queue_limit(),
            client_id: default_client_id(),
            shared_group: None,
            shadows: true,
            ws_listen: None,
            max_keep_alive_secs: default_max_keep_alive_secs(),
            receive_maximum: default_receive_maximum(),
            dedupe_window_secs: default_dedupe_window_secs(),
        }
    }
}

fn default_mqtt_mode() -> MqttMode {
    MqttMode::Embedded
}
fn default_max_packet_bytes() -> usize {
    64 * 1024
}
fn default_queue_limit() -> usize {
    10_000
}
fn is_default_max_packet_bytes(v: &usize) -> bool {
    *v == default_max_packet_bytes()
}

fn default_client_id() -> String {
    "fogchain-bridge".into()
}

fn is_default_client_id(v: &str) -> bool {
    v == default_client_id()
}

fn default_true() -> bool {
    true
}

fn is_true(v: &bool) -> bool {
    *v
}

fn default_max_keep_alive_secs() -> u16 {
    600
}

fn is_default_max_keep_alive_secs(v: &u16) -> bool {
    *v == default_max_keep_alive_secs()
}

fn default_receive_maximum() -> u16 {
    64
}

fn is_default_receive_maximum(v: &u16) -> bool {
    *v == default_receive_maximum()
}

fn default_dedupe_window_secs() -> u64 {
    30
}

fn is_default_dedupe_window_secs(v: &u64) -> bool {
    *v == default_dedupe_window_secs()
}

fn is_default_queue_limit(v: &usize) -> bool {
    *v == default_queue_limit()
}
