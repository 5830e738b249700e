//! A scratch chain shared by the fuzz targets: a genesis with funded keys, a RocksDB in a
//! temporary directory, a pool and the chain, made once per fuzzing process.

use alloy_genesis::{Genesis, GenesisAccount};
use alloy_primitives::{keccak256, U256};
use alloy_signer_local::PrivateKeySigner;
use fogchain_genesis::{ChainSpec, FogchainConfig, Member};
use fogchain_node::chain::Chain;
use fogchain_storage::Storage;
use fogchain_txpool::{PoolConfig, TxPool};
use std::sync::{Arc, OnceLock};

/// The scratch chain.
pub struct Env {
    /// Keys 0..4, 1000 ether each.
    pub keys: Vec<PrivateKeySigner>,
    /// The chain spec (chain id 1337, gas limit 30M, one member sealing with `sealer`).
    pub spec: Arc<ChainSpec>,
    /// The database.
    pub storage: Storage,
    /// A small pool (256 transactions, 16 per sender) over it.
    pub pool: TxPool,
    /// The chain over it.
    pub chain: Chain,
    /// The member's sealing key.
    pub sealer: PrivateKeySigner,
    _dir: tempfile::TempDir,
}

/// Key `i` of the scratch chain.
pub fn key(i: u64) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256((i + 1).to_be_bytes())).expect("a valid key")
}

/// The process-wide scratch chain.
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let keys: Vec<PrivateKeySigner> = (0..4).map(key).collect();
        let sealer = key(100);
        let mut genesis = Genesis {
            config: fogchain_genesis::prague_chain_config(1337),
            gas_limit: 30_000_000,
            ..Default::default()
        };
        for k in &keys {
            genesis
                .alloc
                .insert(k.address(), GenesisAccount::default().with_balance(U256::from(10u128.pow(21))));
        }
        let members = vec![Member {
            raft_id: 1,
            address: sealer.address(),
            peer_id: String::new(),
            p2p: String::new(),
        }];
        let spec =
            Arc::new(ChainSpec::new(genesis, FogchainConfig { members, ..Default::default() }).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &spec).unwrap();
        let config = PoolConfig { max_transactions: 256, max_per_sender: 16, ..Default::default() };
        let pool = TxPool::new(spec.clone(), storage.clone(), config);
        let chain = Chain::new(spec.clone(), storage.clone()).unwrap();
        Env { keys, spec, storage, pool, chain, sealer, _dir: dir }
    })
}

/// The `eth_`, `web3_`, `txpool_` and `debug_` methods over the scratch chain (a pool of its
/// own, small EVM budgets: 1,000,000 gas, 1 s, 200,000 steps, 1 MiB of trace). Call inside a
/// Tokio runtime.
pub fn rpc_methods() -> jsonrpsee::RpcModule<()> {
    let env = env();
    let config = fogchain_rpc::RpcConfig {
        gas_cap: 1_000_000,
        call_timeout: std::time::Duration::from_secs(1),
        call_queue_timeout: std::time::Duration::from_millis(100),
        evm_step_limit: 200_000,
        trace_max_bytes: 1 << 20,
        max_concurrent_calls: 1,
        ..Default::default()
    };
    let pool = Arc::new(TxPool::new(
        env.spec.clone(),
        env.storage.clone(),
        PoolConfig { max_transactions: 256, max_per_sender: 16, ..Default::default() },
    ));
    let node = fogchain_rpc::NodeInfo {
        heads: env.chain.subscribe_head(),
        coinbase: env.sealer.address(),
        mining: Arc::new(|| false),
    };
    let eth = fogchain_rpc::EthRpc::new(env.spec.clone(), env.storage.clone(), pool, config, node);
    fogchain_rpc::chain_methods(eth).expect("method names are unique")
}
