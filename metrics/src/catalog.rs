//! Every Fogchain metric with its type and help text: `# HELP` lines come from here
//! ([`describe`]), and docs/operations.md and the dashboard test read the same table.

/// A metric's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, `_sum` and `_count` (buckets by unit suffix: [`crate::buckets`]).
    Histogram,
}

use Kind::{Counter, Gauge, Histogram};

/// A node's metrics: (type, name, help).
pub const NODE: &[(Kind, &str, &str)] = &[
    (Gauge, "fogchain_chain_head_block", "Number of the head block"),
    (Gauge, "fogchain_chain_head_age_seconds", "Seconds since the head block's timestamp"),
    (Gauge, "fogchain_chain_gas_limit", "Gas limit of the head block"),
    (Gauge, "fogchain_chain_base_fee_wei", "Base fee of the head block, wei"),
    (Counter, "fogchain_blocks_applied_total", "Blocks applied to the chain"),
    (
        Counter,
        "fogchain_blocks_skipped_total",
        "Committed blocks skipped, by reason (stale: deposed leader; invalid)",
    ),
    (Histogram, "fogchain_block_apply_seconds", "Time to validate, execute and write a committed block"),
    (Histogram, "fogchain_block_build_seconds", "Time the leader takes to build (execute) a block"),
    (Histogram, "fogchain_block_commit_seconds", "Time from proposing a block to applying it, on the leader"),
    (Histogram, "fogchain_block_transactions", "Transactions per applied block"),
    (Histogram, "fogchain_block_gas", "Gas used per applied block"),
    (Gauge, "fogchain_raft_term", "Current Raft term"),
    (
        Gauge,
        "fogchain_raft_role",
        "1 for this node's Raft role (leader, follower, candidate, learner, outsider), else 0",
    ),
    (Gauge, "fogchain_raft_leader_id", "Raft id of the leader (0: none known)"),
    (Gauge, "fogchain_raft_node_id", "This node's Raft id"),
    (Gauge, "fogchain_raft_commit_index", "Raft commit index"),
    (Gauge, "fogchain_raft_applied_index", "Raft applied index"),
    (Gauge, "fogchain_raft_log_entries", "Entries held in the Raft log"),
    (Gauge, "fogchain_raft_log_bytes", "Entry data held in the Raft log, bytes"),
    (Gauge, "fogchain_raft_voters", "Voting members"),
    (Gauge, "fogchain_raft_learners", "Learners"),
    (Gauge, "fogchain_raft_block_sync_active", "1 while block sync after a snapshot runs"),
    (Counter, "fogchain_raft_leader_changes_total", "Times this node saw a new leader"),
    (
        Counter,
        "fogchain_raft_proposals_dropped_total",
        "Block proposals that were never committed (leader change, timeout)",
    ),
    (Counter, "fogchain_raft_snapshots_installed_total", "Raft snapshots installed"),
    (Counter, "fogchain_block_syncs_total", "Block syncs finished, by outcome (done, failed)"),
    (
        Counter,
        "fogchain_raft_dropped_messages_total",
        "Member messages dropped before raft-rs (undecodable or invalid)",
    ),
    (Gauge, "fogchain_node_ready", "1 when GET /ready answers 200"),
    (Gauge, "fogchain_p2p_connected_members", "Members connected over libp2p"),
    (
        Counter,
        "fogchain_p2p_messages_total",
        "Member messages by direction (sent, received) and kind (raft, txs, blocks)",
    ),
    (Counter, "fogchain_p2p_bytes_total", "Member message payload bytes by direction and kind"),
    (Counter, "fogchain_p2p_refused_requests_total", "Requests refused from peers that are not members"),
    (Gauge, "fogchain_txpool_pending_transactions", "Pooled transactions executable now"),
    (
        Gauge,
        "fogchain_txpool_queued_transactions",
        "Pooled transactions behind a nonce gap or beyond the balance",
    ),
    (Counter, "fogchain_txpool_admitted_total", "Transactions admitted to the pool"),
    (Counter, "fogchain_txpool_refused_total", "Transactions refused by the pool, by reason"),
    (Counter, "fogchain_txpool_evicted_total", "Transactions evicted from a full pool"),
    (Counter, "fogchain_rpc_requests_total", "JSON-RPC calls by method"),
    (Counter, "fogchain_rpc_errors_total", "JSON-RPC calls answered with an error, by method"),
    (Histogram, "fogchain_rpc_request_duration_seconds", "JSON-RPC call latency by method"),
    (Histogram, "fogchain_rpc_batch_duration_seconds", "JSON-RPC batch latency"),
    (Gauge, "fogchain_rpc_connections", "Open RPC connections (HTTP and WebSocket)"),
    (
        Counter,
        "fogchain_rpc_connections_refused_total",
        "RPC connections refused over a cap, by reason (total, per_ip)",
    ),
    (Gauge, "fogchain_rpc_subscriptions", "Open WebSocket subscriptions by kind"),
    (Gauge, "fogchain_rocksdb_sst_bytes", "Live SST files per column family, bytes"),
    (Gauge, "fogchain_rocksdb_memtable_bytes", "Memtables per column family, bytes"),
    (Gauge, "fogchain_rocksdb_estimated_keys", "Estimated keys per column family"),
    (
        Gauge,
        "fogchain_rocksdb_pending_compaction_bytes",
        "Bytes compaction still has to rewrite, per column family",
    ),
    (Gauge, "fogchain_rocksdb_block_cache_bytes", "RocksDB block cache in use, bytes"),
    (Gauge, "fogchain_rocksdb_running_compactions", "RocksDB compactions running"),
    (Gauge, "fogchain_datadir_free_bytes", "Bytes free on the datadir's filesystem"),
];

/// The proxy's metrics: (type, name, help).
pub const PROXY: &[(Kind, &str, &str)] = &[
    (Gauge, "fogchain_proxy_mqtt_connections", "Device MQTT sessions open"),
    (Counter, "fogchain_proxy_mqtt_auth_failures_total", "MQTT CONNECTs refused, by reason"),
    (
        Counter,
        "fogchain_proxy_messages_total",
        "Device message acks by status (accepted, duplicate, rejected, recorded, failed)",
    ),
    (Counter, "fogchain_proxy_messages_received_total", "Device messages parsed, by kind (registry, action)"),
    (
        Histogram,
        "fogchain_proxy_record_seconds",
        "Time from accepting a device message to its recorded ack, by kind",
    ),
    (
        Histogram,
        "fogchain_proxy_decision_seconds",
        "Time from accepting an action message to publishing its decision",
    ),
    (
        Counter,
        "fogchain_proxy_rate_limited_total",
        "Requests and messages refused by a rate limit, by source (http, ws, mqtt, shadow)",
    ),
    (
        Counter,
        "fogchain_proxy_connections_refused_total",
        "Connections closed at accept over a connection cap, by listener and cap",
    ),
    (
        Counter,
        "fogchain_proxy_login_refused_total",
        "Password logins refused before any check, by reason (busy)",
    ),
    (Gauge, "fogchain_proxy_ws_connections", "JSON-RPC WebSocket connections relayed to a node"),
    (
        Counter,
        "fogchain_proxy_send_retries_total",
        "Gateway transactions refused for now by a node and kept for re-sending, by reason",
    ),
    (
        Counter,
        "fogchain_proxy_journal_corrupt_records_total",
        "Journal records skipped at start because their checksum failed mid-file",
    ),
    (Histogram, "fogchain_proxy_upstream_request_seconds", "JSON-RPC round trip to a node, by node"),
    (Gauge, "fogchain_proxy_upstream_ready", "1 when a node answers GET /ready"),
    (Gauge, "fogchain_proxy_journal_backlog_messages", "Device messages accepted and not yet recorded"),
    (Gauge, "fogchain_proxy_journal_oldest_age_seconds", "Age of the oldest unrecorded device message"),
];

/// Registers the help text of every metric in `table` with the installed recorder.
pub fn describe(table: &[(Kind, &'static str, &'static str)]) {
    for &(kind, name, help) in table {
        match kind {
            Counter => metrics::describe_counter!(name, help),
            Gauge => metrics::describe_gauge!(name, help),
            Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// Whether `name` (a series name: `_bucket`, `_sum` and `_count` of histograms included) is in
/// one of the tables, or is a process metric.
pub fn exists(name: &str) -> bool {
    let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
    name.starts_with("process_")
        || name == "up"
        || NODE.iter().chain(PROXY).any(|(_, n, _)| *n == name || *n == base)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `fogchain_*` / `process_*` name in `text`.
    fn names(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(['f', 'p']) {
            let tail = &rest[at..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            let word = &tail[..end];
            let starts_word =
                at == 0 || !rest[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if starts_word && (word.starts_with("fogchain_") || word.starts_with("process_")) {
                out.push(word.to_string());
            }
            rest = &tail[end.max(1)..];
        }
        out
    }

    fn doc(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(
                &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
            )
            .join("../docs")
            .join(name),
        )
        .unwrap()
    }

    #[test]
    fn every_metric_is_documented_in_operations_md() {
        let operations = doc("operations.md");
        for (_, name, _) in NODE.iter().chain(PROXY) {
            assert!(operations.contains(&format!("`{name}`")), "{name} is not in docs/operations.md");
        }
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for (kind, name, help) in NODE.iter().chain(PROXY) {
            assert!(name.starts_with("fogchain_") && !help.is_empty(), "{name}");
            assert_eq!(*kind == Counter, name.ends_with("_total"), "{name}: only counters end in _total");
        }
    }

    #[test]
    fn every_query_of_the_dashboard_and_the_alerts_names_a_metric_that_exists() {
        let dashboard: serde_json::Value = serde_json::from_str(&doc("grafana-dashboard.json")).unwrap();
        let mut exprs = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                exprs.push(target["expr"].as_str().unwrap().to_string());
            }
        }
        assert!(exprs.len() > 30, "{} queries", exprs.len());
        let alerts = doc("alerts.yml");
        let used: Vec<String> = exprs.iter().flat_map(|e| names(e)).chain(names(&alerts)).collect();
        for name in &used {
            assert!(exists(name), "{name} is used by the dashboard or an alert but no metric has that name");
        }
        for name in [
            "fogchain_raft_role",
            "fogchain_proxy_journal_oldest_age_seconds",
            "process_resident_memory_bytes",
        ] {
            assert!(used.iter().any(|u| u == name), "{name} unused");
        }
    }
}
