//! One timed run: batched sends over all nodes, inclusion followed block by block.

use crate::chain::{follow_blocks, Target, Tracker};
use crate::report::{ms, timeline, Latency};
use alloy_primitives::B256;
use fogchain_client::SignedTx;
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::{
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

use super::LoadArgs;

/// One batch request, ready to send.
pub(crate) struct Batch {
    pub(crate) node: usize,
    pub(crate) hashes: Vec<B256>,
    pub(crate) body: Vec<u8>,
}

impl Batch {
    pub(crate) fn new(node: usize, txs: &[SignedTx]) -> Self {
        let calls: Vec<(&str, Value)> =
            txs.iter().map(|t| ("eth_sendRawTransaction", json!([t.raw_hex()]))).collect();
        let body = fogchain_client::jsonrpc::batch(&calls);
        Self { node, hashes: txs.iter().map(|t| t.hash).collect(), body }
    }

    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }
}

/// What one load run measured.
pub(crate) struct Run {
    pub(crate) sent: usize,
    pub(crate) rejected: usize,
    pub(crate) reasons: Vec<String>,
    pub(crate) included: usize,
    pub(crate) lost: usize,
    /// First send to last inclusion.
    pub(crate) duration: Duration,
    /// Included per second over `duration`.
    pub(crate) tps: f64,
    pub(crate) latency: Latency,
    /// Sorted latencies, ms.
    pub(crate) samples: Vec<f64>,
    /// Included per second, 1 s buckets.
    pub(crate) timeline: Vec<(f64, f64)>,
    pub(crate) hashes: Vec<(B256, u64)>,
}

/// Sends `batches` (at `rate` transactions/s when given, else as fast as `concurrency` allows)
/// and waits until every accepted transaction is in a block, or nothing is included for
/// `stall` seconds.
pub(crate) async fn run(
    target: &Target,
    batches: Vec<Batch>,
    rate: Option<f64>,
    args: &LoadArgs,
    label: &str,
) -> eyre::Result<Run> {
    let total: usize = batches.iter().map(Batch::len).sum();
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let done = Arc::new(AtomicBool::new(false));
    let head = target.nodes[0].quantity("eth_blockNumber", json!([])).await? as u64;
    let follower = tokio::spawn(follow_blocks(target.nodes[0].clone(), head, tracker.clone(), done.clone()));
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>24} [{bar:40.cyan/blue}] {pos}/{len} in blocks, {per_sec} ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_string());
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let t0 = Instant::now();
    let mut offset = 0usize;
    let mut sends = Vec::new();
    for batch in batches {
        if let Some(rate) = rate {
            let due = t0 + Duration::from_secs_f64(offset as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        offset += batch.len();
        while tracker.lock().outstanding() + batch.len() > args.window.max(batch.len()) {
            if follower.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if follower.is_finished() {
            break;
        }
        let permit = permits.clone().acquire_owned().await?;
        let rpc = target.nodes[batch.node].clone();
        let tracker = tracker.clone();
        tracker.lock().sent(&batch.hashes, Instant::now());
        bar.set_position(tracker.lock().included.len() as u64);
        sends.push(tokio::spawn(async move {
            let _permit = permit;
            let n = batch.len();
            let answers = rpc.raw_batch(batch.body, n).await;
            let mut t = tracker.lock();
            match answers {
                Ok(answers) => {
                    for (h, a) in batch.hashes.iter().zip(answers) {
                        if let Err(e) = a {
                            t.refused(h, e.to_string());
                        }
                    }
                }
                Err(e) => {
                    for h in &batch.hashes {
                        t.refused(h, format!("{e:#}"));
                    }
                }
            }
        }));
    }
    for s in sends {
        s.await?;
    }
    let sent_all = t0.elapsed();
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    loop {
        let (included, outstanding) = {
            let t = tracker.lock();
            (t.included.len(), t.outstanding())
        };
        bar.set_position(included as u64);
        if outstanding == 0 {
            break;
        }
        if included != last_count {
            last_count = included;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(args.stall_seconds) {
            bar.println(format!(
                "{outstanding} transactions not included after {} s without progress",
                args.stall_seconds
            ));
            break;
        }
        if follower.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    follower.await??;
    bar.finish_and_clear();
    let t = std::mem::take(&mut *tracker.lock());
    let last = t.included.iter().map(|(at, _)| *at).max().unwrap_or(t0);
    let duration = last.saturating_duration_since(t0).max(sent_all);
    let mut samples: Vec<f64> = t.included.iter().map(|(_, l)| ms(*l)).collect();
    let latency = Latency::of(&mut samples);
    let events: Vec<Instant> = t.included.iter().map(|(at, _)| *at).collect();
    Ok(Run {
        sent: total,
        rejected: t.rejected,
        reasons: t.reasons,
        included: t.included.len(),
        lost: total - t.included.len() - t.rejected,
        duration,
        tps: t.included.len() as f64 / duration.as_secs_f64().max(1e-9),
        latency,
        samples,
        timeline: timeline(&events, t0),
        hashes: t.hashes,
    })
}
