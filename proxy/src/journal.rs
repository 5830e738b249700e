//! The bridge's write-ahead journal: every accepted device message is on disk (fsynced) before
//! the device gets its ack, and every transaction is on disk before it is sent.
//!
//! File `journal.log` in the data dir, one record per line: `<crc32 hex> <json>\n`. A torn last
//! line (crash mid-write) fails its checksum and is cut off at open. Records:
//! `accepted` (a message, with its journal id and the device's seq), `sent` (a signed raw
//! transaction, its nonce and the message ids it carries), `done` (its receipt), `failed`
//! (messages that will not be recorded, with the reason the device was told), `abandoned` (a
//! sent transaction whose nonce was taken by another one: its messages are pending again), and
//! `seqs` (the last seq per device, written when the file is compacted at open).
//!
//! Exactly once: a message is only ever carried by one live `sent` transaction; after a crash the
//! same signed bytes are resent (same hash, so a transaction already mined is not mined twice),
//! and a message goes back to pending only when its transaction provably cannot be mined.
//! Idempotence: a message whose seq is not above the device's last one is a duplicate.

use alloy_primitives::{Address, Bytes, B256};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    time::Instant,
};

/// What a device asked for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Body {
    /// A registry message (RM): recorded in SensorRegistry.
    Registry {
        /// The RM's `Topic`.
        topic: String,
        /// The RM's `Payload` as recorded (bytes).
        payload: Bytes,
        /// The device's EIP-191 signature (recordSigned), if any.
        signature: Option<Bytes>,
    },
    /// An action message (AM): DangerIndex.submit.
    Action {
        /// The DangerIndex contract.
        contract: Address,
        /// Precipitation, hundredths of a percent.
        p: u64,
        /// Humidity of today and the 4 days before, hundredths of a percent.
        h: [u64; 5],
        /// Solar radiation, hundredths.
        cs: u64,
        /// Where the decision is published.
        publish_topic: String,
    },
}

impl Body {
    /// `registry` or `action`, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Registry { .. } => "registry",
            Body::Action { .. } => "action",
        }
    }
}

/// An accepted device message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Journal id (increasing).
    pub id: u64,
    /// Device id.
    pub device: String,
    /// The device's sequence number (given or assigned).
    pub seq: u64,
    /// The request.
    pub body: Body,
    /// When this process accepted it (or replayed it after a restart); not journaled. For the
    /// backlog age and decision latency metrics.
    #[serde(skip, default = "Instant::now")]
    pub accepted: Instant,
}

/// One journal record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
pub enum Record {
    /// A message was accepted.
    Accepted(Message),
    /// A transaction carrying `ids` was signed and is being sent.
    Sent {
        /// Transaction hash.
        tx: B256,
        /// Its nonce.
        nonce: u64,
        /// The signed EIP-2718 envelope.
        raw: Bytes,
        /// Messages it carries.
        ids: Vec<u64>,
    },
    /// The transaction has a receipt.
    Done {
        /// Transaction hash.
        tx: B256,
        /// Block number.
        block: u64,
        /// Receipt status.
        ok: bool,
    },
    /// Messages that will not be recorded.
    Failed {
        /// Message ids.
        ids: Vec<u64>,
        /// What the device was told.
        reason: String,
    },
    /// A sent transaction that cannot be mined any more; its messages are pending again.
    Abandoned {
        /// Transaction hash.
        tx: B256,
    },
    /// Last seq per device (compaction).
    Seqs {
        /// Device id -> last seq.
        last: BTreeMap<String, u64>,
    },
}

/// A transaction in flight.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Its nonce.
    pub nonce: u64,
    /// Signed envelope.
    pub raw: Bytes,
    /// Messages it carries.
    pub ids: Vec<u64>,
    /// When it was last (re)sent.
    pub sent_at: Instant,
}

/// The journal and the state it rebuilds.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Messages not finished yet, by id.
    pub messages: BTreeMap<u64, Message>,
    /// Ids not carried by any live transaction, oldest first.
    pub pending: VecDeque<u64>,
    /// Live transactions by hash.
    pub inflight: HashMap<B256, InFlight>,
    /// Last seq per device.
    pub last_seq: HashMap<String, u64>,
    /// Records skipped at open because they failed their checksum in the middle of the file.
    pub corrupt_records: usize,
    next_id: u64,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, replays it and compacts it.
    pub fn open(dir: &Path) -> crate::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("journal.log");
        let mut state = Self {
            path: path.clone(),
            file: OpenOptions::new().create(true).append(true).open(&path)?,
            messages: BTreeMap::new(),
            pending: VecDeque::new(),
            inflight: HashMap::new(),
            last_seq: HashMap::new(),
            corrupt_records: 0,
            next_id: 1,
        };
        // A record that fails its checksum is torn when only torn records follow it (a crash
        // mid-write: dropped quietly), corrupt otherwise (a damaged disk block: skipped, kept in
        // `journal.corrupt` and reported, so the records after it still count).
        let reader = BufReader::new(File::open(&path)?);
        let mut bad: Vec<(usize, Vec<u8>)> = Vec::new();
        for (number, line) in reader.split(b'\n').enumerate() {
            let line = line?;
            match decode_line(&line) {
                Some(record) => {
                    state.corrupt_records += bad.len();
                    state.keep_corrupt(&mut bad)?;
                    state.apply(record);
                }
                None => bad.push((number + 1, line)),
            }
        }
        if !bad.is_empty() {
            tracing::warn!(journal = %path.display(), records = bad.len(), "torn journal tail dropped");
        }
        state.compact()?;
        Ok(state)
    }

    /// Appends corrupt lines (with their line numbers) to `journal.corrupt` next to the journal,
    /// for an operator to inspect, and reports them: what they held (a message, a sent
    /// transaction, a receipt) is not known any more.
    fn keep_corrupt(&self, bad: &mut Vec<(usize, Vec<u8>)>) -> crate::Result<()> {
        if bad.is_empty() {
            return Ok(());
        }
        let aside = self.path.with_extension("corrupt");
        let mut out = OpenOptions::new().create(true).append(true).open(&aside)?;
        for (number, line) in bad.drain(..) {
            tracing::error!(
                journal = %self.path.display(),
                line = number,
                kept_in = %aside.display(),
                "corrupt journal record skipped (checksum mismatch); the records after it are replayed"
            );
            metrics::counter!("fogchain_proxy_journal_corrupt_records_total").increment(1);
            out.write_all(format!("line {number}: ").as_bytes())?;
            out.write_all(&line)?;
            out.write_all(b"\n")?;
        }
        out.sync_all()?;
        Ok(())
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Accepted(m) => {
                self.next_id = self.next_id.max(m.id + 1);
                let last = self.last_seq.entry(m.device.clone()).or_default();
                *last = (*last).max(m.seq);
                self.pending.push_back(m.id);
                self.messages.insert(m.id, m);
            }
            Record::Sent { tx, nonce, raw, ids } => {
                self.pending.retain(|id| !ids.contains(id));
                self.inflight.insert(tx, InFlight { nonce, raw, ids, sent_at: Instant::now() });
            }
            Record::Done { tx, .. } => {
                if let Some(f) = self.inflight.remove(&tx) {
                    for id in f.ids {
                        self.messages.remove(&id);
                    }
                }
            }
            Record::Failed { ids, .. } => {
                for id in ids {
                    self.messages.remove(&id);
                    self.pending.retain(|p| *p != id);
                }
            }
            Record::Abandoned { tx } => {
                if let Some(f) = self.inflight.remove(&tx) {
                    let mut back: Vec<u64> =
                        f.ids.into_iter().filter(|id| self.messages.contains_key(id)).collect();
                    back.extend(self.pending.drain(..));
                    back.sort_unstable();
                    self.pending = back.into();
                }
            }
            Record::Seqs { last } => {
                for (device, seq) in last {
                    let s = self.last_seq.entry(device).or_default();
                    *s = (*s).max(seq);
                }
            }
        }
    }

    /// Rewrites the file with only what is still live.
    fn compact(&mut self) -> crate::Result<()> {
        let tmp = self.path.with_extension("log.tmp");
        {
            let mut f = File::create(&tmp)?;
            let mut out = Vec::new();
            let seqs = Record::Seqs { last: self.last_seq.iter().map(|(k, v)| (k.clone(), *v)).collect() };
            encode_line(&seqs, &mut out);
            for m in self.messages.values() {
                encode_line(&Record::Accepted(m.clone()), &mut out);
            }
            let mut sent: Vec<_> = self.inflight.iter().collect();
            sent.sort_by_key(|(_, f)| f.nonce);
            for (tx, f) in sent {
                encode_line(
                    &Record::Sent { tx: *tx, nonce: f.nonce, raw: f.raw.clone(), ids: f.ids.clone() },
                    &mut out,
                );
            }
            f.write_all(&out)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }

    /// Appends `records` and fsyncs, then applies them to the in-memory state.
    pub fn append(&mut self, records: Vec<Record>) -> crate::Result<()> {
        let mut out = Vec::new();
        for r in &records {
            encode_line(r, &mut out);
        }
        self.file.write_all(&out)?;
        self.file.sync_data()?;
        for r in records {
            self.apply(r);
        }
        Ok(())
    }

    /// The next journal id (not yet used).
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Messages accepted and not finished.
    pub fn backlog(&self) -> usize {
        self.messages.len()
    }

    /// How long the oldest unfinished message has waited.
    pub fn oldest_age(&self) -> Option<std::time::Duration> {
        self.messages.values().next().map(|m| m.accepted.elapsed())
    }

    /// The highest nonce of a live transaction.
    pub fn max_inflight_nonce(&self) -> Option<u64> {
        self.inflight.values().map(|f| f.nonce).max()
    }
}

fn encode_line(record: &Record, out: &mut Vec<u8>) {
    let json = serde_json::to_vec(record).expect("journal records serialize");
    out.extend_from_slice(format!("{:08x} ", crc32fast::hash(&json)).as_bytes());
    out.extend_from_slice(&json);
    out.push(b'\n');
}

fn decode_line(line: &[u8]) -> Option<Record> {
    if line.len() < 10 || line[8] != b' ' {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(&line[..8]).ok()?, 16).ok()?;
    let json = &line[9..];
    if crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rm(id: u64, seq: u64) -> Message {
        Message {
            accepted: Instant::now(),
            id,
            device: "s1".into(),
            seq,
            body: Body::Registry { topic: "t".into(), payload: Bytes::from_static(b"{}"), signature: None },
        }
    }

    #[test]
    fn replay_after_crash_keeps_state_and_drops_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let tx = B256::repeat_byte(7);
        {
            let mut j = Journal::open(dir.path()).unwrap();
            let (a, b, c) = (j.next_id(), j.next_id(), j.next_id());
            j.append(vec![
                Record::Accepted(rm(a, 1)),
                Record::Accepted(rm(b, 2)),
                Record::Accepted(rm(c, 3)),
            ])
            .unwrap();
            j.append(vec![Record::Sent { tx, nonce: 4, raw: Bytes::from_static(b"\x02"), ids: vec![a, b] }])
                .unwrap();
            assert_eq!(j.pending, vec![c]);
        }
        // a torn record at the end
        let mut f = OpenOptions::new().append(true).open(dir.path().join("journal.log")).unwrap();
        f.write_all(b"deadbeef {\"t\":\"done\"").unwrap();
        drop(f);
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.pending, vec![3]);
        assert_eq!(j.inflight[&tx].ids, vec![1, 2]);
        assert_eq!(j.last_seq["s1"], 3);
        assert_eq!(j.next_id(), 4);
        j.append(vec![Record::Abandoned { tx }]).unwrap();
        assert_eq!(j.pending, vec![1, 2, 3]);
        let tx2 = B256::repeat_byte(8);
        j.append(vec![Record::Sent { tx: tx2, nonce: 5, raw: Bytes::new(), ids: vec![1, 2, 3] }]).unwrap();
        j.append(vec![Record::Done { tx: tx2, block: 9, ok: true }]).unwrap();
        assert_eq!(j.backlog(), 0);
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.backlog(), 0);
        assert_eq!(j.last_seq["s1"], 3, "seqs survive compaction");
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_skipped_not_a_truncation() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            for seq in 1..=3 {
                let id = j.next_id();
                j.append(vec![Record::Accepted(rm(id, seq))]).unwrap();
            }
        }
        let path = dir.path().join("journal.log");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        // lines: seqs, accepted 1, 2, 3 -> flip a byte of message 2's JSON
        let damaged = lines[2].replacen("\"seq\":2", "\"seq\":9", 1);
        assert_ne!(damaged, lines[2]);
        lines[2] = damaged;
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.corrupt_records, 1);
        assert_eq!(j.pending, vec![1, 3], "message 3, after the corrupt record, is replayed");
        let aside = std::fs::read_to_string(dir.path().join("journal.corrupt")).unwrap();
        assert!(aside.starts_with("line 3: "), "{aside}");
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!((j.corrupt_records, j.pending.len()), (0, 2), "compaction removed it");
    }
}
