//! The node's Prometheus metrics (served by `fogchain-metrics` on `[metrics] addr`).
//!
//! Events are counted where they happen (`fogchain_block_*` here and in the miner,
//! `fogchain_txpool_*` in the pool, `fogchain_raft_*` and `fogchain_p2p_*` in consensus,
//! `fogchain_rpc_*` in the RPC server); gauges that mirror state (head, Raft status, pool sizes,
//! RocksDB sizes) are read at each scrape by [`register`], so the write path keeps no gauge up to
//! date. docs/operations.md lists every metric.

use crate::chain::Chain;
use alloy_consensus::Header;
use fogchain_consensus::{Consensus, Role};
use fogchain_metrics::Registry;
use fogchain_txpool::TxPool;
use metrics::gauge;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Records a block applied to the chain: `fogchain_block_apply_seconds` (decode to written),
/// `fogchain_block_transactions`, `fogchain_block_gas` and `fogchain_blocks_applied_total`.
pub(crate) fn block_applied(header: &Header, transactions: usize, took: Duration) {
    metrics::histogram!("fogchain_block_apply_seconds").record(took.as_secs_f64());
    metrics::histogram!("fogchain_block_transactions").record(transactions as f64);
    metrics::histogram!("fogchain_block_gas").record(header.gas_used as f64);
    metrics::counter!("fogchain_blocks_applied_total").increment(1);
}

const ROLES: [(Role, &str); 5] = [
    (Role::Leader, "leader"),
    (Role::Follower, "follower"),
    (Role::Candidate, "candidate"),
    (Role::Learner, "learner"),
    (Role::Outsider, "outsider"),
];

/// Sets the state gauges before every scrape of `registry`.
pub fn register(
    registry: &Registry,
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    consensus: Arc<Consensus>,
    datadir: PathBuf,
) {
    fogchain_metrics::catalog::describe(fogchain_metrics::catalog::NODE);
    registry.on_scrape(move || {
        if let Some(free) = free_bytes(&datadir) {
            gauge!("fogchain_datadir_free_bytes").set(free as f64);
        }
        let storage = chain.storage();
        if let Ok((_, head)) = fogchain_storage::ChainReader::head(storage) {
            gauge!("fogchain_chain_head_block").set(head.number as f64);
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            gauge!("fogchain_chain_head_age_seconds").set(now.saturating_sub(head.timestamp) as f64);
            gauge!("fogchain_chain_gas_limit").set(head.gas_limit as f64);
            gauge!("fogchain_chain_base_fee_wei").set(head.base_fee_per_gas.unwrap_or(0) as f64);
        }

        let status = consensus.status();
        gauge!("fogchain_raft_term").set(status.term as f64);
        gauge!("fogchain_raft_leader_id").set(status.leader_id as f64);
        gauge!("fogchain_raft_node_id").set(status.id as f64);
        for (role, name) in ROLES {
            gauge!("fogchain_raft_role", "role" => name).set(if status.role == role { 1.0 } else { 0.0 });
        }
        gauge!("fogchain_raft_commit_index").set(status.commit as f64);
        gauge!("fogchain_raft_applied_index").set(status.applied as f64);
        gauge!("fogchain_raft_log_entries").set(status.last_index.saturating_sub(status.first_index) as f64);
        gauge!("fogchain_raft_log_bytes").set(status.log_bytes as f64);
        gauge!("fogchain_raft_voters").set(status.voters.len() as f64);
        gauge!("fogchain_raft_learners").set(status.learners.len() as f64);
        gauge!("fogchain_raft_block_sync_active").set(if status.syncing { 1.0 } else { 0.0 });
        gauge!("fogchain_node_ready").set(if consensus.readiness(fogchain_rpc::READY_MAX_LAG).is_ok() {
            1.0
        } else {
            0.0
        });
        metrics::counter!("fogchain_raft_dropped_messages_total").absolute(status.dropped_messages);
        gauge!("fogchain_p2p_connected_members").set(consensus.peers().len() as f64);

        let (pending, queued) = pool.counts();
        gauge!("fogchain_txpool_pending_transactions").set(pending as f64);
        gauge!("fogchain_txpool_queued_transactions").set(queued as f64);

        let stats = storage.stats();
        for t in &stats.tables {
            let cf = t.table.name();
            gauge!("fogchain_rocksdb_sst_bytes", "cf" => cf).set(t.sst_bytes as f64);
            gauge!("fogchain_rocksdb_memtable_bytes", "cf" => cf).set(t.memtable_bytes as f64);
            gauge!("fogchain_rocksdb_estimated_keys", "cf" => cf).set(t.estimated_keys as f64);
            gauge!("fogchain_rocksdb_pending_compaction_bytes", "cf" => cf)
                .set(t.pending_compaction_bytes as f64);
        }
        gauge!("fogchain_rocksdb_block_cache_bytes").set(stats.block_cache_bytes as f64);
        gauge!("fogchain_rocksdb_running_compactions").set(stats.running_compactions as f64);
    });
}

/// Bytes available to this process on the filesystem holding `path` (statvfs).
// fsblkcnt_t and c_ulong are u64 on 64-bit Linux but u32 on 32-bit targets: the conversions stay.
#[allow(clippy::useless_conversion)]
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated path and `stat` is written by statvfs on success.
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}
