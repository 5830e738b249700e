//! The proxy's configuration file (TOML), as `fogchain proxy --config FILE` reads it.
//!
//! Secrets never appear in clear: bearer tokens are stored as their SHA-256 (they are random
//! 256-bit values, `fogchain proxy token` makes one), passwords as argon2id PHC strings
//! (`fogchain proxy hash-password`). Relative paths are resolved against the config file's
//! directory. Unknown fields are refused so that a typo is not silently ignored. The full
//! reference is in README.md, "IoT proxy". The types serialise back to the same TOML
//! (`fogchain devnet` writes its proxy's config from them).

mod limits;
mod mqtt;
pub use limits::LimitsConfig;
pub use mqtt::{MqttConfig, MqttMode};

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProxyConfig {
    /// Directory of the journal, the device shadows and the release records.
    pub data_dir: PathBuf,
    /// The nodes behind the proxy.
    pub upstream: UpstreamConfig,
    /// The JSON-RPC gateway.
    pub http: HttpConfig,
    /// Rate limits.
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: LimitsConfig,
    /// Method allowlists per role; `device`, `locker` and `admin` exist by default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, RoleConfig>,
    /// HTTP clients (apps, operators) and their credentials.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// IoT devices: MQTT and HTTP credentials.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    /// The MQTT side; absent: no MQTT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttConfig>,
    /// The chain account and contracts the bridge uses.
    pub chain: ChainConfig,
    /// Warehouse release (sales-order scenario).
    #[serde(default, skip_serializing_if = "is_default")]
    pub warehouse: WarehouseConfig,
    /// Prometheus metrics.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metrics: MetricsConfig,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MetricsConfig {
    /// `GET /metrics` listen address (devnet: 127.0.0.1:9645); unset: no metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<std::net::SocketAddr>,
    /// Connections served at once; more are closed (default 16).
    #[serde(default = "default_metrics_connections")]
    pub max_connections: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { addr: None, max_connections: default_metrics_connections() }
    }
}

fn default_metrics_connections() -> usize {
    fogchain_metrics::MAX_CONNECTIONS
}

/// `[upstream]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UpstreamConfig {
    /// JSON-RPC HTTP URLs of the nodes, e.g. `["http://10.0.0.1:8545", ...]`.
    pub nodes: Vec<String>,
    /// Health check period, milliseconds (eth_blockNumber on every node).
    #[serde(default = "default_health_interval_ms", skip_serializing_if = "is_default_health_interval_ms")]
    pub health_interval_ms: u64,
    /// Timeout of one upstream request, milliseconds.
    #[serde(default = "default_request_timeout_ms", skip_serializing_if = "is_default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// The nodes' admin token: sent upstream (`Authorization: Bearer`) for callers whose role
    /// allows every method (`"*"`), so they can use admin_ and raft_ membership methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
}

/// TLS material (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// CA whose certificates identify clients (X.509 client authentication); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// `[http]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address, e.g. `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Largest request body, bytes (413 above).
    #[serde(default = "default_max_body_bytes", skip_serializing_if = "is_default_max_body_bytes")]
    pub max_body_bytes: usize,
}

/// `[roles.NAME]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RoleConfig {
    /// JSON-RPC methods the role may call; `"*"` allows every method.
    pub methods: Vec<String>,
    /// May use the warehouse endpoints (`/warehouse/*`).
    #[serde(default)]
    pub warehouse: bool,
}

/// `[[clients]]`: one HTTP client. At least one credential must be given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientConfig {
    /// Name (logs, rate-limit key; the Basic-auth username).
    pub name: String,
    /// Role (a key of `[roles]`).
    pub role: String,
    /// SHA-256 (hex) of the client's bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// argon2id PHC string of the client's Basic-auth password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Common name of the client's X.509 certificate (signed by `http.tls.client-ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_cn: Option<String>,
}

/// `[[devices]]`: one IoT device. Its MQTT username and HTTP Basic username is its id; a client
/// certificate with CN = id authenticates it too.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DeviceConfig {
    /// Device id (`[A-Za-z0-9_-]`, 1..=64 bytes); its on-chain id is keccak256(id).
    pub id: String,
    /// argon2id PHC string of the device's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// HTTP role (default `device`; a warehouse locker has `locker`).
    #[serde(default = "default_device_role")]
    pub role: String,
    /// Devices whose commands topic (`devices/{id}/commands`) this device's action messages may
    /// name as `Publish_Topic` (its own is always allowed); an action naming another is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
}

/// `[chain]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ChainConfig {
    /// Chain id (checked against the nodes at start).
    pub chain_id: u64,
    /// File with the hex private key of the proxy's gateway account.
    pub gateway_key_file: PathBuf,
    /// SensorRegistry (registry messages).
    pub sensor_registry: Address,
    /// DangerIndex contracts that action messages may name; empty: any address.
    #[serde(default)]
    pub danger_index: Vec<Address>,
    /// Largest number of registry messages in one recordBatch transaction.
    #[serde(default = "default_batch_max", skip_serializing_if = "is_default_batch_max")]
    pub batch_max: usize,
    /// How long the batcher waits for more messages while one of its transactions is in
    /// flight, milliseconds (a message that finds none in flight goes at once).
    #[serde(default = "default_batch_interval_ms", skip_serializing_if = "is_default_batch_interval_ms")]
    pub batch_interval_ms: u64,
    /// How often receipts of sent transactions are polled while no node's `newHeads`
    /// subscription is live, milliseconds (with one, they are fetched at each new block).
    #[serde(default = "default_receipt_poll_ms", skip_serializing_if = "is_default_receipt_poll_ms")]
    pub receipt_poll_ms: u64,
}

/// `[warehouse]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WarehouseConfig {
    /// Release on the barcode alone, as the sales paper does (anyone holding a copy of the QR
    /// code can collect the item). Off by default: the buyer must sign a fresh challenge.
    #[serde(default)]
    pub barcode_only: bool,
    /// Lifetime of a challenge, seconds.
    #[serde(default = "default_challenge_ttl")]
    pub challenge_ttl_secs: u64,
    /// The network's `SaleFactory`: a sale it created (`isSale(sale)`) is genuine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_factory: Option<Address>,
    /// keccak256 of the runtime code of other sale contracts the operator trusts (contracts
    /// deployed without the factory); a sale with neither is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sale_code_hashes: Vec<alloy_primitives::B256>,
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        Self {
            barcode_only: false,
            challenge_ttl_secs: default_challenge_ttl(),
            sale_factory: None,
            sale_code_hashes: Vec::new(),
        }
    }
}

fn default_health_interval_ms() -> u64 {
    1000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_device_role() -> String {
    "device".into()
}
fn default_batch_max() -> usize {
    // ~30k gas per reading: 400 stay well under the 30M gas cap, and batches are also cut by
    // encoded size (bridge/submitter.rs); fewer transactions is what raises the ingest ceiling
    // (docs/benchmarks.md, "IoT ingest")
    400
}
fn default_batch_interval_ms() -> u64 {
    2
}
fn default_receipt_poll_ms() -> u64 {
    25
}
fn default_challenge_ttl() -> u64 {
    120
}

impl UpstreamConfig {
    /// The nodes at `nodes` with default timings.
    pub fn new(nodes: Vec<String>, admin_token: Option<String>) -> Self {
        Self {
            nodes,
            health_interval_ms: default_health_interval_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            admin_token,
        }
    }
}

impl HttpConfig {
    /// Plain HTTP on `listen` with the default body limit.
    pub fn new(listen: SocketAddr) -> Self {
        Self { listen, tls: None, max_body_bytes: default_max_body_bytes() }
    }
}

impl ChainConfig {
    /// Chain `chain_id`, the gateway key in `gateway_key_file`, the contracts, default batching.
    pub fn new(
        chain_id: u64,
        gateway_key_file: PathBuf,
        sensor_registry: Address,
        danger_index: Vec<Address>,
    ) -> Self {
        Self {
            chain_id,
            gateway_key_file,
            sensor_registry,
            danger_index,
            batch_max: default_batch_max(),
            batch_interval_ms: default_batch_interval_ms(),
            receipt_poll_ms: default_receipt_poll_ms(),
        }
    }
}

/// A governor quota of `rate` per second with `burst` (0 counts as 1).
pub fn quota(rate: u32, burst: u32) -> governor::Quota {
    let nz = |v: u32| std::num::NonZeroU32::new(v.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    governor::Quota::per_second(nz(rate)).allow_burst(nz(burst))
}

/// Methods of the built-in `viewer` role (the dashboard of a reader: chain, cluster and
/// subscriptions; no transactions, no admin_).
pub const VIEWER_METHODS: &[&str] = &[
    "eth_chainId",
    "eth_blockNumber",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getBalance",
    "eth_getCode",
    "eth_call",
    "eth_getLogs",
    "eth_subscribe",
    "eth_unsubscribe",
    "net_version",
    "net_peerCount",
    "web3_clientVersion",
    "raft_leader",
    "raft_role",
    "raft_cluster",
];

/// Methods a browser dapp (the shop) adds to [`VIEWER_METHODS`]: sending signed transactions
/// and what a wallet library needs to build them (built-in role `dapp`).
pub const DAPP_EXTRA_METHODS: &[&str] = &[
    "eth_sendRawTransaction",
    "eth_getTransactionCount",
    "eth_estimateGas",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_feeHistory",
];

/// The methods a device may call (the allowlist).
pub const DEVICE_METHODS: &[&str] = &[
    "eth_call",
    "eth_sendRawTransaction",
    "eth_getTransactionReceipt",
    "eth_chainId",
    "eth_blockNumber",
    "eth_getLogs",
];

impl ProxyConfig {
    /// Reads and checks `path`; relative paths inside are resolved against its directory.
    pub fn load(path: &Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| crate::error::ProxyError::File { path: path.to_path_buf(), source })?;
        let mut config: ProxyConfig = toml::from_str(&text)
            .map_err(|e| crate::error::ProxyError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.check()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.chain.gateway_key_file);
        let fix_tls = |t: &mut TlsConfig| {
            fix(&mut t.cert);
            fix(&mut t.key);
            if let Some(ca) = &mut t.client_ca {
                fix(ca);
            }
        };
        if let Some(t) = &mut self.http.tls {
            fix_tls(t);
        }
        if let Some(t) = self.mqtt.as_mut().and_then(|m| m.tls.as_mut()) {
            fix_tls(t);
        }
    }

    /// Adds the built-in roles that the file does not redefine.
    pub fn roles(&self) -> BTreeMap<String, RoleConfig> {
        let mut roles = self.roles.clone();
        let strings = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        roles
            .entry("device".into())
            .or_insert(RoleConfig { methods: strings(DEVICE_METHODS), warehouse: false });
        roles
            .entry("locker".into())
            .or_insert(RoleConfig { methods: strings(DEVICE_METHODS), warehouse: true });
        roles.entry("admin".into()).or_insert(RoleConfig { methods: vec!["*".into()], warehouse: true });
        roles
            .entry("viewer".into())
            .or_insert(RoleConfig { methods: strings(VIEWER_METHODS), warehouse: false });
        let dapp = VIEWER_METHODS.iter().chain(DAPP_EXTRA_METHODS).copied().collect::<Vec<_>>();
        roles.entry("dapp".into()).or_insert(RoleConfig { methods: strings(&dapp), warehouse: false });
        roles
    }

    fn check(&self) -> crate::Result<()> {
        macro_rules! bail {
            ($($t:tt)*) => { return Err(crate::error::ProxyError::Config(format!($($t)*))) };
        }
        if self.upstream.nodes.is_empty() {
            bail!("[upstream] nodes: at least one node URL is needed");
        }
        let roles = self.roles();
        for c in &self.clients {
            if !roles.contains_key(&c.role) {
                bail!("client {:?}: unknown role {:?}", c.name, c.role);
            }
            if c.token_sha256.is_none() && c.password_hash.is_none() && c.cert_cn.is_none() {
                bail!("client {:?}: give token-sha256, password-hash or cert-cn", c.name);
            }
            if let Some(t) = &c.token_sha256 {
                if t.len() != 64 || hex::decode(t).is_err() {
                    bail!("client {:?}: token-sha256 must be 64 hex digits", c.name);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for d in &self.devices {
            if !valid_device_id(&d.id) {
                bail!("device id {:?}: use 1 to 64 of A-Z a-z 0-9 _ -", d.id);
            }
            if !seen.insert(d.id.as_str()) {
                bail!("device {:?} is listed twice", d.id);
            }
            if !roles.contains_key(&d.role) {
                bail!("device {:?}: unknown role {:?}", d.id, d.role);
            }
        }
        for d in &self.devices {
            if let Some(unknown) = d.commands.iter().find(|c| !seen.contains(c.as_str())) {
                bail!("device {:?}: commands names {unknown:?}, which is not a device", d.id);
            }
        }
        if let Some(m) = &self.mqtt {
            match m.mode {
                MqttMode::Embedded if m.listen.is_none() => bail!("[mqtt] mode = \"embedded\" needs listen"),
                MqttMode::External if m.broker.is_none() => bail!("[mqtt] mode = \"external\" needs broker"),
                MqttMode::Embedded if m.shared_group.is_some() => {
                    bail!("[mqtt] shared-group needs mode = \"external\" (a broker the proxies share)")
                }
                _ => {}
            }
        }
        if self.chain.batch_max == 0 {
            bail!("[chain] batch-max must be at least 1");
        }
        Ok(())
    }
}

/// Whether `id` is a valid device id: 1..=64 bytes of `[A-Za-z0-9_-]` (it is an MQTT topic level).
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_default_health_interval_ms(v: &u64) -> bool {
    *v == default_health_interval_ms()
}

fn is_default_request_timeout_ms(v: &u64) -> bool {
    *v == default_request_timeout_ms()
}

fn is_default_max_body_bytes(v: &usize) -> bool {
    *v == default_max_body_bytes()
}

fn is_default_batch_max(v: &usize) -> bool {
    *v == default_batch_max()
}

fn is_default_batch_interval_ms(v: &u64) -> bool {
    *v == default_batch_interval_ms()
}

fn is_default_receipt_poll_ms(v: &u64) -> bool {
    *v == default_receipt_poll_ms()
}

/// Sections and values equal to their defaults are left out when a config is written, so a
/// written file shows only what differs.
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
