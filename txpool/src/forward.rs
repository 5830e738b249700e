//! Transaction gossip to the Raft leader: only the leader builds blocks, so a follower sends
//! what its clients submitted there, and the leader pools what followers send it.
//!
//! A follower keeps every forwarded transaction until a committed block uses its nonce, so a
//! leader change loses nothing: the new leader gets the whole pool again. Every 2 s the pool is
//! re-sent (a batch may have been lost with a connection); the leader skips what it has.

use crate::TxPool;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The path to the leader, as the consensus layer provides it (`fogchain-consensus`'s
/// `TxGossip` implements it; this crate does not depend on consensus).
pub trait LeaderLink: Send + Sync {
    /// Raft id of the current leader when another node leads; `None` when this node leads or
    /// no leader is known.
    fn remote_leader(&self) -> Option<u64>;
    /// Sends EIP-2718 encoded transactions to member `leader` (best effort).
    fn send_to_leader(&self, leader: u64, txs: Vec<Vec<u8>>);
}

/// Most transactions in one forwarded batch.
pub const FORWARD_BATCH: usize = 2_000;
/// Most bytes of encoded transactions in one forwarded batch: well under the transport's
/// 32 MiB request cap (`fogchain_consensus::MAX_REQUEST_BYTES`), whatever the transactions'
/// sizes (up to 128 KiB each).
pub const FORWARD_BATCH_BYTES: usize = 8 << 20;
/// The whole pool is re-sent this often.
const RESEND: Duration = Duration::from_secs(2);

/// Forwards `pool` to the leader while this node follows, until `shutdown` is cancelled.
/// Blocking: run it on its own thread. Each round costs O(new transactions): only what arrived
/// since the last round is sent ([`TxPool::arrived_after`]), except for the periodic re-send.
pub fn forward_pool(pool: &TxPool, link: &dyn LeaderLink, shutdown: &CancellationToken) {
    let mut sent_up_to = 0u64;
    let mut leader = None;
    let mut last_full = Instant::now();
    while !shutdown.is_cancelled() {
        let generation = pool.generation();
        let now_leader = link.remote_leader();
        if now_leader != leader || last_full.elapsed() > RESEND {
            leader = now_leader;
            sent_up_to = 0;
            last_full = Instant::now();
        }
        if let Some(to) = leader.filter(|_| !pool.is_empty()) {
            let (max, txs) = pool.arrived_after(sent_up_to);
            for batch in batches(txs.iter().map(|tx| tx.encoded_2718())) {
                link.send_to_leader(to, batch);
            }
            sent_up_to = max;
        }
        pool.wait_for_change(generation, Duration::from_millis(250));
    }
}

/// Splits encoded transactions into batches of at most [`FORWARD_BATCH`] transactions and
/// [`FORWARD_BATCH_BYTES`] bytes (one transaction over the byte bound goes alone).
fn batches(encoded: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let (mut batch, mut bytes): (Vec<Vec<u8>>, usize) = (Vec::new(), 0);
    for tx in encoded {
        if !batch.is_empty() && (batch.len() == FORWARD_BATCH || bytes + tx.len() > FORWARD_BATCH_BYTES) {
            out.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += tx.len();
        batch.push(tx);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

impl TxPool {
    /// Pools transactions a follower forwarded (EIP-2718 bytes), skipping the undecodable and
    /// those already pooled; refusals are only logged (the follower keeps its copy and the
    /// client already had its answer there).
    pub fn add_forwarded(&self, txs: Vec<Vec<u8>>) {
        for bytes in txs {
            let Ok(tx) = alloy_consensus::TxEnvelope::decode_2718(&mut &bytes[..]) else { continue };
            if self.get(tx.tx_hash()).is_some() {
                continue;
            }
            if let Err(e) = self.add(tx, bytes.len()) {
                tracing::debug!(error = %e, "forwarded transaction not pooled");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        pool::tests::{fixture, signed},
        PoolConfig,
    };
    use alloy_eips::eip2718::Encodable2718;
    use parking_lot::Mutex;
    use std::sync::Arc;

    /// A leader link that records what it is given; the leader is settable.
    #[derive(Default)]
    struct Recorder {
        leader: Mutex<Option<u64>>,
        sent: Mutex<Vec<(u64, Vec<Vec<u8>>)>>,
    }

    impl LeaderLink for Recorder {
        fn remote_leader(&self) -> Option<u64> {
            *self.leader.lock()
        }
        fn send_to_leader(&self, leader: u64, txs: Vec<Vec<u8>>) {
            self.sent.lock().push((leader, txs));
        }
    }

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn batches_stay_under_the_count_and_byte_bounds() {
        let big = vec![0u8; 128 * 1024];
        let split = batches(std::iter::repeat_n(big.clone(), 100));
        assert!(split.len() >= 2);
        assert!(split.iter().all(|b| b.iter().map(Vec::len).sum::<usize>() <= FORWARD_BATCH_BYTES));
        assert_eq!(split.iter().map(Vec::len).sum::<usize>(), 100);
        let small = batches(std::iter::repeat_n(vec![1u8; 120], 4_500));
        assert_eq!(small.iter().map(Vec::len).collect::<Vec<_>>(), [FORWARD_BATCH, FORWARD_BATCH, 500]);
        assert!(batches(std::iter::empty()).is_empty());
    }

    #[test]
    fn a_follower_forwards_new_transactions_to_the_leader_and_stops_on_shutdown() {
        let f = fixture(PoolConfig::default());
        let tx = signed(&f.keys[0], 0, 10_000_000_000);
        let bytes = tx.encoded_2718();
        f.pool.add(tx, bytes.len()).unwrap();
        let pool = Arc::new(f.pool);
        let link = Arc::new(Recorder::default());
        let shutdown = CancellationToken::new();
        let thread = {
            let (pool, link, shutdown) = (pool.clone(), link.clone(), shutdown.clone());
            std::thread::spawn(move || forward_pool(&pool, link.as_ref(), &shutdown))
        };
        // No leader elsewhere: nothing is sent.
        std::thread::sleep(Duration::from_millis(300));
        assert!(link.sent.lock().is_empty());
        // Another node leads: the pool goes there.
        *link.leader.lock() = Some(2);
        pool.wake();
        wait_until("the forward", || {
            link.sent.lock().iter().any(|(to, txs)| *to == 2 && txs == std::slice::from_ref(&bytes))
        });
        // The leader pools what it is sent, once.
        let leader = fixture(PoolConfig::default());
        let batch = link.sent.lock()[0].1.clone();
        leader.pool.add_forwarded(batch.clone());
        leader.pool.add_forwarded(batch);
        leader.pool.add_forwarded(vec![b"junk".to_vec()]);
        assert_eq!(leader.pool.len(), 1);
        shutdown.cancel();
        pool.wake();
        thread.join().unwrap();
    }
}
