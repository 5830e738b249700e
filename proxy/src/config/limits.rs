//! `[limits]`: what one client, device or address may cost the proxy. Token buckets are
//! governor's GCRA; every key has a default and a line in README.md, "IoT proxy".

use serde::{Deserialize, Serialize};

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LimitsConfig {
    /// HTTP requests per second over all clients.
    #[serde(default = "default_global_rps")]
    pub global_rps: u32,
    /// HTTP requests per second of one client or device.
    #[serde(default = "default_client_rps")]
    pub client_rps: u32,
    /// Burst of one client above its rate.
    #[serde(default = "default_client_burst")]
    pub client_burst: u32,
    /// MQTT messages per second of one device (on `devices/{id}/messages`).
    #[serde(default = "default_device_mps")]
    pub device_messages_per_second: u32,
    /// Burst of one device above its message rate.
    #[serde(default = "default_device_burst")]
    pub device_burst: u32,
    /// Password checks (argon2id, ~19 MiB and tens of ms of CPU each) running at once, over
    /// MQTT CONNECTs and HTTP Basic together.
    #[serde(default = "default_auth_parallel")]
    pub auth_parallel: usize,
    /// Password checks waiting for a slot; beyond this a CONNECT is refused as "server
    /// unavailable" (MQTT 3: return code 3, MQTT 5: 0x88) and an HTTP request gets 503.
    #[serde(default = "default_auth_queue")]
    pub auth_queue: usize,
    /// Failed logins per minute of one user name and of one IP address; beyond it (after a
    /// burst of as many) further attempts are refused before any password check until the
    /// bucket refills (MQTT: "not authorized", HTTP: 429 with `Retry-After`).
    #[serde(default = "default_auth_failures_per_minute")]
    pub auth_failures_per_minute: u32,
    /// Time a client gets to complete the TLS handshake, milliseconds.
    #[serde(default = "default_tls_handshake_timeout_ms")]
    pub tls_handshake_timeout_ms: u64,
    /// Open connections per listener (MQTT, HTTP); further ones are closed at accept.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections per listener from one IP address.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// MQTT sessions one device may hold at once at the front (each client id is one; a device
    /// usually needs one or two). More are refused: CONNACK 3 / 0x97.
    #[serde(default = "default_sessions_per_device")]
    pub sessions_per_device: usize,
    /// JSON-RPC WebSocket connections relayed at once, over all callers. Each is a connection
    /// from the proxy's address to a node, so this stays below the nodes' `[rpc]
    /// max-connections-per-ip` (256) with room for the HTTP pool.
    #[serde(default = "default_ws_total")]
    pub ws_total: usize,
    /// JSON-RPC WebSocket connections of one caller at once.
    #[serde(default = "default_ws_per_caller")]
    pub ws_per_caller: usize,
    /// Lifetime of a login session of the browser apps (`POST /session`), seconds.
    #[serde(default = "default_session_ttl_secs")]
    pub session_ttl_secs: u64,
    /// Login sessions live at once; beyond, `POST /session` gets 429.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Largest shadow document (its `desired` and `reported` state as JSON), bytes; an update
    /// that would make it larger is rejected with 413 (AWS IoT: 8 KB).
    #[serde(default = "default_shadow_max_bytes")]
    pub shadow_max_bytes: usize,
    /// Shadow requests (get, update, delete) per second of one thing; more are rejected with
    /// 429 "Too Many Requests" (AWS IoT's default is 20 per thing).
    #[serde(default = "default_shadow_requests_per_second")]
    pub shadow_requests_per_second: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            global_rps: default_global_rps(),
            client_rps: default_client_rps(),
            client_burst: default_client_burst(),
            device_messages_per_second: default_device_mps(),
            device_burst: default_device_burst(),
            auth_parallel: default_auth_parallel(),
            auth_queue: default_auth_queue(),
            auth_failures_per_minute: default_auth_failures_per_minute(),
            tls_handshake_timeout_ms: default_tls_handshake_timeout_ms(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            sessions_per_device: default_sessions_per_device(),
            ws_total: default_ws_total(),
            ws_per_caller: default_ws_per_caller(),
            session_ttl_secs: default_session_ttl_secs(),
            max_sessions: default_max_sessions(),
            shadow_max_bytes: default_shadow_max_bytes(),
            shadow_requests_per_second: default_shadow_requests_per_second(),
        }
    }
}

fn default_global_rps() -> u32 {
    5000
}
fn default_client_rps() -> u32 {
    200
}
fn default_client_burst() -> u32 {
    400
}
fn default_device_mps() -> u32 {
    10
}
fn default_device_burst() -> u32 {
    20
}
fn default_auth_parallel() -> usize {
    2
}
fn default_auth_queue() -> usize {
    64
}
fn default_auth_failures_per_minute() -> u32 {
    10
}
fn default_tls_handshake_timeout_ms() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    20_000
}
fn default_max_connections_per_ip() -> usize {
    1_000
}
fn default_sessions_per_device() -> usize {
    8
}
fn default_ws_total() -> usize {
    128
}
fn default_ws_per_caller() -> usize {
    16
}
fn default_session_ttl_secs() -> u64 {
    8 * 3600
}
fn default_max_sessions() -> usize {
    4096
}
fn default_shadow_max_bytes() -> usize {
    8 * 1024
}
fn default_shadow_requests_per_second() -> u32 {
    20
}
