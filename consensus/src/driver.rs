//! The thread that owns the `RawNode` and drives it exactly as raft-rs prescribes (its crate
//! docs, "Processing the Ready State"): tick on a timer, step peer messages, propose; then for
//! each `Ready`: send messages, install a snapshot, apply committed entries, persist entries and
//! HardState (fsync when `must_sync`), send persisted messages, advance, and the same for the
//! `LightReady`.
//!
//! A follower that receives a snapshot fetches the blocks it lacks on the block-sync thread
//! (`block_sync.rs`) while this thread keeps ticking, stepping and persisting; entries
//! committed meanwhile wait in order and are applied once the blocks are in.

use crate::{
    block_sync::BlockSync,
    log_store::LogStore,
    members::Directory,
    proposal::{DropReason, Pending, Proposal, ProposalOutcome},
    transport::{Command, TransportHandle},
    ApplyError, CommittedBlock, ConsensusError, RaftStatus, Role, SnapshotData, StateMachine,
};
use fogchain_genesis::Member;
use fogchain_storage::{raft_keys, RawOp, Table};
use parking_lot::RwLock;
use protobuf::Message as _;
use raft::{
    eraftpb::{ConfChange, ConfChangeType, Entry, EntryType, Message, MessageType, Snapshot},
    RawNode, SnapshotStatus, StateRole,
};
use serde_bytes::ByteBuf;
use std::{
    collections::BTreeMap,
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};
use tokio::sync::{oneshot, watch};

/// A snapshot being synced (see `raft_keys::PENDING_SYNC`).
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingSync {
    index: u64,
    data: SnapshotData,
}

/// Where the outcome of a configuration change goes.
pub(crate) type ConfChangeReply = oneshot::Sender<Result<(), ConsensusError>>;

/// Inputs of the driver thread.
pub(crate) enum Input {
    Raft { from: u64, msgs: Vec<ByteBuf> },
    Unreachable { to: u64, snapshot: bool },
    Propose { data: Vec<u8>, reply: oneshot::Sender<Result<Proposal, ConsensusError>> },
    ConfChange { cc: ConfChange, reply: ConfChangeReply },
    Shutdown { reply: oneshot::Sender<()> },
}

/// Timing and log-retention settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Raft tick.
    pub tick: Duration,
    /// Election timeout in ticks (randomised in [n, 2n)).
    pub election_ticks: usize,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: usize,
    /// Applied entries kept in the log for lagging followers before compaction; a follower
    /// further behind gets a snapshot and syncs blocks.
    pub log_retention: u64,
    /// At most this many bytes of applied entries are kept (the log is held in memory too;
    /// 1,024 full blocks would be ~160 MB).
    pub log_retention_bytes: usize,
}

pub(crate) struct Driver {
    pub(crate) node: RawNode<LogStore>,
    pub(crate) inputs: mpsc::Receiver<Input>,
    pub(crate) transport: TransportHandle,
    pub(crate) machine: Arc<dyn StateMachine>,
    pub(crate) directory: Arc<RwLock<Directory>>,
    pub(crate) status: watch::Sender<RaftStatus>,
    pub(crate) config: DriverConfig,
    pub(crate) pending_conf: Option<(Vec<u8>, ConfChangeReply)>,
    /// Block proposals waiting for their entries to be applied.
    pub(crate) proposals: Pending,
    /// A leadership transfer for shutdown is under way.
    pub(crate) transferring: bool,
    /// Block sync under way, with the entries committed meanwhile.
    pub(crate) syncing: Option<Syncing>,
    /// Member messages dropped before raft-rs: undecodable, misaddressed or invalid
    /// (`validate.rs`).
    pub(crate) dropped_messages: u64,
}

/// A snapshot whose blocks are being fetched.
pub(crate) struct Syncing {
    /// The snapshot being completed.
    index: u64,
    data: SnapshotData,
    /// The sync thread; its result says whether the blocks are in.
    job: BlockSync,
    /// A newer snapshot that arrived meanwhile: synced next.
    next: Option<(u64, SnapshotData)>,
    /// Entries committed after `index`, applied in order once the sync is done.
    waiting: Vec<Entry>,
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    m.write_to_bytes().unwrap_or_default()
}

impl Driver {
    /// Runs until shutdown (`None`) or a fault that stops this node from taking part safely
    /// (`Some(reason)`: storage failed applying or persisting, block sync could not write).
    pub(crate) fn run(mut self) -> Option<String> {
        // Snapshot payloads are built only when a follower needs one: the head and the
        // directory are those of the applied index, since this thread is the only applier and
        // raft-rs asks for snapshots from this thread.
        let (machine, directory) = (self.machine.clone(), self.directory.clone());
        self.node.mut_store().set_snapshot_source(Box::new(move || {
            let (head_number, head_hash) = machine.head();
            let data = SnapshotData { head_number, head_hash, directory: directory.read().clone() };
            serde_json::to_vec(&data).unwrap_or_default()
        }));
        self.publish_status();
        if let Err(e) = self.resume_sync() {
            tracing::error!(error = %e, "consensus stopped: {e}");
            return Some(e.to_string());
        }
        let mut next_tick = Instant::now() + self.config.tick;
        let mut shutdown: Option<(Instant, oneshot::Sender<()>)> = None;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let first = match self.inputs.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            // Take everything queued, so one Ready (one fsync) covers a whole batch.
            let mut batch: Vec<Input> = first.into_iter().collect();
            while let Ok(input) = self.inputs.try_recv() {
                batch.push(input);
            }
            for input in batch {
                if let Input::Shutdown { reply } = input {
                    shutdown = Some((Instant::now() + Duration::from_secs(3), reply));
                    self.hand_over_leadership();
                } else {
                    self.input(input);
                }
            }
            if Instant::now() >= next_tick {
                self.node.tick();
                next_tick += self.config.tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + self.config.tick;
                }
            }
            if let Err(e) = self.poll_sync().and_then(|_| self.on_ready()) {
                // Storage failed: this node cannot safely take part any more.
                tracing::error!(error = %e, "consensus stopped: {e}");
                self.publish_status();
                if let Some(sync) = self.syncing.take() {
                    sync.job.stop();
                }
                return Some(e.to_string());
            }
            self.publish_status();
            if let Some((deadline, _)) = &shutdown {
                let raft = &self.node.raft;
                // Done at once when no transfer was started (not the leader, or no voter to take
                // over), else once another node leads, or at the deadline.
                let handed_over = raft.leader_id != raft.id && raft.leader_id != 0;
                if !self.transferring || handed_over || Instant::now() > *deadline {
                    if self.transferring && handed_over {
                        tracing::info!(leader = raft.leader_id, "leadership handed over");
                    }
                    if let Some((_, reply)) = shutdown.take() {
                        let _ = reply.send(());
                    }
                    break;
                }
            }
        }
        if let Some(sync) = self.syncing.take() {
            sync.job.stop();
        }
        tracing::debug!("Raft driver stopped");
        None
    }

    /// A leader that is shutting down transfers leadership to its most up-to-date voter first,
    /// so the cluster does not wait for an election timeout.
    fn hand_over_leadership(&mut self) {
        if self.node.raft.state != StateRole::Leader {
            return;
        }
        let id = self.node.raft.id;
        let voters: Vec<u64> = self.node.raft.prs().conf().voters().ids().iter().collect();
        let best = voters
            .into_iter()
            .filter(|v| *v != id)
            .filter_map(|v| self.node.raft.prs().get(v).map(|p| (p.matched, v)))
            .max();
        if let Some((_, to)) = best {
            tracing::info!(to, "shutting down: transferring leadership");
            self.node.transfer_leader(to);
            self.transferring = true;
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Raft { from, msgs } => {
                for bytes in msgs {
                    let msg = match Message::parse_from_bytes(&bytes) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(from, error = %e, "undecodable Raft message dropped");
                            self.dropped_messages += 1;
                            continue;
                        }
                    };
                    if msg.from != from || msg.to != self.node.raft.id {
                        tracing::warn!(
                            from,
                            claimed = msg.from,
                            to = msg.to,
                            "Raft message with a wrong sender or recipient dropped"
                        );
                        self.dropped_messages += 1;
                        continue;
                    }
                    if let Some(reason) = crate::validate::refuse_message(&self.node, &msg) {
                        tracing::warn!(from, %reason, "invalid Raft message dropped");
                        self.dropped_messages += 1;
                        continue;
                    }
                    if let Err(e) = self.node.step(msg) {
                        tracing::debug!(from, error = %e, "Raft step");
                    }
                }
            }
            Input::Unreachable { to, snapshot } => {
                if snapshot {
                    self.node.report_snapshot(to, SnapshotStatus::Failure);
                }
                self.node.report_unreachable(to);
            }
            Input::Propose { data, reply } => {
                let result = if self.node.raft.state != StateRole::Leader {
                    Err(ConsensusError::NotLeader { leader: self.node.raft.leader_id })
                } else {
                    match self.node.propose(vec![], data) {
                        // A leader appends the entry to its log at once.
                        Ok(()) => Ok(self
                            .proposals
                            .register(self.node.raft.raft_log.last_index(), self.node.raft.term)),
                        Err(e) => Err(ConsensusError::Raft(e.to_string())),
                    }
                };
                let _ = reply.send(result);
            }
            Input::ConfChange { cc, reply } => {
                let raft = &self.node.raft;
                let result = if raft.state != StateRole::Leader {
                    Err(ConsensusError::NotLeader { leader: raft.leader_id })
                } else if raft.pending_conf_index > raft.raft_log.applied || self.pending_conf.is_some() {
                    Err(ConsensusError::ConfChangePending)
                } else {
                    let context = cc.context.to_vec();
                    match self.node.propose_conf_change(context.clone(), cc) {
                        Ok(()) => {
                            self.pending_conf = Some((context, reply));
                            return;
                        }
                        Err(e) => Err(ConsensusError::Raft(e.to_string())),
                    }
                };
                let _ = reply.send(result);
            }
            Input::Shutdown { .. } => {}
        }
    }

    fn send(&self, msgs: Vec<Message>) {
        let mut by_peer: BTreeMap<u64, (Vec<ByteBuf>, bool)> = BTreeMap::new();
        for msg in msgs {
            let slot = by_peer.entry(msg.to).or_default();
            slot.1 |= msg.get_msg_type() == MessageType::MsgSnapshot;
            slot.0.push(ByteBuf::from(encode(&msg)));
        }
        for (to, (msgs, snapshot)) in by_peer {
            self.transport.send(Command::Raft { to, msgs, snapshot });
        }
    }

    fn on_ready(&mut self) -> Result<(), ConsensusError> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut rd = self.node.ready();
        self.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let snapshot = rd.snapshot().clone();
            self.install_snapshot(&snapshot)?;
        }
        self.apply(rd.take_committed_entries())?;
        self.node.mut_store().append(rd.entries(), rd.hs(), rd.must_sync())?;
        self.send(rd.take_persisted_messages());
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().set_commit(commit)?;
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.node.advance_apply();
        self.compact()?;
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), ConsensusError> {
        if entries.is_empty() {
            return Ok(());
        }
        if let Some(sync) = &mut self.syncing {
            let after = sync.next.as_ref().map_or(sync.index, |(index, _)| *index);
            sync.waiting.extend(entries.into_iter().filter(|e| e.index > after));
            return Ok(());
        }
        let mut last = 0;
        for entry in entries {
            last = entry.index;
            // What a proposal at this index learns when it is not this entry's.
            let overwritten = ProposalOutcome::Dropped(DropReason::Overwritten { term: entry.term });
            let outcome = match entry.get_entry_type() {
                EntryType::EntryNormal if !entry.data.is_empty() => self.apply_block(&entry)?,
                EntryType::EntryNormal => {
                    // A new leader's empty entry.
                    self.node.mut_store().record_applied(entry.index, vec![])?;
                    overwritten
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&entry.data)
                        .map_err(|e| ConsensusError::Raft(format!("undecodable conf change: {e}")))?;
                    self.apply_conf_change(entry.index, cc)?;
                    overwritten
                }
                EntryType::EntryConfChangeV2 => {
                    // Never proposed by Fogchain.
                    tracing::warn!(index = entry.index, "ignoring a joint configuration change");
                    self.node.mut_store().record_applied(entry.index, vec![])?;
                    overwritten
                }
            };
            self.proposals.applied(entry.index, entry.term, outcome);
        }
        self.node.mut_store().set_applied(last);
        Ok(())
    }

    /// Applies one block entry through the state machine; returns what its proposer (if this
    /// node proposed it) learns.
    fn apply_block(&mut self, entry: &Entry) -> Result<ProposalOutcome, ConsensusError> {
        let committed = CommittedBlock { index: entry.index, term: entry.term, data: &entry.data };
        match self.machine.apply_block(committed) {
            Ok(block) => Ok(ProposalOutcome::Applied { number: block.number, hash: block.hash }),
            Err(ApplyError::Refused(reason)) => {
                // Every node refuses it alike: a no-op, recorded here.
                self.node.mut_store().record_applied(entry.index, vec![])?;
                Ok(ProposalOutcome::Refused(reason.to_string()))
            }
            Err(fatal) => Err(ConsensusError::Apply(fatal)),
        }
    }

    fn apply_conf_change(&mut self, index: u64, cc: ConfChange) -> Result<(), ConsensusError> {
        let outcome = match self.node.apply_conf_change(&cc) {
            Ok(conf_state) => {
                let mut directory = self.directory.read().clone();
                // Tenures count in blocks: the head now is the last block before the change.
                let head = self.machine.head().0;
                match cc.get_change_type() {
                    ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                        let member = serde_json::from_slice::<Member>(&cc.context).ok();
                        directory.add(cc.node_id, member, head);
                    }
                    ConfChangeType::RemoveNode => directory.remove(cc.node_id, head),
                }
                let members = serde_json::to_vec(&directory).unwrap_or_default();
                self.node.mut_store().record_applied(
                    index,
                    vec![
                        LogStore::conf_state_op(&conf_state),
                        RawOp::Put(Table::RaftState, raft_keys::MEMBERS.to_vec(), members),
                    ],
                )?;
                tracing::info!(index, change = ?cc.get_change_type(), node = cc.node_id, voters = ?conf_state.voters, learners = ?conf_state.learners, "configuration changed");
                self.node.mut_store().set_conf_state(conf_state);
                self.set_directory(directory);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(index, error = %e, "configuration change rejected");
                self.node.mut_store().record_applied(index, vec![])?;
                Err(ConsensusError::Raft(e.to_string()))
            }
        };
        if self.pending_conf.as_ref().is_some_and(|(context, _)| context[..] == cc.context[..]) {
            if let Some((_, reply)) = self.pending_conf.take() {
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }

    fn set_directory(&mut self, directory: Directory) {
        self.machine.members_changed(&directory);
        self.transport.send(Command::Members(directory.clone()));
        *self.directory.write() = directory;
    }

    /// Installs the leader's snapshot: the log restarts after it, then the blocks up to the
    /// snapshot's head are fetched from members, verified and applied (block sync, on its own
    /// thread).
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), ConsensusError> {
        let meta = snapshot.get_metadata();
        let data: SnapshotData = serde_json::from_slice(&snapshot.data)
            .map_err(|e| ConsensusError::Raft(format!("undecodable snapshot: {e}")))?;
        tracing::info!(index = meta.index, term = meta.term, head = data.head_number, "installing snapshot");
        metrics::counter!("fogchain_raft_snapshots_installed_total").increment(1);
        // Recorded first: a node that stops during the sync finishes it when it restarts.
        let pending =
            serde_json::to_vec(&PendingSync { index: meta.index, data: data.clone() }).unwrap_or_default();
        self.machine
            .storage()
            .write_raw(&[RawOp::Put(Table::RaftState, raft_keys::PENDING_SYNC.to_vec(), pending)], true)?;
        self.node.mut_store().apply_snapshot(snapshot)?;
        self.proposals.snapshot(meta.index);
        match &mut self.syncing {
            // A newer snapshot during a sync: the entries waiting are covered by it.
            Some(sync) => {
                sync.waiting.retain(|e| e.index > meta.index);
                sync.next = Some((meta.index, data));
            }
            None => self.start_sync(meta.index, data),
        }
        Ok(())
    }

    fn start_sync(&mut self, index: u64, data: SnapshotData) {
        let job = BlockSync::start(
            self.machine.clone(),
            self.transport.clone(),
            self.directory.clone(),
            self.status.subscribe(),
            self.node.raft.id,
            (data.head_number, data.head_hash),
        );
        self.syncing = Some(Syncing { index, data, job, next: None, waiting: Vec::new() });
        self.publish_status();
    }

    /// Completes a block sync when its thread is done: records the snapshot index as applied,
    /// then applies the entries committed meanwhile. A failed sync stops consensus.
    fn poll_sync(&mut self) -> Result<(), ConsensusError> {
        let Some(result) = self.syncing.as_ref().and_then(|s| s.job.finished()) else { return Ok(()) };
        let outcome = if result.is_ok() { "done" } else { "failed" };
        metrics::counter!("fogchain_block_syncs_total", "outcome" => outcome).increment(1);
        result?;
        let Some(sync) = self.syncing.take() else { return Ok(()) };
        if let Some((index, data)) = sync.next {
            self.start_sync(index, data);
            if let Some(next) = &mut self.syncing {
                next.waiting = sync.waiting;
            }
            return Ok(());
        }
        let members = serde_json::to_vec(&sync.data.directory).unwrap_or_default();
        self.node.mut_store().record_applied(
            sync.index,
            vec![
                RawOp::Put(Table::RaftState, raft_keys::MEMBERS.to_vec(), members),
                RawOp::Delete(Table::RaftState, raft_keys::PENDING_SYNC.to_vec()),
            ],
        )?;
        self.set_directory(sync.data.directory);
        self.apply(sync.waiting)?;
        self.publish_status();
        Ok(())
    }

    /// Resumes a block sync a previous run of this node left unfinished.
    fn resume_sync(&mut self) -> Result<(), ConsensusError> {
        use fogchain_storage::KvRead;
        let Some(bytes) = self.machine.storage().get(Table::RaftState, raft_keys::PENDING_SYNC)? else {
            return Ok(());
        };
        let pending: PendingSync = serde_json::from_slice(&bytes)
            .map_err(|e| ConsensusError::Raft(format!("undecodable pending sync: {e}")))?;
        tracing::info!(
            index = pending.index,
            head = pending.data.head_number,
            "resuming an unfinished block sync"
        );
        self.start_sync(pending.index, pending.data);
        Ok(())
    }

    fn compact(&mut self) -> Result<(), ConsensusError> {
        let store = self.node.mut_store();
        if let Some(index) =
            store.compaction_point(self.config.log_retention, self.config.log_retention_bytes)
        {
            let dropped = store.compact(index)?;
            tracing::debug!(dropped, first_index = index, bytes = store.log_bytes(), "Raft log compacted");
        }
        Ok(())
    }

    fn publish_status(&self) {
        let raft = &self.node.raft;
        let conf = self.node.store().conf_state();
        let role = match raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Follower if conf.learners.contains(&raft.id) => Role::Learner,
            StateRole::Follower if conf.voters.contains(&raft.id) => Role::Follower,
            StateRole::Follower => Role::Outsider,
            StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
        };
        let status = RaftStatus {
            id: raft.id,
            role,
            leader_id: raft.leader_id,
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: self.node.store().applied(),
            first_index: self.node.store().first_index_now(),
            last_index: raft.raft_log.last_index(),
            log_bytes: self.node.store().log_bytes() as u64,
            voters: conf.voters.clone(),
            learners: conf.learners.clone(),
            syncing: self.syncing.is_some(),
            dropped_messages: self.dropped_messages,
        };
        self.status.send_if_modified(|old| {
            if *old != status {
                if old.leader_id != status.leader_id && status.leader_id != 0 {
                    metrics::counter!("fogchain_raft_leader_changes_total").increment(1);
                }
                *old = status;
                true
            } else {
                false
            }
        });
    }
}
