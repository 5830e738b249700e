//! Raft message decode + validation: whatever `refuse_message` lets through must not make
//! raft-rs panic when a follower steps it (a member's message must never kill a node).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protobuf::Message as _;
use raft::{
    eraftpb::{Entry, Message},
    storage::MemStorage,
    Config, RawNode,
};

fuzz_target!(|data: &[u8]| {
    let Ok(mut msg) = Message::parse_from_bytes(data) else { return };
    // The driver only passes messages from the connection's member to this node.
    msg.from = 2;
    msg.to = 1;
    // A follower at term 1 with entries 1..=5, committed up to 3.
    let storage = MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]));
    let entries: Vec<Entry> = (1..=5)
        .map(|i| {
            let mut e = Entry::default();
            e.index = i;
            e.term = 1;
            e
        })
        .collect();
    storage.wl().append(&entries).unwrap();
    let mut hard = raft::eraftpb::HardState::default();
    hard.term = 1;
    hard.commit = 3;
    storage.wl().set_hardstate(hard);
    let config = Config { id: 1, ..Default::default() };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let Ok(mut node) = RawNode::new(&config, storage, &logger) else { return };
    if fogchain_consensus::refuse_message(&node, &msg).is_none() {
        let _ = node.step(msg);
    }
});
