//! Fogchain Ethereum JSON-RPC server (jsonrpsee), HTTP and WebSocket on one port.
//!
//! Serves the `eth_`, `net_` and `web3_` methods wallets and libraries need, with geth's result
//! shapes (alloy RPC types) and error codes/wording ([`RpcError`]). Reads come from a consistent
//! RocksDB snapshot of the applied chain; EVM work (`eth_call`, `eth_estimateGas`) runs on the
//! blocking pool behind a semaphore. Transactions go straight to the node's pool
//! (`fogchain-txpool`); `raft_` / `admin_` read and change the node's consensus
//! (`fogchain-consensus`).
//!
//! Files: `eth/` (the `eth_` namespace, one file per concern), `net.rs` (`net_`, `web3_`),
//! `txpool.rs` (`txpool_`), `debug.rs` (raw `debug_` reads), `cluster.rs` (`raft_`, `admin_`),
//! `auth.rs` (the admin token), `logs.rs` (log queries and filters), `convert.rs` (stored data
//! to RPC shapes), `error.rs` (geth's codes and wording), `health.rs` (`/health`, `/ready`),
//! `listener.rs` (the accept loop: connection caps per address and in total), `metrics.rs`
//! (per-method request metrics), `exposure.rs` (which namespaces a caller may use, geth's
//! `--http.api`).

mod auth;
mod cluster;
mod convert;
mod debug;
mod error;
mod eth;
mod exposure;
mod health;
mod listener;
mod logs;
mod metrics;
mod net;
mod txpool;

pub use auth::*;
pub use cluster::*;
pub use debug::*;
pub use error::*;
pub use eth::*;
pub use exposure::{method_not_available, Exposure, Namespace, METHOD_NOT_FOUND_CODE};
pub use health::{HealthLayer, READY_MAX_LAG};
pub use listener::{ClientIp, ConnectionLimits};
pub use logs::{LogLimits, FILTER_TIMEOUT};
pub use net::*;
pub use txpool::*;

use jsonrpsee::server::{BatchRequestConfig, PingConfig, Server, ServerConfig, ServerHandle};
use std::net::SocketAddr;
use tower_http::cors::CorsLayer;

/// RPC server settings. Defaults follow geth where geth has one.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Listen address (HTTP and WebSocket).
    pub addr: SocketAddr,
    /// Largest request body in bytes (geth: 5 MiB).
    pub max_request_body_size: u32,
    /// Largest response body in bytes.
    pub max_response_body_size: u32,
    /// Open TCP connections (HTTP and WebSocket) in total; more are answered 503 and closed.
    pub max_connections: u32,
    /// Open TCP connections from one IP address; more are answered 429 and closed (256).
    pub max_connections_per_ip: usize,
    /// Most calls in one JSON-RPC batch (geth: 1000).
    pub max_batch_len: u32,
    /// Gas cap of `eth_call` / `eth_estimateGas` (geth: 50,000,000).
    pub gas_cap: u64,
    /// EVM executions (`eth_call`, `eth_estimateGas`, `eth_createAccessList`, traces) and log
    /// queries running at once on the blocking pool. Default: half the CPU cores (at least 1),
    /// so cheap methods always keep a core.
    pub max_concurrent_calls: usize,
    /// Longest wait for a free EVM slot; then the request is refused with
    /// `fogchain_client::codes::LIMIT_EXCEEDED` (1 s).
    pub call_queue_timeout: std::time::Duration,
    /// Most interpreter steps of one EVM execution (50,000,000: about what the gas cap buys).
    pub evm_step_limit: u64,
    /// Most bytes the struct logger of one `debug_trace*` may record (256 MiB).
    pub trace_max_bytes: usize,
    /// Most blocks of one `eth_feeHistory` (geth: 1024; more are capped, as geth).
    pub fee_history_max_blocks: u64,
    /// Most reward percentiles of one `eth_feeHistory` (geth: 100).
    pub fee_history_max_percentiles: usize,
    /// Most storage keys of one `eth_getProof` (1024).
    pub proof_max_keys: usize,
    /// WebSocket: the server pings every connection this often (30 s).
    pub ws_ping_interval: std::time::Duration,
    /// WebSocket: a connection that answers no ping within this long is closed (60 s).
    pub ws_inactive_limit: std::time::Duration,
    /// Tip in wei suggested by `eth_maxPriorityFeePerGas` (1 gwei, as Anvil).
    pub suggested_tip: u128,
    /// Bearer token for `admin_` and the `raft_` membership methods (`None`: disabled), and for
    /// the [`RpcConfig::admin_api`] namespaces on a listener that is not on loopback.
    pub admin_token: Option<String>,
    /// Namespaces served to every caller (geth `--http.api`; eth, net, web3).
    pub api: Vec<Namespace>,
    /// Namespaces served to callers with the admin token, and to every caller when `addr` is a
    /// loopback address (admin, debug, txpool, raft).
    pub admin_api: Vec<Namespace>,
    /// Bounds on `eth_getLogs` and log filters.
    pub logs: LogLimits,
    /// Subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// Wall-clock bound on one `eth_call`, `eth_estimateGas`, trace or log query (geth's
    /// `--rpc.evmtimeout`, 5 s).
    pub call_timeout: std::time::Duration,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8545)),
            max_request_body_size: 5 * 1024 * 1024,
            max_response_body_size: 128 * 1024 * 1024,
            max_connections: 1_000,
            max_connections_per_ip: 256,
            max_batch_len: 1_000,
            gas_cap: fogchain_evm::DEFAULT_RPC_GAS_CAP,
            max_concurrent_calls: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            call_queue_timeout: std::time::Duration::from_secs(1),
            evm_step_limit: 50_000_000,
            trace_max_bytes: 256 << 20,
            fee_history_max_blocks: 1024,
            fee_history_max_percentiles: 100,
            proof_max_keys: 1024,
            ws_ping_interval: std::time::Duration::from_secs(30),
            ws_inactive_limit: std::time::Duration::from_secs(60),
            suggested_tip: 1_000_000_000,
            admin_token: None,
            api: Namespace::PUBLIC.to_vec(),
            admin_api: Namespace::PRIVILEGED.to_vec(),
            logs: LogLimits::default(),
            max_subscriptions_per_connection: 1024,
            call_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// `Fogchain/v<version>/<os>-<arch>/rust`, in the shape of geth's client version.
pub fn client_version() -> String {
    format!(
        "Fogchain/v{}/{}-{}/rust",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Subscription ids as geth makes them: `0x` and 32 hex digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct HexIdProvider;

impl jsonrpsee::core::traits::IdProvider for HexIdProvider {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        jsonrpsee::types::SubscriptionId::Str(format!("0x{:032x}", rand::random::<u128>()).into())
    }
}

/// The methods that read and write the chain and the pool, without the node's consensus:
/// `eth_`, `web3_`, `txpool_`, `debug_` (the server adds `net_`, `raft_` and `admin_`; the
/// `rpc_params` fuzz target calls these directly).
pub fn chain_methods(eth: EthRpc) -> Result<jsonrpsee::RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let mut module = jsonrpsee::RpcModule::new(());
    module.merge(EthApiServer::into_rpc(eth.clone()))?;
    module.merge(Web3ApiServer::into_rpc(Web3Rpc))?;
    module.merge(TxPoolRpcApiServer::into_rpc(TxPoolRpc::new(eth.pool())))?;
    module.merge(DebugApiServer::into_rpc(DebugRpc::new(eth.storage().clone())))?;
    module.merge(DebugTraceApiServer::into_rpc(eth))?;
    Ok(module)
}

/// Starts the server with every namespace; returns its handle and the bound address.
pub async fn start_server(
    config: &RpcConfig,
    eth: EthRpc,
    cluster: ClusterRpc,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let net = NetRpc::new(eth.spec().chain_id(), cluster.clone());
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_body_size)
        .max_response_body_size(config.max_response_body_size)
        .max_connections(config.max_connections)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .set_id_provider(HexIdProvider)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(config.ws_ping_interval.max(std::time::Duration::from_secs(1)))
                .inactive_limit(config.ws_inactive_limit.max(std::time::Duration::from_secs(1)))
                .max_failures(1),
        )
        .build();
    // CORS: any origin may call, as browser dapps on other origins need (geth --http.corsdomain '*').
    let http_middleware = tower::ServiceBuilder::new()
        .layer(CorsLayer::permissive())
        .layer(HealthLayer::new(cluster.consensus()))
        .layer(AdminAuthLayer::new(config.admin_token.clone()));
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let mut module = chain_methods(eth).map_err(std::io::Error::other)?;
    module.merge(NetApiServer::into_rpc(net)).map_err(std::io::Error::other)?;
    module.merge(RaftApiServer::into_rpc(cluster.clone())).map_err(std::io::Error::other)?;
    module.merge(AdminApiServer::into_rpc(cluster)).map_err(std::io::Error::other)?;
    let exposure = Exposure {
        public: config.api.clone(),
        privileged: config.admin_api.clone(),
        loopback: addr.ip().is_loopback(),
    };
    module
        .merge(exposure::modules_method(exposure.clone()).map_err(std::io::Error::other)?)
        .map_err(std::io::Error::other)?;
    let methods: jsonrpsee::Methods = module.into();
    let known = metrics::KnownMethods::new(&methods);
    let rpc_middleware = jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
        .layer(metrics::RpcMetricsLayer(known.clone()))
        .layer(exposure::ExposureLayer::new(exposure, known));
    let services = Server::builder()
        .set_config(server_config)
        .set_http_middleware(http_middleware)
        .set_rpc_middleware(rpc_middleware)
        .to_service_builder();
    let limits =
        ConnectionLimits { total: config.max_connections as usize, per_ip: config.max_connections_per_ip };
    let handle = listener::serve(listener, limits, move |ip, stop| {
        let service = services.clone().build(methods.clone(), stop);
        tower::ServiceBuilder::new()
            .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(jsonrpsee::server::HttpBody::new);
                request.extensions_mut().insert(ip);
                request
            })
            .service(service)
    });
    Ok((handle, addr))
}
