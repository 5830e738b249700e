//! The Raft log, HardState and ConfState in RocksDB ([`Table::RaftLog`], [`Table::RaftState`]),
//! served to raft-rs through its [`raft::Storage`] trait.
//!
//! The live part of the log (everything after the last compaction) is also kept in memory, so
//! raft-rs reads never touch the disk; every change is written through to RocksDB first.
//! Compaction keeps the log short ([`LogStore::compact`]), so memory stays bounded.

use fogchain_storage::{meta_keys, raft_keys, ChainReader, KvRead, RawOp, Storage, StorageError, Table};
use parking_lot::RwLock;
use protobuf::Message as _;
use raft::{
    eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata},
    GetEntriesContext, RaftState,
};
use std::collections::VecDeque;

/// Index of the bootstrap snapshot of a network's initial members. A node that joins later starts
/// with an empty log, so the leader must send it a snapshot (it never replays the bootstrap).
pub const BOOTSTRAP_INDEX: u64 = 1;

struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the last entry compacted away (or of the installed snapshot).
    snapshot_meta: SnapshotMetadata,
    /// Entries `snapshot_meta.index + 1 ..`.
    entries: VecDeque<Entry>,
    /// Summed `data` length of `entries`, bytes.
    bytes: usize,
    /// Applied index.
    applied: u64,
}

impl Core {
    fn first_index(&self) -> u64 {
        self.snapshot_meta.index + 1
    }
    fn last_index(&self) -> u64 {
        self.entries.back().map_or(self.snapshot_meta.index, |e| e.index)
    }
    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.snapshot_meta.index {
            return Ok(self.snapshot_meta.term);
        }
        if index < self.first_index() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if index > self.last_index() {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        Ok(self.entries[(index - self.first_index()) as usize].term)
    }
}

/// The Raft log store of one node. Shared by the driver thread (writes) and status readers.
pub struct LogStore {
    db: Storage,
    core: RwLock<Core>,
    /// Builds the snapshot payload describing the state at the applied index; called only when
    /// a follower needs a snapshot.
    snapshot_source: RwLock<Option<SnapshotSource>>,
}

/// Produces the payload of a snapshot at the current applied index.
pub type SnapshotSource = Box<dyn Fn() -> Vec<u8> + Send + Sync>;

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.core.read();
        f.debug_struct("LogStore")
            .field("first_index", &core.first_index())
            .field("last_index", &core.last_index())
            .finish()
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {e}"))
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    // Encoding an in-memory message only fails on missing required fields; eraftpb has none.
    m.write_to_bytes().unwrap_or_default()
}

fn entry_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

impl LogStore {
    /// Loads the Raft state from `db`. When the database has none and `bootstrap_voters` is not
    /// empty (an initial member of the network), it is initialised with a bootstrap snapshot at
    /// [`BOOTSTRAP_INDEX`] whose configuration is those voters; otherwise (a node joining later)
    /// it starts empty and waits for the leader's snapshot.
    pub fn open(db: Storage, bootstrap_voters: &[u64]) -> Result<Self, StorageError> {
        let load = |key: &[u8]| db.get(Table::RaftState, key);
        let mut core = Core {
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            snapshot_meta: SnapshotMetadata::default(),
            entries: VecDeque::new(),
            bytes: 0,
            applied: 0,
        };
        match load(raft_keys::CONF_STATE)? {
            Some(bytes) => {
                core.conf_state = ConfState::parse_from_bytes(&bytes).map_err(|e| corrupt("ConfState", e))?;
                if let Some(bytes) = load(raft_keys::HARD_STATE)? {
                    core.hard_state =
                        HardState::parse_from_bytes(&bytes).map_err(|e| corrupt("HardState", e))?;
                }
                if let Some(bytes) = load(raft_keys::SNAPSHOT_META)? {
                    core.snapshot_meta = SnapshotMetadata::parse_from_bytes(&bytes)
                        .map_err(|e| corrupt("snapshot metadata", e))?;
                }
                for (key, value) in db.scan(Table::RaftLog)? {
                    let entry = Entry::parse_from_bytes(&value).map_err(|e| corrupt("Raft entry", e))?;
                    if key != entry_key(entry.index) {
                        return Err(corrupt("Raft log", format!("entry {} under another key", entry.index)));
                    }
                    if entry.index <= core.snapshot_meta.index {
                        continue; // compacted but not yet deleted (crash during compaction)
                    }
                    if entry.index != core.last_index() + 1 {
                        return Err(corrupt("Raft log", format!("gap before entry {}", entry.index)));
                    }
                    core.bytes += entry.data.len();
                    core.entries.push_back(entry);
                }
            }
            None if !bootstrap_voters.is_empty() => {
                core.conf_state.voters = bootstrap_voters.to_vec();
                core.snapshot_meta.index = BOOTSTRAP_INDEX;
                core.snapshot_meta.term = 1;
                core.snapshot_meta.set_conf_state(core.conf_state.clone());
                core.hard_state.term = 1;
                core.hard_state.commit = BOOTSTRAP_INDEX;
                db.write_raw(
                    &[
                        RawOp::Put(
                            Table::RaftState,
                            raft_keys::CONF_STATE.to_vec(),
                            encode(&core.conf_state),
                        ),
                        RawOp::Put(
                            Table::RaftState,
                            raft_keys::HARD_STATE.to_vec(),
                            encode(&core.hard_state),
                        ),
                        RawOp::Put(
                            Table::RaftState,
                            raft_keys::SNAPSHOT_META.to_vec(),
                            encode(&core.snapshot_meta),
                        ),
                    ],
                    true,
                )?;
            }
            None => {}
        }
        core.applied = db.applied_index()?.max(core.snapshot_meta.index);
        // Committed entries are applied before the Ready's HardState is written, so a crash in
        // between leaves an applied index above the stored commit index. Only committed entries
        // are ever applied, so the commit index is at least the applied one (raft-rs refuses to
        // start with applied > commit).
        if core.hard_state.commit < core.applied && core.applied <= core.last_index() {
            core.hard_state.commit = core.applied;
        }
        Ok(Self { db, core: RwLock::new(core), snapshot_source: RwLock::new(None) })
    }

    /// The database.
    pub fn db(&self) -> &Storage {
        &self.db
    }

    /// Applied index as last recorded with [`Self::set_applied`].
    pub fn applied(&self) -> u64 {
        self.core.read().applied
    }

    /// First index still in the log.
    pub fn first_index_now(&self) -> u64 {
        self.core.read().first_index()
    }

    /// Summed size of the entries in the log (kept in memory too), bytes.
    pub fn log_bytes(&self) -> usize {
        self.core.read().bytes
    }

    /// Where to compact so that at most `retention` applied entries and, beyond the first one
    /// kept, at most `retention_bytes` of entry data remain; `None` while the log holds fewer
    /// than twice either (compaction in steps, not on every append).
    pub fn compaction_point(&self, retention: u64, retention_bytes: usize) -> Option<u64> {
        let core = self.core.read();
        let (first, applied) = (core.first_index(), core.applied);
        let by_count = (applied > first + 2 * retention).then(|| applied - retention);
        let by_bytes = (core.bytes > 2 * retention_bytes).then(|| {
            let mut remaining = core.bytes;
            let mut index = first;
            for e in &core.entries {
                if remaining <= retention_bytes || e.index >= applied {
                    break;
                }
                remaining -= e.data.len();
                index = e.index + 1;
            }
            index
        });
        by_count.max(by_bytes).filter(|i| *i > first)
    }

    /// The configuration as of the applied index.
    pub fn conf_state(&self) -> ConfState {
        self.core.read().conf_state.clone()
    }

    /// Records the applied index in memory (the entries up to it were applied and their index
    /// persisted, by [`Self::record_applied`] or with their block).
    pub fn set_applied(&self, index: u64) {
        self.core.write().applied = index;
    }

    /// Persists `index` as applied for an entry that wrote no block (an empty entry, a refused
    /// block, a configuration change, a completed block sync), with `also` in the same atomic
    /// write. Fsynced when `also` is not empty; a lost no-op is re-applied as a no-op after a
    /// crash. Besides the state machine's block writes (which carry the index they are given),
    /// this is the only writer of the applied index.
    pub fn record_applied(&self, index: u64, also: Vec<RawOp>) -> Result<(), StorageError> {
        let sync = !also.is_empty();
        let mut ops = also;
        ops.push(RawOp::Put(Table::Meta, meta_keys::APPLIED_INDEX.to_vec(), index.to_be_bytes().to_vec()));
        self.db.write_raw(&ops, sync)?;
        self.set_applied(index);
        Ok(())
    }

    /// Sets what builds snapshot payloads (the state at the applied index, for followers too far
    /// behind). The applier must keep that state in step with [`Self::set_applied`].
    pub fn set_snapshot_source(&self, source: SnapshotSource) {
        *self.snapshot_source.write() = Some(source);
    }

    /// Sets the ConfState after an applied configuration change (persisted by the caller in the
    /// same batch as the applied index: [`Self::conf_state_op`]).
    pub fn set_conf_state(&self, conf_state: ConfState) {
        self.core.write().conf_state = conf_state;
    }

    /// The write that persists `conf_state`.
    pub fn conf_state_op(conf_state: &ConfState) -> RawOp {
        RawOp::Put(Table::RaftState, raft_keys::CONF_STATE.to_vec(), encode(conf_state))
    }

    /// Appends `entries` (replacing any conflicting suffix) and persists `hard_state`, in one
    /// write, fsynced when `sync` (raft-rs's `must_sync`).
    pub fn append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<(), StorageError> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        let mut core = self.core.write();
        let mut ops = Vec::with_capacity(entries.len() + 2);
        if let Some(first) = entries.first() {
            if first.index <= core.last_index() {
                ops.push(RawOp::DeleteRange(
                    Table::RaftLog,
                    entry_key(first.index),
                    entry_key(core.last_index() + 1),
                ));
            }
            for entry in entries {
                ops.push(RawOp::Put(Table::RaftLog, entry_key(entry.index), encode(entry)));
            }
        }
        if let Some(hs) = hard_state {
            ops.push(RawOp::Put(Table::RaftState, raft_keys::HARD_STATE.to_vec(), encode(hs)));
        }
        self.db.write_raw(&ops, sync)?;
        if let Some(first) = entries.first() {
            let keep = first.index.saturating_sub(core.first_index()) as usize;
            let removed: usize =
                core.entries.range(keep.min(core.entries.len())..).map(|e| e.data.len()).sum();
            core.bytes -= removed;
            core.entries.truncate(keep);
            core.bytes += entries.iter().map(|e| e.data.len()).sum::<usize>();
            core.entries.extend(entries.iter().cloned());
        }
        if let Some(hs) = hard_state {
            core.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Records a newer commit index (from a `LightReady`); not fsynced: a lost commit index is
    /// learnt again from the leader.
    pub fn set_commit(&self, commit: u64) -> Result<(), StorageError> {
        let mut core = self.core.write();
        core.hard_state.commit = commit;
        let op = RawOp::Put(Table::RaftState, raft_keys::HARD_STATE.to_vec(), encode(&core.hard_state));
        self.db.write_raw(&[op], false)
    }

    /// Installs a snapshot received from the leader: the log is emptied and restarts after it.
    pub fn apply_snapshot(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let meta = snapshot.get_metadata();
        let mut core = self.core.write();
        let mut snapshot_meta = meta.clone();
        snapshot_meta.clear_conf_state();
        core.hard_state.term = core.hard_state.term.max(meta.term);
        core.hard_state.commit = core.hard_state.commit.max(meta.index);
        let ops = [
            RawOp::DeleteRange(Table::RaftLog, entry_key(0), entry_key(u64::MAX)),
            RawOp::Put(Table::RaftState, raft_keys::SNAPSHOT_META.to_vec(), encode(&snapshot_meta)),
            RawOp::Put(Table::RaftState, raft_keys::CONF_STATE.to_vec(), encode(meta.get_conf_state())),
            RawOp::Put(Table::RaftState, raft_keys::HARD_STATE.to_vec(), encode(&core.hard_state)),
        ];
        self.db.write_raw(&ops, true)?;
        core.entries.clear();
        core.bytes = 0;
        core.snapshot_meta = snapshot_meta;
        core.conf_state = meta.get_conf_state().clone();
        Ok(())
    }

    /// Drops entries before `index` (which must be applied). Returns how many were dropped.
    pub fn compact(&self, index: u64) -> Result<usize, StorageError> {
        let mut core = self.core.write();
        let index = index.min(core.applied + 1).min(core.last_index() + 1);
        if index <= core.first_index() {
            return Ok(0);
        }
        let term = core.term(index - 1).map_err(|e| corrupt("compaction", e))?;
        let meta = SnapshotMetadata { index: index - 1, term, ..Default::default() };
        let ops = [
            RawOp::Put(Table::RaftState, raft_keys::SNAPSHOT_META.to_vec(), encode(&meta)),
            RawOp::DeleteRange(Table::RaftLog, entry_key(0), entry_key(index)),
        ];
        self.db.write_raw(&ops, false)?;
        let dropped = (index - core.first_index()) as usize;
        let freed: usize = core.entries.drain(..dropped).map(|e| e.data.len()).sum();
        core.bytes -= freed;
        core.snapshot_meta = meta;
        Ok(dropped)
    }
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.core.read();
        Ok(RaftState::new(core.hard_state.clone(), core.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.core.read();
        if low < core.first_index() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if high > core.last_index() + 1 {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        let from = (low - core.first_index()) as usize;
        let to = (high - core.first_index()) as usize;
        let mut entries: Vec<Entry> = core.entries.range(from..to).cloned().collect();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.core.read().term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let core = self.core.read();
        if core.applied < request_index || core.applied < core.snapshot_meta.index {
            return Err(raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable));
        }
        let data = self.snapshot_source.read().as_ref().map(|f| f()).unwrap_or_default();
        let mut snapshot = Snapshot { data: data.into(), ..Default::default() };
        let meta = snapshot.mut_metadata();
        meta.index = core.applied;
        meta.term = core.term(core.applied)?;
        meta.set_conf_state(core.conf_state.clone());
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage as _;

    fn spec() -> fogchain_genesis::ChainSpec {
        let genesis = alloy_genesis::Genesis {
            config: fogchain_genesis::prague_chain_config(1337),
            gas_limit: 30_000_000,
            ..Default::default()
        };
        fogchain_genesis::ChainSpec::new(genesis, Default::default()).unwrap()
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, data: vec![index as u8; 10].into(), ..Default::default() }
    }

    #[test]
    fn compaction_keeps_the_log_within_its_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let db = Storage::open(dir.path(), &spec()).unwrap();
        let store = LogStore::open(db.clone(), &[1, 2, 3]).unwrap();
        let entries: Vec<Entry> = (2..=41).map(|i| entry(i, 2)).collect();
        store.append(&entries, None, true).unwrap();
        assert_eq!(store.log_bytes(), 400);
        // an overwrite from 30 on (a new leader's entries) keeps the count exact
        store.append(&[entry(30, 3), entry(31, 3)], None, true).unwrap();
        assert_eq!(store.log_bytes(), 300);
        store.append(&(32..=41).map(|i| entry(i, 3)).collect::<Vec<_>>(), None, true).unwrap();
        assert_eq!(store.log_bytes(), 400);
        // nothing is compacted past the applied index
        store.set_applied(20);
        assert_eq!(store.compaction_point(1_000, 50), Some(20));
        store.set_applied(41);
        // 400 bytes > 2 x 50: keep the newest 50 bytes (entries 37..=41)
        assert_eq!(store.compaction_point(1_000, 50), Some(37));
        assert_eq!(store.compact(37).unwrap(), 35);
        assert_eq!(store.log_bytes(), 50);
        assert_eq!(store.first_index().unwrap(), 37);
        // within budget (and count): nothing to do
        assert_eq!(store.compaction_point(1_000, 50), None);
        // the count bound still applies: 4 applied entries past the first > 2 x 1
        assert_eq!(store.compaction_point(2, 1 << 20), None);
        assert_eq!(store.compaction_point(1, 1 << 20), Some(40));
    }

    #[test]
    fn log_survives_reopen_truncation_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Storage::open(dir.path(), &spec()).unwrap();
        let store = LogStore::open(db.clone(), &[1, 2, 3]).unwrap();
        assert_eq!(store.first_index().unwrap(), 2);
        assert_eq!(store.last_index().unwrap(), 1);
        assert_eq!(store.term(1).unwrap(), 1);
        let entries: Vec<Entry> = (2..=10).map(|i| entry(i, 2)).collect();
        let hs = HardState { term: 2, commit: 5, ..Default::default() };
        store.append(&entries, Some(&hs), true).unwrap();
        // A new leader overwrites 8.. with entries of term 3.
        store.append(&[entry(8, 3), entry(9, 3)], None, true).unwrap();
        assert_eq!(store.last_index().unwrap(), 9);
        assert_eq!(store.term(8).unwrap(), 3);
        drop(store);

        let store = LogStore::open(db.clone(), &[1, 2, 3]).unwrap();
        assert_eq!(store.last_index().unwrap(), 9);
        assert_eq!(store.term(9).unwrap(), 3);
        assert_eq!(store.initial_state().unwrap().hard_state.commit, 5);
        assert_eq!(store.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
        let got = store.entries(3, 6, None, GetEntriesContext::empty(false)).unwrap();
        assert_eq!(got.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4, 5]);

        // Compaction stops at the applied index.
        store.set_snapshot_source(Box::new(|| b"state".to_vec()));
        store.set_applied(6);
        assert_eq!(store.compact(9).unwrap(), 5);
        assert_eq!(store.first_index().unwrap(), 7);
        assert_eq!(store.term(6).unwrap(), 2);
        assert!(matches!(store.term(5), Err(raft::Error::Store(raft::StorageError::Compacted))));
        let snap = store.snapshot(6, 2).unwrap();
        assert_eq!((snap.get_metadata().index, snap.get_metadata().term), (6, 2));
        assert_eq!(&snap.data[..], b"state");
        drop(store);
        let store = LogStore::open(db.clone(), &[1, 2, 3]).unwrap();
        assert_eq!(store.first_index().unwrap(), 7);
        assert_eq!(store.last_index().unwrap(), 9);

        // Installing a newer snapshot empties the log.
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 20;
        snap.mut_metadata().term = 4;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3, 4];
        store.apply_snapshot(&snap).unwrap();
        drop(store);
        let store = LogStore::open(db, &[1, 2, 3]).unwrap();
        assert_eq!(store.first_index().unwrap(), 21);
        assert_eq!(store.last_index().unwrap(), 20);
        assert_eq!(store.term(20).unwrap(), 4);
        assert_eq!(store.conf_state().voters, vec![1, 2, 3, 4]);
    }

    #[test]
    fn an_applied_index_above_the_stored_commit_index_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let db = Storage::open(dir.path(), &spec()).unwrap();
        let store = LogStore::open(db.clone(), &[1]).unwrap();
        let entries: Vec<Entry> = (2..=6).map(|i| entry(i, 2)).collect();
        let hs = HardState { term: 2, commit: 3, ..Default::default() };
        store.append(&entries, Some(&hs), true).unwrap();
        // Entries up to 5 were applied, then the process died before the HardState was written.
        store.record_applied(5, vec![]).unwrap();
        drop(store);
        let store = LogStore::open(db, &[1]).unwrap();
        assert_eq!(store.initial_state().unwrap().hard_state.commit, 5);
        assert_eq!(store.applied(), 5);
    }

    #[test]
    fn a_joining_node_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let db = Storage::open(dir.path(), &spec()).unwrap();
        let store = LogStore::open(db, &[]).unwrap();
        assert!(!store.initial_state().unwrap().initialized());
        assert_eq!(store.first_index().unwrap(), 1);
        assert_eq!(store.last_index().unwrap(), 0);
    }
}
