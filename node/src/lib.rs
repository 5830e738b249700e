//! One Fogchain node: the applied chain, the replica Raft drives, the block builder, the seal,
//! the config, and the wiring of them with the pool (`fogchain-txpool`), consensus
//! (`fogchain-consensus`) and JSON-RPC (`fogchain-rpc`).
//!
//! [`Node::start`] opens the datadir (resuming from its head), joins the Raft cluster, starts
//! the minter (active while this node leads), the pool forwarder (active while it follows) and
//! the intake of forwarded transactions on their own threads, and serves JSON-RPC. Committed
//! Raft entries are blocks, applied by [`replica::Replica`] through
//! [`chain::Chain::apply_block`], the single code path by which any block enters the database.
//!
//! | file | what |
//! |---|---|
//! | `chain.rs` | [`chain::Chain`]: header checks, execution, one write per block; [`chain::SealedBlock`] |
//! | `replica.rs` | the Raft state machine: committed entries and synced blocks into the chain |
//! | `miner.rs` | the leader's block builder |
//! | `seal.rs` | node keys and block seals (the minter's signature in `extraData`) |
//! | `config.rs` | the node's TOML config |

pub mod chain;
pub mod config;
pub mod metrics;
pub mod miner;
pub mod replica;
pub mod seal;

use crate::{chain::Chain, config::NodeConfig, miner::Miner, replica::Replica};
use fogchain_consensus::{Consensus, ConsensusConfig, DriverConfig};
use fogchain_genesis::ChainSpec;
use fogchain_rpc::{ClusterRpc, EthRpc};
use fogchain_storage::Storage;
use fogchain_txpool::{LeaderLink, TxPool};
use jsonrpsee::server::ServerHandle;
use std::{net::SocketAddr, sync::Arc, thread::JoinHandle};
use tokio_util::sync::CancellationToken;

/// The pool's path to the leader: consensus's transaction gossip.
struct Gossip(Arc<Consensus>);

impl LeaderLink for Gossip {
    fn remote_leader(&self) -> Option<u64> {
        self.0.remote_leader()
    }
    fn send_to_leader(&self, leader: u64, txs: Vec<Vec<u8>>) {
        self.0.send_txs(leader, txs)
    }
}

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Genesis file problem.
    #[error(transparent)]
    Genesis(#[from] fogchain_genesis::GenesisError),
    /// Database problem.
    #[error(transparent)]
    Storage(#[from] fogchain_storage::StorageError),
    /// Chain state problem.
    #[error(transparent)]
    Chain(#[from] chain::ChainError),
    /// Node key problem.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    /// Consensus could not start.
    #[error(transparent)]
    Consensus(#[from] fogchain_consensus::ConsensusError),
    /// The metrics recorder or listener could not start.
    #[error(transparent)]
    Metrics(#[from] fogchain_metrics::MetricsError),
    /// The configuration does not fit the network.
    #[error("{0}")]
    Config(String),
    /// RPC server or file I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Writes `text` to `path` through a rename, so a reader never sees a partial file (the bound
/// addresses that launchers wait for).
fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), NodeError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| NodeError::Io { context: format!("writing {}", path.display()), source })
}

/// A running node.
pub struct Node {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    rpc: ServerHandle,
    rpc_addr: SocketAddr,
    consensus: Arc<Consensus>,
    threads: Vec<JoinHandle<()>>,
    /// The intake threads of forwarded transactions; they end after consensus (their queue).
    intake: Vec<JoinHandle<()>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("rpc_addr", &self.rpc_addr).finish()
    }
}

impl Node {
    /// Opens the datadir, starts minting and serves RPC.
    pub async fn start(config: &NodeConfig) -> Result<Self, NodeError> {
        let spec = Arc::new(ChainSpec::from_file(&config.genesis)?);
        std::fs::create_dir_all(&config.datadir).map_err(|source| NodeError::Io {
            context: format!("creating {}", config.datadir.display()),
            source,
        })?;
        let key = seal::load_or_create_key(&config.node_key_path())?;
        let mut storage = Storage::open(&config.datadir.join("db"), &spec)?;
        // Block writes need no fsync: the Raft log (fsynced) is the durable record; see
        // `Storage::set_sync_writes`.
        storage.set_sync_writes(false);
        let chain = Arc::new(Chain::new(spec.clone(), storage.clone())?);
        let pool = Arc::new(TxPool::new(spec.clone(), storage.clone(), config.txpool.clone()));
        let head = chain.head();
        let members = &spec.fogchain.members;
        let raft_id = match (members.iter().find(|m| m.address == key.address()), config.raft.join_existing) {
            (Some(member), _) => member.raft_id,
            (None, Some(id)) => id,
            (None, None) => {
                return Err(NodeError::Config(format!(
                    "this node ({}) is not a member in the genesis file; to join a running network, \
                     add it on a member with raft_addPeer (or raft_addLearner) and set [raft] \
                     join-existing = <the returned Raft id>",
                    key.address()
                )))
            }
        };
        tracing::info!(chain_id = spec.chain_id(), head = head.0, raft_id, sealer = %key.address(), "node starting");

        let replica = Arc::new(Replica::new(chain.clone(), pool.clone()));
        let listen = config.p2p.listen.parse().map_err(|e| {
            NodeError::Config(format!("[p2p] listen = {:?} is not a multiaddr: {e}", config.p2p.listen))
        })?;
        let consensus_config = ConsensusConfig {
            raft_id,
            node_key: key.to_bytes().0,
            listen,
            driver: DriverConfig {
                tick: std::time::Duration::from_millis(config.raft.tick_ms.max(1)),
                election_ticks: config.raft.election_ticks,
                heartbeat_ticks: config.raft.heartbeat_ticks,
                log_retention: config.raft.log_retention.max(1),
                log_retention_bytes: config.raft.log_retention_bytes.max(1),
            },
            fault_file: config.p2p.fault_file.clone(),
            forwarded_queue_bytes: config.p2p.forwarded_queue_bytes,
        };
        let consensus = Arc::new(Consensus::start(consensus_config, members, replica.clone()).await?);

        // Shutdown protocol, for every thread this node starts: each gets a child of one
        // CancellationToken and checks it between bounded waits (the pool's condition variable,
        // at most 250 ms; the intake's channel); `stop` cancels the token, wakes the pool's
        // waiters, and joins every thread before it stops consensus, so nothing runs against a
        // closed database. The Raft thread has its own protocol (`Consensus::shutdown`: hand
        // leadership over, then end).
        let shutdown = CancellationToken::new();
        let sealer = key.address();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|source| NodeError::Io { context: format!("spawning {name}"), source })
        };
        let miner = Miner::new(chain.clone(), pool.clone(), replica, consensus.clone(), key);
        let token = shutdown.child_token();
        let mut threads = vec![spawn("miner", Box::new(move || miner.run(&token)))?];
        let (p, link, token) = (pool.clone(), Gossip(consensus.clone()), shutdown.child_token());
        threads.push(spawn("forwarder", Box::new(move || fogchain_txpool::forward_pool(&p, &link, &token)))?);
        // Forwarded transactions are admitted on one thread per core (sender recovery dominates
        // their cost), taking batches from consensus's bounded queue in turn.
        let mut intake = Vec::new();
        if let Some(forwarded) = consensus.take_forwarded() {
            let forwarded = Arc::new(parking_lot::Mutex::new(forwarded));
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
            for _ in 0..cores {
                let (p, q, token) = (pool.clone(), forwarded.clone(), shutdown.child_token());
                intake.push(spawn(
                    "tx-intake",
                    Box::new(move || {
                        // Ends when the transport drops its sender (consensus stopped) or on
                        // shutdown.
                        loop {
                            let Some(batch) = q.lock().blocking_recv() else { break };
                            if token.is_cancelled() {
                                break;
                            }
                            p.add_forwarded(batch);
                        }
                    }),
                )?);
            }
        }

        let rpc_config = config.rpc.to_rpc_config();
        let mining = {
            let consensus = consensus.clone();
            Arc::new(move || consensus.status().role == fogchain_consensus::Role::Leader)
        };
        let node_info = fogchain_rpc::NodeInfo { heads: chain.subscribe_head(), coinbase: sealer, mining };
        let eth = EthRpc::new(spec.clone(), storage, pool.clone(), rpc_config.clone(), node_info);
        let cluster = ClusterRpc::new(consensus.clone(), spec.clone(), chain.subscribe_head(), sealer);
        let (rpc, rpc_addr) =
            fogchain_rpc::start_server(&rpc_config, eth, cluster).await.map_err(|source| NodeError::Io {
                context: format!("serving RPC on {}", rpc_config.addr),
                source,
            })?;
        tracing::info!(%rpc_addr, "JSON-RPC (HTTP and WebSocket) listening");
        if let Some(path) = &config.rpc_addr_file {
            write_atomically(path, &rpc_addr.to_string())?;
        }
        if let Some(addr) = config.metrics.addr {
            let registry = fogchain_metrics::install()?;
            metrics::register(
                &registry,
                chain.clone(),
                pool.clone(),
                consensus.clone(),
                config.datadir.clone(),
            );
            let bound = fogchain_metrics::serve(
                addr,
                config.metrics.max_connections,
                registry,
                shutdown.child_token(),
            )
            .await?;
            tracing::info!(%bound, "Prometheus metrics listening on /metrics");
            if let Some(path) = &config.metrics.addr_file {
                write_atomically(path, &bound.to_string())?;
            }
        }
        Ok(Self { chain, pool, rpc, rpc_addr, consensus, threads, intake, shutdown })
    }

    /// The bound RPC address.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// The applied chain.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// The transaction pool.
    pub fn pool(&self) -> &Arc<TxPool> {
        &self.pool
    }

    /// The consensus participant.
    pub fn consensus(&self) -> &Arc<Consensus> {
        &self.consensus
    }

    /// Resolves when this node can no longer do its job (the Raft thread stopped on a storage
    /// or apply fault, or panicked), with the reason. The binary then stops with a non-zero
    /// exit, so nothing serves a stale chain; restarted, the node resumes from its last
    /// applied block.
    pub async fn failed(&self) -> String {
        self.consensus.failed().await
    }

    /// Stops RPC and the minter, hands Raft leadership over if this node leads, and closes the
    /// database.
    pub async fn stop(mut self) {
        let _ = self.rpc.stop();
        self.rpc.clone().stopped().await;
        self.shutdown.cancel();
        self.pool.wake();
        for thread in self.threads.drain(..) {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.consensus.shutdown().await;
        // The intake threads wait on their queue: consensus ends the transport (and so the
        // queue) in its own shutdown, after which they end too.
        for thread in self.intake.drain(..) {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!("node stopped");
    }
}
