//! Checks on a member's Raft message before raft-rs sees it.
//!
//! Members are authenticated (Noise with their registered key) and the transport caps a
//! request at [`crate::transport::MAX_REQUEST_BYTES`], but raft-rs trusts message contents: some
//! values make it panic (`fatal!`) instead of refusing them, which would stop this node. Such a
//! message is dropped and counted ([`crate::RaftStatus::dropped_messages`]); a correct leader
//! never sends one, and whatever a lost message carried is sent again.
//!
//! | message | refused when | raft-rs would |
//! |---|---|---|
//! | any | sender or recipient is not the connection's member and this node (checked by the driver) | act for another member |
//! | local or unused kinds (`MsgHup`, `MsgBeat`, `MsgPropose`, `MsgUnreachable`, `MsgSnapStatus`, `MsgCheckQuorum`, `MsgTransferLeader`, `MsgReadIndex`, `MsgReadIndexResp`) | always: only the leader proposes, on its own node | start elections, append a member's entries (a conf change) |
//! | the others | term 0 (raft-rs's mark of a local message) | panic answering a vote (found by the `raft_message` fuzz target) |
//! | not an append or snapshot | it carries entries or a snapshot | — (unused data, memory) |
//! | `MsgHeartbeat` | commit index beyond this node's last index | panic in `commit_to` |
//! | `MsgAppend` | more than [`MAX_APPEND_ENTRIES`] entries, or indexes not following the message's index | misplace entries |
//! | `MsgAppend` | an entry at or below the commit index with another term than ours | panic: conflict with a committed entry |
//! | `MsgAppend` | log term 0 after index 0, or an entry of term 0 (a real entry has term >= 1; raft-rs reads term 0 for any index past the log, so it takes them as matching) | panic in `commit_to` (found by the `raft_message` fuzz target) |
//! | `MsgAppend` | a log term or an entry's term above the message's term | — (no leader has such entries) |

use raft::{
    eraftpb::{Message, MessageType},
    RawNode,
};

/// Most entries in one append message (the leader sends at most 4 MiB per message).
pub const MAX_APPEND_ENTRIES: usize = 65_536;

/// Why `msg` must be dropped before `node` steps it (for the log), or `None` when raft-rs may
/// have it. Generic over the log storage so the fuzz targets run it on raft-rs's `MemStorage`.
pub fn refuse_message<T: raft::Storage>(node: &RawNode<T>, msg: &Message) -> Option<String> {
    let log = &node.raft.raft_log;
    let kind = msg.get_msg_type();
    let carries_data = !msg.entries.is_empty() || msg.snapshot.is_some();
    use MessageType::*;
    if !matches!(
        kind,
        MsgAppend
            | MsgAppendResponse
            | MsgRequestVote
            | MsgRequestVoteResponse
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgSnapshot
            | MsgHeartbeat
            | MsgHeartbeatResponse
            | MsgTimeoutNow
    ) {
        return Some(format!("{kind:?} is not accepted from another node"));
    }
    if msg.term == 0 {
        return Some(format!("{kind:?} without a term"));
    }
    match kind {
        MessageType::MsgAppend => {
            if msg.entries.len() > MAX_APPEND_ENTRIES {
                return Some(format!("{} entries in one append", msg.entries.len()));
            }
            if (msg.index > 0 && msg.log_term == 0) || msg.log_term > msg.term {
                return Some(format!(
                    "log term {} at index {} in a term {} append",
                    msg.log_term, msg.index, msg.term
                ));
            }
            for (i, entry) in msg.entries.iter().enumerate() {
                if Some(entry.index) != msg.index.checked_add(i as u64 + 1) {
                    return Some(format!("entry {i} has index {} after index {}", entry.index, msg.index));
                }
                if entry.term == 0 || entry.term > msg.term {
                    return Some(format!(
                        "entry {} has term {} in a term {} append",
                        entry.index, entry.term, msg.term
                    ));
                }
                if entry.index <= log.committed && log.term(entry.index).is_ok_and(|t| t != entry.term) {
                    return Some(format!(
                        "entry {} of term {} conflicts with the committed entry",
                        entry.index, entry.term
                    ));
                }
            }
            None
        }
        MessageType::MsgSnapshot => None,
        MessageType::MsgHeartbeat if msg.commit > log.last_index() => {
            Some(format!("heartbeat commit index {} beyond the last index {}", msg.commit, log.last_index()))
        }
        _ if carries_data => Some(format!("{kind:?} carries entries or a snapshot")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{refuse_message as refuse, *};
    use crate::log_store::LogStore;
    use raft::eraftpb::Entry;

    fn node() -> (tempfile::TempDir, RawNode<LogStore>) {
        let genesis = alloy_genesis::Genesis {
            config: fogchain_genesis::prague_chain_config(1337),
            gas_limit: 30_000_000,
            ..Default::default()
        };
        let spec = fogchain_genesis::ChainSpec::new(genesis, Default::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = fogchain_storage::Storage::open(dir.path(), &spec).unwrap();
        let store = LogStore::open(db, &[1, 2, 3]).unwrap();
        let entries: Vec<Entry> = (2..=5).map(|i| entry(i, 1)).collect();
        store.append(&entries, None, true).unwrap();
        let config = raft::Config { id: 1, ..Default::default() };
        let mut node = RawNode::new(&config, store, &crate::slog_bridge::logger()).unwrap();
        node.raft.raft_log.committed = 3;
        (dir, node)
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, ..Default::default() }
    }

    fn message(kind: MessageType) -> Message {
        let mut m = Message::default();
        m.set_msg_type(kind);
        (m.from, m.to, m.term) = (2, 1, 1);
        m
    }

    #[test]
    fn values_raft_rs_would_panic_on_are_refused() {
        let (_dir, mut node) = node();
        let mut heartbeat = message(MessageType::MsgHeartbeat);
        heartbeat.commit = 5;
        assert_eq!(refuse(&node, &heartbeat), None);
        heartbeat.commit = 100;
        assert!(refuse(&node, &heartbeat).unwrap().contains("beyond the last index 5"));
        // What raft-rs does with it unchecked: the node's thread would die.
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.step(heartbeat)));
        assert!(stepped.is_err(), "raft-rs panics on a commit index beyond the log");

        let (_dir, node) = self::node();
        let mut append = message(MessageType::MsgAppend);
        (append.term, append.index, append.log_term) = (2, 1, 1);
        append.entries = vec![entry(2, 1), entry(3, 1), entry(4, 2)].into();
        assert_eq!(refuse(&node, &append), None, "a conflict above the commit index is Raft's to resolve");
        append.entries = vec![entry(2, 1), entry(3, 2)].into();
        assert!(refuse(&node, &append).unwrap().contains("conflicts with the committed entry"));
        append.entries = vec![entry(2, 1), entry(4, 1)].into();
        assert!(refuse(&node, &append).unwrap().contains("has index 4 after index 1"));
        append.index = u64::MAX;
        append.entries = vec![entry(0, 1)].into();
        assert!(refuse(&node, &append).is_some(), "no overflow");

        let mut vote = message(MessageType::MsgRequestVote);
        assert_eq!(refuse(&node, &vote), None);
        vote.entries = vec![entry(2, 1)].into();
        assert!(refuse(&node, &vote).is_some());
        // The raft_message fuzz target's crash: a vote request without a term.
        let mut vote = message(MessageType::MsgRequestVote);
        vote.term = 0;
        assert!(refuse(&node, &vote).unwrap().contains("without a term"));
        // The raft_message fuzz target's second crash (CI): an append past the log with log term
        // 0 matches raft-rs's "term 0 beyond the last index" and commits past the log.
        let (_dir, node) = self::node();
        let mut past = message(MessageType::MsgAppend);
        (past.term, past.index, past.log_term, past.commit) = (24, 48, 0, u64::MAX / 2);
        assert!(refuse(&node, &past).unwrap().contains("log term 0 at index 48"));
        let mut zero_entry = message(MessageType::MsgAppend);
        (zero_entry.index, zero_entry.log_term, zero_entry.commit) = (5, 1, 6);
        zero_entry.entries = vec![entry(6, 0)].into();
        assert!(refuse(&node, &zero_entry).unwrap().contains("entry 6 has term 0"));
        zero_entry.entries = vec![entry(6, 2)].into();
        assert!(refuse(&node, &zero_entry).unwrap().contains("entry 6 has term 2 in a term 1 append"));
        zero_entry.entries = vec![entry(6, 1)].into();
        assert_eq!(refuse(&node, &zero_entry), None);
        for unchecked in [past, {
            zero_entry.entries = vec![entry(6, 0)].into();
            zero_entry
        }] {
            let (_dir, mut node) = self::node();
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.step(unchecked)));
            assert!(stepped.is_err(), "raft-rs panics committing past its log");
        }
        // A member cannot start this node's election or slip entries (a conf change) into the
        // leader's log.
        for kind in [MessageType::MsgHup, MessageType::MsgPropose, MessageType::MsgTransferLeader] {
            assert!(refuse(&node, &message(kind)).unwrap().contains("not accepted"));
        }
    }
}
