//! The commit handshake on a real one-member cluster (real RocksDB in a temp dir, a real libp2p
//! listener on 127.0.0.1): `propose_block` returns the entry's log position, and the proposer
//! learns "applied" (with the head) or "refused" from the state machine's verdict, without
//! polling the head; the applied index has one writer for refused entries (consensus) and is
//! written with the block otherwise.

use alloy_primitives::{keccak256, B256};
use fogchain_consensus::{
    AppliedBlock, ApplyError, CommittedBlock, Consensus, ConsensusConfig, Directory, DriverConfig,
    ProposalOutcome, Role, StateMachine,
};
use fogchain_genesis::{ChainSpec, Member};
use fogchain_storage::{meta_keys, ChainReader, RawOp, Storage, Table};
use parking_lot::Mutex;
use std::{sync::Arc, time::Duration};

/// A state machine whose "blocks" are any bytes not starting with `!` (those are refused).
struct Ledger {
    storage: Storage,
    head: Mutex<(u64, B256)>,
}

impl StateMachine for Ledger {
    fn storage(&self) -> &Storage {
        &self.storage
    }

    fn apply_block(&self, entry: CommittedBlock<'_>) -> Result<AppliedBlock, ApplyError> {
        if entry.data.starts_with(b"!") {
            return Err(ApplyError::refused(String::from_utf8_lossy(entry.data).into_owned()));
        }
        let mut head = self.head.lock();
        let block = AppliedBlock { number: head.0 + 1, hash: keccak256(entry.data) };
        // The block's write carries the index it was given.
        let index = entry.index.to_be_bytes().to_vec();
        self.storage
            .write_raw(&[RawOp::Put(Table::Meta, meta_keys::APPLIED_INDEX.to_vec(), index)], false)?;
        *head = (block.number, block.hash);
        Ok(block)
    }

    fn head(&self) -> (u64, B256) {
        *self.head.lock()
    }

    fn encoded_blocks(&self, _from: u64, _max_bytes: usize) -> Vec<Vec<u8>> {
        vec![]
    }

    fn import_block(&self, _data: &[u8]) -> Result<AppliedBlock, ApplyError> {
        Err(ApplyError::refused("no block sync in this test"))
    }

    fn members_changed(&self, _directory: &Directory) {}
}

fn spec() -> ChainSpec {
    let genesis = alloy_genesis::Genesis {
        config: fogchain_genesis::prague_chain_config(1337),
        gas_limit: 30_000_000,
        ..Default::default()
    };
    ChainSpec::new(genesis, Default::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposer_learns_applied_or_refused_with_the_log_position() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), &spec()).unwrap();
    let ledger = Arc::new(Ledger { storage: storage.clone(), head: Mutex::new((0, B256::ZERO)) });
    let config = ConsensusConfig {
        raft_id: 1,
        node_key: keccak256(b"node 1").0,
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        driver: DriverConfig {
            tick: Duration::from_millis(20),
            election_ticks: 10,
            heartbeat_ticks: 2,
            log_retention: 1024,
            log_retention_bytes: 1 << 20,
        },
        fault_file: None,
        forwarded_queue_bytes: 1 << 20,
    };
    let members =
        [Member { raft_id: 1, address: Default::default(), peer_id: String::new(), p2p: String::new() }];
    let consensus = Arc::new(Consensus::start(config, &members, ledger.clone()).await.unwrap());
    let mut status = consensus.subscribe();
    tokio::time::timeout(Duration::from_secs(60), status.wait_for(|s| s.role == Role::Leader))
        .await
        .expect("a one-member cluster elects itself")
        .unwrap();

    let c = consensus.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        let wait = |p: &fogchain_consensus::Proposal| {
            (0..1200).find_map(|_| p.wait(Duration::from_millis(50))).expect("an outcome within 60 s")
        };
        let first = c.propose_block(b"block one".to_vec()).unwrap();
        let first_outcome = wait(&first);
        let refused = c.propose_block(b"!not a block".to_vec()).unwrap();
        let refused_outcome = wait(&refused);
        let second = c.propose_block(b"block two".to_vec()).unwrap();
        let second_outcome = wait(&second);
        vec![
            (first.index, first.term, first_outcome),
            (refused.index, refused.term, refused_outcome),
            (second.index, second.term, second_outcome),
        ]
    })
    .await
    .unwrap();

    let term = consensus.status().term;
    let (i1, t1, o1) = &outcomes[0];
    let (i2, _, o2) = &outcomes[1];
    let (i3, _, o3) = &outcomes[2];
    assert_eq!(*t1, term);
    assert_eq!((*i2, *i3), (i1 + 1, i1 + 2), "consecutive log positions");
    assert_eq!(*o1, ProposalOutcome::Applied { number: 1, hash: keccak256(b"block one") });
    assert!(matches!(o2, ProposalOutcome::Refused(reason) if reason.contains("!not a block")), "{o2:?}");
    assert_eq!(*o3, ProposalOutcome::Applied { number: 2, hash: keccak256(b"block two") });
    // The refused entry's index was recorded by consensus, the blocks' by their own writes.
    assert_eq!(storage.applied_index().unwrap(), *i3);
    // The status is published after the Ready that applied the entry.
    tokio::time::timeout(Duration::from_secs(60), status.wait_for(|s| s.applied >= *i3))
        .await
        .expect("the status shows the applied index")
        .unwrap();

    consensus.shutdown().await;
    assert!(consensus.propose_block(b"late".to_vec()).is_err(), "no proposal after shutdown");
}
