//! Node configuration file (TOML).
//!
//! ```toml
//! datadir = "data"              # relative paths resolve against the config file's directory
//! genesis = "../genesis.json"
//! node-key = "nodekey"          # default: <datadir>/nodekey (created when missing)
//! rpc-addr-file = "rpc.addr"    # optional: the bound RPC address is written here
//!
//! [rpc]
//! addr = "127.0.0.1:8545"       # HTTP and WebSocket; port 0 picks a free port
//! gas-cap = 50000000            # eth_call / eth_estimateGas gas cap
//! call-timeout-secs = 5         # eth_call / estimate / trace deadline (geth --rpc.evmtimeout)
//! max-concurrent-calls = 1      # EVM executions at once (default: half the cores)
//! call-queue-timeout-ms = 1000  # wait for an EVM slot, then -32005 "server busy"
//! evm-step-limit = 50000000     # interpreter steps of one execution
//! trace-max-bytes = 268435456   # struct-logger record of one trace
//! fee-history-max-blocks = 1024
//! fee-history-max-percentiles = 100
//! proof-max-keys = 1024         # storage keys of one eth_getProof
//! ws-ping-interval-secs = 30    # WebSocket ping period
//! ws-inactive-limit-secs = 60   # close a WebSocket that answers no ping within this
//! max-connections = 1000        # open TCP connections in total (more: HTTP 503, closed)
//! max-connections-per-ip = 256  # open TCP connections from one address (more: HTTP 429)
//! max-filters = 10000           # installed eth_new*Filter filters on the node
//! max-filters-per-ip = 1000     # installed filters per client address
//!
//! admin-token = "..."          # bearer token for admin_ and raft_ membership methods
//! api = ["eth", "net", "web3"]  # namespaces served to everyone (geth --http.api)
//! admin-api = ["admin", "debug", "txpool", "raft"]  # with the admin token, or to all on loopback
//!
//! [metrics]
//! addr = "127.0.0.1:9545"       # Prometheus GET /metrics; unset: off
//! addr-file = "metrics.addr"    # optional: the bound metrics address is written here
//! max-connections = 16          # scrapes served at once; more are closed
//!
//! [p2p]
//! listen = "/ip4/0.0.0.0/tcp/30400"   # libp2p (TCP + Noise + Yamux); members only
//!
//! [raft]
//! tick-ms = 50                  # Raft tick
//! election-ticks = 10           # election timeout: 10..20 ticks (0.5-1 s)
//! heartbeat-ticks = 2
//! log-retention = 1024          # applied entries kept for lagging followers
//! join-existing = 4             # only for a node added at runtime: its Raft id
//!
//! [txpool]
//! max-transactions = 50000
//! max-per-sender = 5000
//! price-bump-percent = 10
//! price-limit = 1              # minimum tip, wei (geth --txpool.pricelimit); unset: 1, or 0 with zeroBaseFee
//! ```

use fogchain_rpc::{Namespace, RpcConfig};
use fogchain_txpool::PoolConfig;
use serde::{Deserialize, Serialize};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// `[rpc]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct RpcSection {
    /// Listen address for HTTP and WebSocket.
    pub addr: SocketAddr,
    /// Gas cap of eth_call / eth_estimateGas.
    pub gas_cap: u64,
    /// Concurrent connections.
    pub max_connections: u32,
    /// Calls per JSON-RPC batch.
    pub max_batch_len: u32,
    /// Request body limit, bytes.
    pub max_request_body_size: u32,
    /// Response body limit, bytes.
    pub max_response_body_size: u32,
    /// Subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// Wall-clock limit of one eth_call / eth_estimateGas / trace / log query, seconds.
    pub call_timeout_secs: u64,
    /// Most blocks one eth_getLogs may span.
    pub logs_max_block_range: u64,
    /// Most logs one eth_getLogs answer may hold.
    pub logs_max_results: usize,
    /// Most addresses in one log filter (eth_getLogs, eth_newFilter, logs subscriptions).
    pub logs_max_addresses: usize,
    /// Most alternatives at one topic position of a log filter.
    pub logs_max_topics: usize,
    /// Most installed filters (eth_newFilter & co.) on the node.
    pub max_filters: usize,
    /// Most installed filters per client IP address.
    pub max_filters_per_ip: usize,
    /// Open TCP connections from one IP address.
    pub max_connections_per_ip: usize,
    /// EVM executions and log queries running at once (default: half the CPU cores).
    pub max_concurrent_calls: usize,
    /// Longest wait for a free EVM slot before "server busy" (-32005), milliseconds.
    pub call_queue_timeout_ms: u64,
    /// Most interpreter steps of one eth_call / estimate / trace.
    pub evm_step_limit: u64,
    /// Most bytes one struct-logger trace may record.
    pub trace_max_bytes: usize,
    /// Most blocks of one eth_feeHistory (more are capped).
    pub fee_history_max_blocks: u64,
    /// Most reward percentiles of one eth_feeHistory.
    pub fee_history_max_percentiles: usize,
    /// Most storage keys of one eth_getProof.
    pub proof_max_keys: usize,
    /// WebSocket ping period, seconds.
    pub ws_ping_interval_secs: u64,
    /// A WebSocket that answers no ping within this long is closed, seconds.
    pub ws_inactive_limit_secs: u64,
    /// Bearer token for `admin_` and the `raft_` membership methods; unset disables them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Namespaces served to every caller (geth `--http.api`), HTTP and WebSocket.
    pub api: Vec<Namespace>,
    /// Namespaces served with the admin token, or to every caller on a loopback `addr`.
    pub admin_api: Vec<Namespace>,
}

impl Default for RpcSection {
    fn default() -> Self {
        let d = RpcConfig::default();
        Self {
            addr: d.addr,
            gas_cap: d.gas_cap,
            max_connections: d.max_connections,
            max_batch_len: d.max_batch_len,
            max_request_body_size: d.max_request_body_size,
            max_response_body_size: d.max_response_body_size,
            max_subscriptions_per_connection: d.max_subscriptions_per_connection,
            call_timeout_secs: d.call_timeout.as_secs(),
            logs_max_block_range: d.logs.max_block_range,
            logs_max_results: d.logs.max_results,
            logs_max_addresses: d.logs.max_addresses,
            logs_max_topics: d.logs.max_topics,
            max_filters: d.logs.max_filters,
            max_filters_per_ip: d.logs.max_filters_per_ip,
            max_connections_per_ip: d.max_connections_per_ip,
            max_concurrent_calls: d.max_concurrent_calls,
            call_queue_timeout_ms: d.call_queue_timeout.as_millis() as u64,
            evm_step_limit: d.evm_step_limit,
            trace_max_bytes: d.trace_max_bytes,
            fee_history_max_blocks: d.fee_history_max_blocks,
            fee_history_max_percentiles: d.fee_history_max_percentiles,
            proof_max_keys: d.proof_max_keys,
            ws_ping_interval_secs: d.ws_ping_interval.as_secs(),
            ws_inactive_limit_secs: d.ws_inactive_limit.as_secs(),
            admin_token: None,
            api: d.api,
            admin_api: d.admin_api,
        }
    }
}

impl RpcSection {
    /// The RPC server settings.
    pub fn to_rpc_config(&self) -> RpcConfig {
        RpcConfig {
            addr: self.addr,
            gas_cap: self.gas_cap,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_batch_len: self.max_batch_len,
            max_request_body_size: self.max_request_body_size,
            max_response_body_size: self.max_response_body_size,
            max_subscriptions_per_connection: self.max_subscriptions_per_connection,
            call_timeout: std::time::Duration::from_secs(self.call_timeout_secs.max(1)),
            logs: fogchain_rpc::LogLimits {
                max_block_range: self.logs_max_block_range.max(1),
                max_results: self.logs_max_results.max(1),
                max_addresses: self.logs_max_addresses,
                max_topics: self.logs_max_topics,
                max_filters: self.max_filters,
                max_filters_per_ip: self.max_filters_per_ip,
            },
            max_concurrent_calls: self.max_concurrent_calls.max(1),
            call_queue_timeout: std::time::Duration::from_millis(self.call_queue_timeout_ms),
            evm_step_limit: self.evm_step_limit,
            trace_max_bytes: self.trace_max_bytes,
            fee_history_max_blocks: self.fee_history_max_blocks.max(1),
            fee_history_max_percentiles: self.fee_history_max_percentiles,
            proof_max_keys: self.proof_max_keys,
            ws_ping_interval: std::time::Duration::from_secs(self.ws_ping_interval_secs),
            ws_inactive_limit: std::time::Duration::from_secs(self.ws_inactive_limit_secs),
            admin_token: self.admin_token.clone(),
            api: self.api.clone(),
            admin_api: self.admin_api.clone(),
            ..RpcConfig::default()
        }
    }
}

/// `[metrics]` section: Prometheus metrics on their own listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `GET /metrics` listen address (devnet: 127.0.0.1:9545 + i); unset: no metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<SocketAddr>,
    /// The bound metrics address is written here once serving (relative to the config file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr_file: Option<PathBuf>,
    /// Connections served at once; more are closed.
    pub max_connections: usize,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self { addr: None, addr_file: None, max_connections: fogchain_metrics::MAX_CONNECTIONS }
    }
}

/// `[p2p]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct P2pSection {
    /// libp2p listen multiaddr.
    pub listen: String,
    /// Test-only fault switch: a file listing Raft ids (whitespace separated) this node must
    /// neither send to nor accept messages from, as if the network to them were cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_file: Option<PathBuf>,
    /// Bytes of transactions forwarded by followers that may wait for this node's pool; a
    /// batch beyond it is dropped (its follower re-sends within 2 s). Default 64 MiB.
    pub forwarded_queue_bytes: usize,
}

impl Default for P2pSection {
    fn default() -> Self {
        Self {
            listen: "/ip4/0.0.0.0/tcp/30400".into(),
            fault_file: None,
            forwarded_queue_bytes: fogchain_consensus::DEFAULT_FORWARDED_QUEUE_BYTES,
        }
    }
}

/// `[raft]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct RaftSection {
    /// Raft tick, milliseconds.
    pub tick_ms: u64,
    /// Election timeout in ticks (randomised between n and 2n).
    pub election_ticks: usize,
    /// Leader heartbeat interval in ticks.
    pub heartbeat_ticks: usize,
    /// Applied log entries kept for lagging followers; older ones are compacted and such a
    /// follower catches up by snapshot + block sync.
    pub log_retention: u64,
    /// At most this many bytes of applied log entries are kept (the log lives in memory too);
    /// default 16 MiB (~100 full blocks).
    pub log_retention_bytes: usize,
    /// Raft id of a node that joins a running network (given by `raft_addPeer`); initial
    /// members take theirs from genesis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_existing: Option<u64>,
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            tick_ms: 50,
            election_ticks: 10,
            heartbeat_ticks: 2,
            log_retention: 1024,
            log_retention_bytes: 16 << 20,
            join_existing: None,
        }
    }
}

/// A node's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeConfig {
    /// Database directory.
    pub datadir: PathBuf,
    /// genesis.json path.
    pub genesis: PathBuf,
    /// Node key file (hex secp256k1 secret); `<datadir>/nodekey` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_key: Option<PathBuf>,
    /// File to write the bound RPC address to, once serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_addr_file: Option<PathBuf>,
    /// RPC server.
    #[serde(default)]
    pub rpc: RpcSection,
    /// Transaction pool.
    #[serde(default)]
    pub txpool: PoolConfig,
    /// p2p transport.
    #[serde(default)]
    pub p2p: P2pSection,
    /// Raft.
    #[serde(default)]
    pub raft: RaftSection,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// Errors reading a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Cannot read the file.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for a node config.
    #[error("invalid config {path}: {source}")]
    Toml {
        /// The path.
        path: String,
        /// Why.
        source: toml::de::Error,
    },
}

impl NodeConfig {
    /// Reads a config file; relative paths in it resolve against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
        let mut config: NodeConfig = toml::from_str(&text)
            .map_err(|source| ConfigError::Toml { path: path.display().to_string(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut config.datadir);
        resolve(&mut config.genesis);
        config.node_key.as_mut().map(resolve);
        config.metrics.addr_file.as_mut().map(resolve);
        config.rpc_addr_file.as_mut().map(resolve);
        config.p2p.fault_file.as_mut().map(resolve);
        Ok(config)
    }

    /// The config of a node of a generated network (`fogchain devnet`, `fogchain genesis new`):
    /// datadir `data`, key `nodekey` and address file `rpc.addr` beside the config file,
    /// defaults elsewhere.
    pub fn generated(
        genesis: PathBuf,
        rpc_addr: SocketAddr,
        admin_token: String,
        p2p_listen: String,
    ) -> Self {
        Self {
            datadir: "data".into(),
            genesis,
            node_key: Some("nodekey".into()),
            rpc_addr_file: Some("rpc.addr".into()),
            rpc: RpcSection { addr: rpc_addr, admin_token: Some(admin_token), ..Default::default() },
            txpool: Default::default(),
            p2p: P2pSection { listen: p2p_listen, ..Default::default() },
            raft: RaftSection::default(),
            metrics: MetricsSection::default(),
        }
    }

    /// The node key path.
    pub fn node_key_path(&self) -> PathBuf {
        self.node_key.clone().unwrap_or_else(|| self.datadir.join("nodekey"))
    }

    /// TOML text of this config.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
