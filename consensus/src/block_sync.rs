//! Block sync: after installing a snapshot, a follower fetches the blocks between its head and
//! the snapshot's head from members (the leader first, then the others in turn), verifying and
//! applying each through the state machine. It runs on its own thread so that the Raft thread
//! keeps ticking, answering the leader and persisting entries meanwhile; the Raft thread holds
//! back the entries committed during the sync and applies them once it is done.

use crate::{
    members::Directory,
    transport::{Command, TransportHandle},
    ApplyError, ConsensusError, RaftStatus, StateMachine,
};
use alloy_primitives::B256;
use parking_lot::RwLock;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};
use tokio::sync::{oneshot, watch};

/// How long [`BlockSync::stop`] waits for the thread (one block import and a poll interval).
const STOP_WAIT: Duration = Duration::from_secs(10);

/// How often the thread looks at the stop flag while it waits for a member's answer.
const ANSWER_POLL: Duration = Duration::from_millis(20);

/// A running block sync.
pub(crate) struct BlockSync {
    done: mpsc::Receiver<Result<(), ConsensusError>>,
    stop: Arc<AtomicBool>,
}

/// What the sync thread needs.
struct Fetcher {
    machine: Arc<dyn StateMachine>,
    transport: TransportHandle,
    directory: Arc<RwLock<Directory>>,
    status: watch::Receiver<RaftStatus>,
    own_id: u64,
    stop: Arc<AtomicBool>,
}

impl BlockSync {
    /// Starts fetching blocks until the head is `target` (number, hash).
    pub(crate) fn start(
        machine: Arc<dyn StateMachine>,
        transport: TransportHandle,
        directory: Arc<RwLock<Directory>>,
        status: watch::Receiver<RaftStatus>,
        own_id: u64,
        target: (u64, B256),
    ) -> Self {
        let (tx, done) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let fetcher = Fetcher { machine, transport, directory, status, own_id, stop: stop.clone() };
        let spawned = std::thread::Builder::new().name("block-sync".into()).spawn({
            let tx = tx.clone();
            move || {
                let _ = tx.send(fetcher.run(target.0, target.1));
            }
        });
        if let Err(e) = spawned {
            let _ = tx.send(Err(ConsensusError::Sync(format!("spawning the block-sync thread: {e}"))));
        }
        Self { done, stop }
    }

    /// The outcome once the thread is done; `None` while it runs.
    pub(crate) fn finished(&self) -> Option<Result<(), ConsensusError>> {
        match self.done.try_recv() {
            Ok(result) => Some(result),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => {
                Some(Err(ConsensusError::Sync("the block-sync thread ended without a result".into())))
            }
        }
    }

    /// Stops the thread (shutdown, or consensus stopping on a fault) and waits until it has
    /// ended, at most [`STOP_WAIT`]: it checks the flag between blocks and while it waits for a
    /// member's answer, so once this returns it no longer touches storage (a block import
    /// under way completes first).
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        match self.done.recv_timeout(STOP_WAIT) {
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::error!("the block-sync thread did not stop within {STOP_WAIT:?}")
            }
        }
    }
}

impl Fetcher {
    fn run(&self, number: u64, hash: B256) -> Result<(), ConsensusError> {
        let started = Instant::now();
        let mut attempt = 0u64;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Err(ConsensusError::Stopped);
            }
            let (head, head_hash) = self.machine.head();
            if head >= number {
                if head == number && head_hash != hash {
                    return Err(ConsensusError::Sync(format!(
                        "block {number} is {head_hash} here but {hash} in the snapshot"
                    )));
                }
                tracing::info!(
                    blocks = number,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "block sync done"
                );
                return Ok(());
            }
            // Ask the leader first, then the other members in turn.
            let mut candidates: Vec<u64> = vec![self.status.borrow().leader_id];
            candidates.extend(self.directory.read().current().map(|m| m.raft_id));
            candidates.retain(|id| *id != 0 && *id != self.own_id);
            candidates.dedup();
            if candidates.is_empty() {
                return Err(ConsensusError::Sync("no member to sync blocks from".into()));
            }
            let from = candidates[(attempt as usize) % candidates.len()];
            let (reply, mut answer) = oneshot::channel();
            self.transport.send(Command::Blocks { to: from, from: head + 1, reply });
            // Bounded: the transport answers every request (its request timeout is 15 s); the
            // stop flag is checked meanwhile.
            let answer = loop {
                match answer.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) if self.stop.load(Ordering::Acquire) => {
                        return Err(ConsensusError::Stopped)
                    }
                    Err(oneshot::error::TryRecvError::Empty) => std::thread::sleep(ANSWER_POLL),
                    Ok(answer) => break Ok(answer),
                    Err(oneshot::error::TryRecvError::Closed) => break Err(()),
                }
            };
            match answer {
                Ok(Ok(blocks)) if !blocks.is_empty() => {
                    let mut refused = None;
                    for block in blocks {
                        match self.machine.import_block(&block) {
                            Ok(block) if block.number >= number => break,
                            Ok(_) => {}
                            // A member that serves a bad block: ask the next one.
                            Err(ApplyError::Refused(reason)) => {
                                refused = Some(reason);
                                break;
                            }
                            // The database failed, or a fault: fatal for this node.
                            Err(fatal) => return Err(ConsensusError::Import(fatal)),
                        }
                    }
                    match refused {
                        None => {
                            attempt = 0;
                            continue;
                        }
                        Some(reason) => tracing::warn!(from, %reason, "block from member refused"),
                    }
                }
                Ok(Ok(_)) => tracing::debug!(from, "member has no blocks after {head}"),
                Ok(Err(e)) => tracing::debug!(from, error = %e, "block sync request failed"),
                Err(_) => return Err(ConsensusError::Sync("transport stopped".into())),
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(200.min(50 * attempt)));
        }
    }
}
