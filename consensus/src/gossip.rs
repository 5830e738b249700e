//! Transaction gossip, inbound: batches of EIP-2718 transactions that followers send to this
//! node, queued for the node's pool. The queue is bounded in bytes: the transport task never
//! waits for the pool, and a batch that does not fit is dropped (its follower re-sends its
//! whole pool every 2 s, so a drop only delays).

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use tokio::sync::mpsc;

/// Default bound of [`forwarded_queue`], bytes of queued transactions (64 MiB).
pub const DEFAULT_FORWARDED_QUEUE_BYTES: usize = 64 << 20;

/// The transport's end of the queue.
#[derive(Debug, Clone)]
pub(crate) struct ForwardedSender {
    tx: mpsc::UnboundedSender<Vec<Vec<u8>>>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The pool's end: batches in arrival order.
#[derive(Debug)]
pub struct ForwardedTxs {
    rx: mpsc::UnboundedReceiver<Vec<Vec<u8>>>,
    queued: Arc<AtomicUsize>,
}

/// A queue that holds at most `limit` bytes of transactions (at least one batch always fits
/// an empty queue).
pub(crate) fn forwarded_queue(limit: usize) -> (ForwardedSender, ForwardedTxs) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (ForwardedSender { tx, queued: queued.clone(), limit }, ForwardedTxs { rx, queued })
}

fn size(batch: &[Vec<u8>]) -> usize {
    batch.iter().map(Vec::len).sum()
}

impl ForwardedSender {
    /// Queues `batch` unless that would pass the byte bound; returns whether it was queued.
    pub(crate) fn offer(&self, batch: Vec<Vec<u8>>) -> bool {
        let bytes = size(&batch);
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        if before > 0 && before + bytes > self.limit {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        if self.tx.send(batch).is_err() {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }
}

impl ForwardedTxs {
    /// The next batch; `None` once the transport has stopped. Blocking: call from a plain
    /// thread.
    pub fn blocking_recv(&mut self) -> Option<Vec<Vec<u8>>> {
        let batch = self.rx.blocking_recv()?;
        self.queued.fetch_sub(size(&batch), Ordering::AcqRel);
        Some(batch)
    }

    /// Bytes of transactions waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_drops_what_passes_its_byte_bound_and_frees_what_is_taken() {
        let (tx, mut rx) = forwarded_queue(100);
        // An oversized batch still fits an empty queue (a lone large batch is not starved).
        assert!(tx.offer(vec![vec![0; 150]]));
        assert!(!tx.offer(vec![vec![0; 10]]), "the queue holds 150 of 100 bytes");
        assert_eq!(rx.blocking_recv().unwrap()[0].len(), 150);
        assert_eq!(rx.queued_bytes(), 0);
        assert!(tx.offer(vec![vec![0; 60]]));
        assert!(tx.offer(vec![vec![0; 40]]));
        assert!(!tx.offer(vec![vec![0; 1]]));
        assert_eq!(rx.queued_bytes(), 100);
        drop(tx);
        assert_eq!(rx.blocking_recv().unwrap()[0].len(), 60);
        assert_eq!(rx.blocking_recv().unwrap()[0].len(), 40);
        assert!(rx.blocking_recv().is_none(), "the queue ends with its sender");
    }
}
