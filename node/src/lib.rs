//! The Fogchain node: transaction pool, block minting, block application and RPC wiring, plus
//! the local-network launcher behind `fogchain devnet`.
//!
//! [`Node::start`] opens the datadir (resuming from its head), starts the minter on its own
//! thread and serves JSON-RPC. Block application ([`chain::Chain::apply_block`]) is the single
//! code path by which any block enters the database.

pub mod chain;
pub mod config;
pub mod miner;
pub mod pool;
pub mod seal;

use crate::{chain::Chain, config::NodeConfig, miner::Miner, pool::TxPool};
use fogchain_genesis::ChainSpec;
use fogchain_rpc::{EthRpc, NetRpc};
use fogchain_storage::Storage;
use jsonrpsee::server::ServerHandle;
use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

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
    /// RPC server or file I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// A running node.
pub struct Node {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    rpc: ServerHandle,
    rpc_addr: SocketAddr,
    miner: Option<JoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
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
        let storage = Storage::open(&config.datadir.join("db"), &spec)?;
        let chain = Arc::new(Chain::new(spec.clone(), storage.clone())?);
        let pool = Arc::new(TxPool::new(spec.clone(), storage.clone(), config.txpool.clone()));
        let head = *chain.subscribe_head().borrow();
        tracing::info!(chain_id = spec.chain_id(), head = head.0, sealer = %key.address(), "node starting");

        let shutdown = Arc::new(AtomicBool::new(false));
        let miner = Miner::new(chain.clone(), pool.clone(), key, shutdown.clone());
        let miner = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || miner.run())
            .map_err(|source| NodeError::Io { context: "spawning the minter".into(), source })?;

        let rpc_config = config.rpc.to_rpc_config();
        let eth = EthRpc::new(spec.clone(), storage, pool.clone(), rpc_config.clone());
        let (rpc, rpc_addr) =
            fogchain_rpc::start_server(&rpc_config, eth, NetRpc::new(spec.chain_id())).await.map_err(
                |source| NodeError::Io { context: format!("serving RPC on {}", rpc_config.addr), source },
            )?;
        tracing::info!(%rpc_addr, "JSON-RPC (HTTP and WebSocket) listening");
        if let Some(path) = &config.rpc_addr_file {
            // Written atomically (rename) so a reader never sees a partial address.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, rpc_addr.to_string())
                .and_then(|_| std::fs::rename(&tmp, path))
                .map_err(|source| NodeError::Io { context: format!("writing {}", path.display()), source })?;
        }
        Ok(Self { chain, pool, rpc, rpc_addr, miner: Some(miner), shutdown })
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

    /// Stops RPC, lets the minter finish its current block, and closes the database.
    pub async fn stop(mut self) {
        let _ = self.rpc.stop();
        self.rpc.clone().stopped().await;
        self.shutdown.store(true, Ordering::Release);
        self.pool.wake();
        if let Some(miner) = self.miner.take() {
            let _ = tokio::task::spawn_blocking(move || miner.join()).await;
        }
        tracing::info!("node stopped");
    }
}
