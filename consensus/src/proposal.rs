//! The commit handshake: what a proposer learns about its entry.
//!
//! [`crate::Consensus::propose_block`] returns a [`Proposal`]: the log position (index, term)
//! raft-rs gave the entry on the leader, and a receiver that gets exactly one
//! [`ProposalOutcome`]. In Raft an entry is identified by (index, term) (the Log Matching
//! property), so when the driver applies the entry at the proposal's index:
//! - the same term: it is this proposal's entry, and the outcome is what the state machine made
//!   of it (the new head, or a deterministic refusal);
//! - another term: a later leader overwrote it, and the proposal is dropped.
//!
//! A snapshot that covers the index drops the proposal too (this node never applies that
//! entry itself), and so does the driver stopping. A leader that loses its term keeps its
//! proposals pending: they settle once the entries at their indexes are applied, whatever the
//! next leader did with them. As raft-rs's `five_mem_node` example tells each proposer when its
//! entry is applied.

use alloy_primitives::B256;
use std::{
    collections::BTreeMap,
    sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    time::Duration,
};

/// A block entry proposed on the leader.
#[derive(Debug)]
pub struct Proposal {
    /// Its Raft log index.
    pub index: u64,
    /// The leader's term it was appended in.
    pub term: u64,
    outcome: Receiver<ProposalOutcome>,
}

/// What became of a proposed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalOutcome {
    /// Committed and applied: the block is the new head.
    Applied {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
    },
    /// Committed and applied as a no-op: the state machine refused the block (stale or
    /// invalid, as on every node). The reason is for logs.
    Refused(String),
    /// Never applied on this node.
    Dropped(DropReason),
}

/// Why a proposal was never applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// A later leader's entry (of term `term`) took the proposal's index.
    #[error("overwritten by an entry of term {term}")]
    Overwritten {
        /// The term of the entry applied at the index.
        term: u64,
    },
    /// A snapshot from the leader covered the index.
    #[error("covered by a snapshot")]
    Snapshot,
    /// Consensus stopped first.
    #[error("consensus stopped")]
    Stopped,
}

impl Proposal {
    /// Waits up to `timeout` for the outcome; `None` if it has not come yet. After the driver
    /// stopped: `Dropped(Stopped)`.
    pub fn wait(&self, timeout: Duration) -> Option<ProposalOutcome> {
        match self.outcome.recv_timeout(timeout) {
            Ok(outcome) => Some(outcome),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(ProposalOutcome::Dropped(DropReason::Stopped)),
        }
    }
}

/// The driver's side: proposals waiting for their index to be applied.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_index: BTreeMap<u64, (u64, SyncSender<ProposalOutcome>)>,
}

impl Pending {
    /// Registers the entry raft-rs appended at (`index`, `term`).
    pub(crate) fn register(&mut self, index: u64, term: u64) -> Proposal {
        let (tx, outcome) = mpsc::sync_channel(1);
        self.by_index.insert(index, (term, tx));
        Proposal { index, term, outcome }
    }

    /// The entry at (`index`, `term`) was applied: the proposal at `index` gets `outcome` if
    /// that entry is its own, else it was overwritten; any proposal below `index` (none, as
    /// entries apply in order) is settled as overwritten too.
    pub(crate) fn applied(&mut self, index: u64, term: u64, outcome: ProposalOutcome) {
        let later = self.by_index.split_off(&(index + 1));
        let mut outcome = Some(outcome);
        for (at, (proposed_term, tx)) in std::mem::replace(&mut self.by_index, later) {
            let result = match outcome.take() {
                Some(own) if at == index && proposed_term == term => own,
                other => {
                    outcome = other;
                    ProposalOutcome::Dropped(DropReason::Overwritten { term })
                }
            };
            let _ = tx.try_send(result);
        }
    }

    /// A snapshot covers everything up to `index`.
    pub(crate) fn snapshot(&mut self, index: u64) {
        let later = self.by_index.split_off(&(index + 1));
        for (_, (_, tx)) in std::mem::replace(&mut self.by_index, later) {
            let _ = tx.try_send(ProposalOutcome::Dropped(DropReason::Snapshot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn each_proposal_settles_once_by_index_and_term() {
        let mut pending = Pending::default();
        let own = pending.register(5, 2);
        let overwritten = pending.register(6, 2);
        let covered = pending.register(9, 2);
        let stopped = pending.register(12, 2);
        assert!(own.wait(NOW).is_none(), "nothing applied yet");

        let head = ProposalOutcome::Applied { number: 4, hash: B256::repeat_byte(1) };
        pending.applied(5, 2, head.clone());
        assert_eq!(own.wait(NOW), Some(head));
        assert!(overwritten.wait(NOW).is_none());

        // A new leader's block of term 3 at index 6: not the proposal's entry.
        pending.applied(6, 3, ProposalOutcome::Applied { number: 5, hash: B256::repeat_byte(2) });
        assert_eq!(
            overwritten.wait(NOW),
            Some(ProposalOutcome::Dropped(DropReason::Overwritten { term: 3 }))
        );

        pending.snapshot(10);
        assert_eq!(covered.wait(NOW), Some(ProposalOutcome::Dropped(DropReason::Snapshot)));
        assert!(stopped.wait(NOW).is_none());
        drop(pending);
        assert_eq!(stopped.wait(NOW), Some(ProposalOutcome::Dropped(DropReason::Stopped)));
    }
}
