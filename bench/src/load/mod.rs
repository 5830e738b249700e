//! RPC workloads: pre-signed transactions from many accounts, sent as batched
//! `eth_sendRawTransaction` requests over all nodes, timed until their blocks appear.
//!
//! `workload.rs` prepares the accounts and contracts, `run.rs` sends and times one run,
//! `burst.rs` is the `rpc-transfers` / `rpc-contract` workload, `saturation.rs` the open-loop
//! steps.

mod burst;
mod run;
mod saturation;
mod workload;

pub(crate) use burst::burst;
pub(crate) use saturation::saturation;

use crate::report::Latency;
use clap::{Args, ValueEnum};

/// What each load transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Call {
    /// 1 wei value transfer to another load account (21,000 gas).
    Transfer,
    /// DangerIndex.submit(region, p, h[5], cs) from a gateway account, one region per account.
    DangerIndex,
    /// SensorRegistry.recordSigned(deviceId, seq, topic, payload, signature): a device-signed
    /// reading relayed by the device's own account.
    RecordSigned,
}

impl Call {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Call::Transfer => "transfer",
            Call::DangerIndex => "DangerIndex.submit",
            Call::RecordSigned => "SensorRegistry.recordSigned",
        }
    }
}

/// Options shared by the RPC workloads.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Sending accounts (each sends its transactions in nonce order to one node).
    #[arg(long, default_value_t = 1000)]
    pub(crate) accounts: usize,
    /// Transactions per JSON-RPC batch request.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Batch requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Most transactions sent and not yet seen in a block: sending waits below it, so the load
    /// stays within the nodes' pools (Fogchain's holds 50,000) and measures sustained throughput.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) window: usize,
    /// Stop waiting for inclusion after this many seconds without a new included transaction.
    #[arg(long, default_value_t = 60)]
    pub(crate) stall_seconds: u64,
}

pub(crate) fn fmt_ms(v: f64) -> String {
    format!("{v:.1} ms")
}

pub(crate) fn latency_rows(l: &Latency) -> Vec<(String, String)> {
    vec![
        ("latency avg (send -> block seen)".into(), fmt_ms(l.avg)),
        ("latency p50".into(), fmt_ms(l.p50)),
        ("latency p90".into(), fmt_ms(l.p90)),
        ("latency p99".into(), fmt_ms(l.p99)),
        ("latency max".into(), fmt_ms(l.max)),
    ]
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A file-name-safe form of `s`.
pub(crate) fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}
