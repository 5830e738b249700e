//! Fogchain consensus: one chain agreed by the members with Raft.
//!
//! [`Consensus::start`] opens the Raft log in the node's RocksDB, starts the libp2p transport
//! (TCP + Noise + Yamux, members only) and the driver thread that owns raft-rs's `RawNode`.
//! Committed entries are blocks; the node applies them through its [`StateMachine`] in log
//! order, the leader included. Configuration changes (add a peer or a learner, promote, remove)
//! are Raft conf changes whose context carries the member record ([`Directory`]). A follower
//! too far behind receives a snapshot (applied index, head number and hash, ConfState,
//! directory) and fetches the missing blocks from members, verifying each (block sync).
//!
//! Security note: raft 0.7 decodes messages with rust-protobuf 2.28 (RUSTSEC-2024-0437,
//! uncontrolled recursion on crafted input). Only authenticated members can reach the decoder
//! and inbound requests are capped at [`MAX_REQUEST_BYTES`]; see docs/consensus.md.

mod block_sync;
mod driver;
mod gossip;
mod identity;
mod log_store;
mod members;
mod proposal;
mod slog_bridge;
mod state_machine;
mod transport;
mod validate;

pub use driver::DriverConfig;
pub use gossip::{ForwardedTxs, DEFAULT_FORWARDED_QUEUE_BYTES};
pub use identity::*;
pub use log_store::{LogStore, SnapshotSource, BOOTSTRAP_INDEX};
pub use members::*;
pub use proposal::{DropReason, Proposal, ProposalOutcome};
pub use state_machine::*;
pub use transport::{PeerInfo, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};
pub use validate::{refuse_message, MAX_APPEND_ENTRIES};

use alloy_primitives::B256;
use driver::{Driver, Input};
use fogchain_genesis::Member;
use fogchain_storage::{raft_keys, KvRead, StorageError, Table};
use libp2p::Multiaddr;
use parking_lot::{Mutex, RwLock};
use raft::eraftpb::{ConfChange, ConfChangeType};
use serde::{Deserialize, Serialize};
use std::{path::PathBuf, sync::Arc, time::Duration};
use tokio::sync::{oneshot, watch};
use transport::{Command, Inbound, TransportConfig, TransportHandle};

/// Errors of the consensus layer.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Only the leader can do this.
    #[error("not the Raft leader (leader is {leader}; 0 = unknown)")]
    NotLeader {
        /// Current leader's Raft id, 0 when unknown.
        leader: u64,
    },
    /// raft-rs refused.
    #[error("raft: {0}")]
    Raft(String),
    /// Another configuration change is not applied yet.
    #[error("another configuration change is in progress; retry when it is applied")]
    ConfChangePending,
    /// The request is invalid (unknown id, bad address, ...).
    #[error("{0}")]
    Invalid(String),
    /// Applying a committed block failed on this node (fatal for this node).
    #[error("applying a committed block: {0}")]
    Apply(#[source] ApplyError),
    /// Block sync could not complete.
    #[error("block sync: {0}")]
    Sync(String),
    /// A block fetched by block sync could not be imported (fatal for this node: a refused
    /// block is retried from another member instead).
    #[error("block sync: {0}")]
    Import(#[source] ApplyError),
    /// The transport could not start.
    #[error("{0}")]
    Transport(String),
    /// Timed out.
    #[error("{0}")]
    Timeout(String),
    /// The consensus thread has stopped.
    #[error("consensus stopped")]
    Stopped,
}

/// Why a node is not ready to serve its chain ([`Consensus::readiness`], `GET /ready`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The Raft thread stopped on a fault (the node is exiting).
    #[error("consensus stopped: {0}")]
    Stopped(String),
    /// No leader is known (an election, or cut off from the majority).
    #[error("no Raft leader known")]
    NoLeader,
    /// Blocks are being fetched after a snapshot.
    #[error("syncing blocks from the leader")]
    Syncing,
    /// Committed entries wait to be applied.
    #[error("catching up: applied {applied} of {commit} committed entries")]
    CatchingUp {
        /// Applied index.
        applied: u64,
        /// Commit index.
        commit: u64,
    },
}

/// What a Raft snapshot carries besides the ConfState: the state at the snapshot's index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotData {
    /// Head block number at the snapshot index.
    pub head_number: u64,
    /// Head block hash.
    pub head_hash: B256,
    /// Membership directory.
    pub directory: Directory,
}

/// Role of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Builds blocks.
    Leader,
    /// Voting follower.
    Follower,
    /// Campaigning.
    Candidate,
    /// Non-voting member.
    Learner,
    /// Not (yet) in the configuration: a node waiting to be added.
    Outsider,
}

/// A snapshot of the Raft state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RaftStatus {
    /// This node's Raft id.
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// Leader's Raft id (0: none known).
    pub leader_id: u64,
    /// Current term.
    pub term: u64,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// First index still in the log (earlier entries were compacted).
    pub first_index: u64,
    /// Last index in the log.
    pub last_index: u64,
    /// Entry data held in the log, bytes.
    pub log_bytes: u64,
    /// Voting members.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Block sync after a snapshot is under way: the head is behind the applied index, so this
    /// node must not mint.
    pub syncing: bool,
    /// Member messages dropped before raft-rs since start (undecodable, misaddressed, or
    /// values raft-rs would panic on; see `validate.rs`).
    pub dropped_messages: u64,
}

/// Consensus settings.
#[derive(Debug, Clone)]
pub struct ConsensusConfig {
    /// This node's Raft id.
    pub raft_id: u64,
    /// Node key (secp256k1 secret): PeerId and sealing address.
    pub node_key: [u8; 32],
    /// p2p listen address, e.g. `/ip4/0.0.0.0/tcp/30400`.
    pub listen: Multiaddr,
    /// Driver timing and log retention.
    pub driver: DriverConfig,
    /// Test-only fault switch (see `[p2p] fault-file` in the node config).
    pub fault_file: Option<PathBuf>,
    /// Bytes of forwarded transactions queued for the pool before more are dropped.
    pub forwarded_queue_bytes: usize,
}

struct InboundGlue {
    inputs: std::sync::mpsc::Sender<Input>,
    machine: Arc<dyn StateMachine>,
    forwarded: gossip::ForwardedSender,
}

impl Inbound for InboundGlue {
    fn raft(&self, from: u64, msgs: Vec<serde_bytes::ByteBuf>) {
        let _ = self.inputs.send(Input::Raft { from, msgs });
    }
    fn unreachable(&self, to: u64, snapshot: bool) {
        let _ = self.inputs.send(Input::Unreachable { to, snapshot });
    }
    fn txs(&self, txs: Vec<serde_bytes::ByteBuf>) {
        let batch = txs.into_iter().map(|b| b.into_vec()).collect();
        if !self.forwarded.offer(batch) {
            tracing::debug!("forwarded transactions dropped: the pool is behind (the sender re-sends)");
        }
    }
    fn blocks(&self, from: u64, max_bytes: usize) -> Vec<serde_bytes::ByteBuf> {
        self.machine.encoded_blocks(from, max_bytes).into_iter().map(serde_bytes::ByteBuf::from).collect()
    }
}

/// A running consensus participant.
pub struct Consensus {
    inputs: Mutex<std::sync::mpsc::Sender<Input>>,
    status: watch::Receiver<RaftStatus>,
    directory: Arc<RwLock<Directory>>,
    transport: TransportHandle,
    driver: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Why the Raft thread stopped on its own (a fault, or a panic); `None` while it runs.
    fault: watch::Receiver<Option<String>>,
    transport_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    forwarded: Mutex<Option<ForwardedTxs>>,
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus").field("status", &*self.status.borrow()).finish()
    }
}

impl Consensus {
    /// Starts the transport and the Raft driver. `genesis_members` bootstrap a new database when
    /// this node is one of them; a node that is not starts empty and waits to be added
    /// (`raft_addPeer` / `raft_addLearner` on a member) and for the leader's snapshot.
    /// Must be called within a Tokio runtime.
    pub async fn start(
        config: ConsensusConfig,
        genesis_members: &[Member],
        machine: Arc<dyn StateMachine>,
    ) -> Result<Self, ConsensusError> {
        let db = machine.storage().clone();
        let directory = match db.get(Table::RaftState, raft_keys::MEMBERS)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::Corrupt(format!("membership directory: {e}")))?,
            None => Directory::from_genesis(genesis_members),
        };
        // An initial member is in genesis under this Raft id *and* this node key; a node that
        // only claims the id (join-existing) starts empty.
        let own_peer =
            peer_id(config.node_key).map_err(|e| ConsensusError::Transport(e.to_string()))?.to_string();
        let initial = genesis_members
            .iter()
            .any(|m| m.raft_id == config.raft_id && (m.peer_id == own_peer || m.peer_id.is_empty()));
        let voters: Vec<u64> =
            if initial { genesis_members.iter().map(|m| m.raft_id).collect() } else { vec![] };
        let store = LogStore::open(db, &voters)?;
        let applied = store.applied();
        let raft_config = raft::Config {
            id: config.raft_id,
            election_tick: config.driver.election_ticks,
            heartbeat_tick: config.driver.heartbeat_ticks,
            applied,
            max_size_per_msg: 4 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_config.validate().map_err(|e| ConsensusError::Raft(e.to_string()))?;
        let node = raft::RawNode::new(&raft_config, store, &slog_bridge::logger())
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        machine.members_changed(&directory);

        let (inputs, inputs_rx) = std::sync::mpsc::channel();
        let keypair = keypair(config.node_key).map_err(|e| ConsensusError::Transport(e.to_string()))?;
        let (forwarded_tx, forwarded) = gossip::forwarded_queue(config.forwarded_queue_bytes.max(1));
        let inbound = Arc::new(InboundGlue {
            inputs: inputs.clone(),
            machine: machine.clone(),
            forwarded: forwarded_tx,
        });
        let (transport, transport_task) = transport::start(
            TransportConfig {
                keypair,
                listen: config.listen.clone(),
                local_raft_id: config.raft_id,
                directory: directory.clone(),
                fault_file: config.fault_file.clone(),
            },
            inbound,
        )
        .await
        .map_err(|e| ConsensusError::Transport(e.to_string()))?;

        let conf = node.store().conf_state();
        let role = if conf.voters.contains(&config.raft_id) {
            Role::Follower
        } else if conf.learners.contains(&config.raft_id) {
            Role::Learner
        } else {
            Role::Outsider
        };
        let initial_status = RaftStatus {
            id: config.raft_id,
            role,
            leader_id: 0,
            term: 0,
            commit: 0,
            applied,
            first_index: node.store().first_index_now(),
            last_index: node.raft.raft_log.last_index(),
            log_bytes: node.store().log_bytes() as u64,
            voters: conf.voters.clone(),
            learners: conf.learners.clone(),
            syncing: false,
            dropped_messages: 0,
        };
        let (status_tx, status) = watch::channel(initial_status);
        let directory = Arc::new(RwLock::new(directory));
        let driver = Driver {
            node,
            inputs: inputs_rx,
            transport: transport.clone(),
            machine,
            directory: directory.clone(),
            status: status_tx,
            config: config.driver.clone(),
            pending_conf: None,
            proposals: Default::default(),
            transferring: false,
            syncing: None,
            dropped_messages: 0,
        };
        // Fail-stop: the thread reports why it ended unless asked to (a storage fault, or a
        // panic); the node exits on it (`Consensus::failed`) instead of serving a stale head.
        let (fault_tx, fault) = watch::channel(None);
        let driver = std::thread::Builder::new()
            .name("raft".into())
            .spawn(move || {
                let reason = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver.run())) {
                    Ok(None) => return,
                    Ok(Some(reason)) => reason,
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        format!("the Raft thread panicked: {what}")
                    }
                };
                let _ = fault_tx.send(Some(reason));
            })
            .map_err(|e| ConsensusError::Raft(format!("spawning the Raft thread: {e}")))?;
        tracing::info!(raft_id = config.raft_id, peer_id = %transport.local_peer, applied, "consensus started");
        Ok(Self {
            inputs: Mutex::new(inputs),
            status,
            directory,
            transport,
            driver: Mutex::new(Some(driver)),
            fault,
            transport_task: Mutex::new(Some(transport_task)),
            forwarded: Mutex::new(Some(forwarded)),
        })
    }

    fn input(&self, input: Input) -> Result<(), ConsensusError> {
        self.inputs.lock().send(input).map_err(|_| ConsensusError::Stopped)
    }

    /// The current Raft status.
    pub fn status(&self) -> RaftStatus {
        self.status.borrow().clone()
    }

    /// Why the Raft thread stopped on its own, if it did: this node can no longer apply the
    /// chain and must stop (fail-stop).
    pub fn fault(&self) -> Option<String> {
        self.fault.borrow().clone()
    }

    /// Resolves when the Raft thread stops on its own, with the reason (see [`Self::fault`]).
    /// Pending forever while it runs or after an orderly shutdown.
    pub async fn failed(&self) -> String {
        let mut fault = self.fault.clone();
        let reason = fault.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
        match reason {
            Some(reason) => reason,
            // The thread ended without a fault (shutdown): never resolves.
            None => std::future::pending().await,
        }
    }

    /// Whether this node can serve its chain now: the Raft thread runs, a leader is known, no
    /// block sync is under way, and the applied index is within `max_lag` entries of the
    /// commit index. `Err` says why not.
    pub fn readiness(&self, max_lag: u64) -> Result<(), NotReady> {
        if let Some(fault) = self.fault() {
            return Err(NotReady::Stopped(fault));
        }
        let status = self.status();
        if status.leader_id == 0 {
            return Err(NotReady::NoLeader);
        }
        if status.syncing {
            return Err(NotReady::Syncing);
        }
        if status.commit > status.applied + max_lag {
            return Err(NotReady::CatchingUp { applied: status.applied, commit: status.commit });
        }
        Ok(())
    }

    /// Status updates (for waiting on a leader change).
    pub fn subscribe(&self) -> watch::Receiver<RaftStatus> {
        self.status.clone()
    }

    /// The membership directory.
    pub fn directory(&self) -> Directory {
        self.directory.read().clone()
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> String {
        self.transport.local_peer.to_string()
    }

    /// Addresses the transport listens on.
    pub fn listen_addrs(&self) -> Vec<String> {
        self.transport.state.read().listen.iter().map(|a| a.to_string()).collect()
    }

    /// Connected members.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.transport.state.read().connected.values().cloned().collect()
    }

    /// Proposes a block (RLP) as a log entry; the [`Proposal`] tells where it went and, later,
    /// whether it was applied or dropped. Leader only. Blocking: call from a plain thread.
    pub fn propose_block(&self, data: Vec<u8>) -> Result<Proposal, ConsensusError> {
        let (reply, answer) = oneshot::channel();
        self.input(Input::Propose { data, reply })?;
        answer.blocking_recv().map_err(|_| ConsensusError::Stopped)?
    }

    /// Transaction gossip, outbound: the Raft id of the leader when another node leads.
    pub fn remote_leader(&self) -> Option<u64> {
        let status = self.status.borrow();
        (status.leader_id != 0 && status.leader_id != status.id).then_some(status.leader_id)
    }

    /// Transaction gossip, outbound: sends EIP-2718 transactions to member `to` (best effort;
    /// the caller keeps them pooled until they are mined).
    pub fn send_txs(&self, to: u64, txs: Vec<Vec<u8>>) {
        let txs = txs.into_iter().map(serde_bytes::ByteBuf::from).collect();
        self.transport.send(Command::Txs { to, txs });
    }

    /// Transaction gossip, inbound: batches of EIP-2718 transactions followers sent to this
    /// node (at most [`ConsensusConfig::forwarded_queue_bytes`] waiting). Taken once, by the
    /// node's pool intake.
    pub fn take_forwarded(&self) -> Option<ForwardedTxs> {
        self.forwarded.lock().take()
    }

    async fn conf_change(
        &self,
        change: ConfChangeType,
        node_id: u64,
        context: Vec<u8>,
    ) -> Result<(), ConsensusError> {
        let mut cc = ConfChange::default();
        cc.set_change_type(change);
        cc.node_id = node_id;
        // A unique context lets the driver match the applied entry to this request.
        let mut context = context;
        if context.is_empty() {
            context =
                format!("{{\"op\":\"{change:?}\",\"id\":{node_id},\"nonce\":{}}}", rand_nonce()).into_bytes();
        }
        cc.context = context.into();
        let (reply, answer) = oneshot::channel();
        self.input(Input::ConfChange { cc, reply })?;
        match tokio::time::timeout(Duration::from_secs(30), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ConsensusError::Stopped),
            Err(_) => Err(ConsensusError::Timeout("configuration change not applied within 30 s".into())),
        }
    }

    /// Adds the node at `addr` (`/ip4/HOST/tcp/PORT/p2p/PEERID`) as a voter (`learner`: as a
    /// learner); returns its new Raft id. Leader only.
    pub async fn add_peer(&self, addr: &str, learner: bool) -> Result<u64, ConsensusError> {
        let directory = self.directory();
        let probe = member_from_addr(0, addr).map_err(|e| ConsensusError::Invalid(e.to_string()))?;
        if let Some(existing) = directory.current().find(|m| m.peer_id == probe.peer_id) {
            return Err(ConsensusError::Invalid(format!(
                "{} is already member {}",
                probe.peer_id, existing.raft_id
            )));
        }
        let raft_id = directory.next_id();
        let member = Member { raft_id, ..probe };
        let context = serde_json::to_vec(&member).unwrap_or_default();
        let change = if learner { ConfChangeType::AddLearnerNode } else { ConfChangeType::AddNode };
        self.conf_change(change, raft_id, context).await?;
        Ok(raft_id)
    }

    /// Promotes learner `raft_id` to a voter. Leader only.
    pub async fn promote(&self, raft_id: u64) -> Result<(), ConsensusError> {
        if !self.status().learners.contains(&raft_id) {
            return Err(ConsensusError::Invalid(format!("{raft_id} is not a learner")));
        }
        let member = self.directory().members.get(&raft_id).cloned();
        let context = member.map(|m| serde_json::to_vec(&m).unwrap_or_default()).unwrap_or_default();
        self.conf_change(ConfChangeType::AddNode, raft_id, context).await
    }

    /// Removes member `raft_id` (voter or learner). Leader only.
    pub async fn remove_peer(&self, raft_id: u64) -> Result<(), ConsensusError> {
        let status = self.status();
        if !status.voters.contains(&raft_id) && !status.learners.contains(&raft_id) {
            return Err(ConsensusError::Invalid(format!("{raft_id} is not a member")));
        }
        if raft_id == status.id {
            return Err(ConsensusError::Invalid(
                "the leader cannot remove itself; remove it from another node after a leadership change"
                    .into(),
            ));
        }
        self.conf_change(ConfChangeType::RemoveNode, raft_id, vec![]).await
    }

    /// Stops: a leader first hands leadership to its most up-to-date voter (up to 3 s), then
    /// the driver thread and the transport end.
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self.input(Input::Shutdown { reply }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer).await;
        }
        let driver = self.driver.lock().take(); // not held across the await below
        if let Some(driver) = driver {
            let _ = tokio::task::spawn_blocking(move || driver.join()).await;
        }
        if let Some(task) = self.transport_task.lock().take() {
            task.abort();
        }
    }
}

fn rand_nonce() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
