//! Steps 1 and 2: a device message is checked (format, device, rate, duplicate, queue room),
//! journaled with one fsync per group, and only then acknowledged.

use super::message::parse_message;
use super::Bridge;
use crate::journal::{Body, Message, Record};
use alloy_primitives::{keccak256, B256};
use serde_json::{json, Value};
use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

/// Why an accepted-looking message could not be journaled (the `reason` of its `rejected` ack).
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    /// `[mqtt] queue-limit` messages wait for the chain.
    #[error("queue full: {waiting} messages are waiting for the chain (is it reachable?); retry later")]
    QueueFull {
        /// Messages journaled and not yet recorded.
        waiting: usize,
    },
    /// The journal could not be written (fsync).
    #[error("journal write failed: {0}")]
    Journal(String),
}

/// What became of one message offered to the journal.
pub(super) enum Accepted {
    New(u64),
    Duplicate(u64),
}

/// A device message handed over by the embedded broker's front (not through the broker), so
/// that the device's PUBACK / PUBREC waits for the journal's fsync.
#[derive(Debug)]
pub struct Offer {
    /// The authenticated device.
    pub device: String,
    /// The PUBLISH payload on `devices/{device}/messages`.
    pub payload: bytes::Bytes,
    /// Told the outcome once it is final (journaled, a duplicate, or refused).
    pub reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// What the bridge made of a device message: the `status` of its ack on `devices/{id}/acks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Journaled with this seq.
    Accepted(u64),
    /// Already journaled earlier (same seq, or same content without seq within the window).
    Duplicate(u64),
    /// Refused; nothing was journaled.
    Rejected {
        /// The message's `Seq`, when it had a readable one.
        seq: Option<u64>,
        /// Why, for the device.
        reason: String,
        /// What kind of refusal (MQTT 5 words it as a PUBACK reason code).
        kind: RejectKind,
    },
}

/// Why a device message was refused, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Its content (format, device, contract, actuator): re-sending it is useless.
    Content,
    /// The device's rate or the queue: retry later.
    Quota,
    /// The proxy could not journal it.
    Internal,
}

impl Outcome {
    /// The ack's JSON: `{"seq", "status"}` plus `reason` for a rejection.
    pub fn ack_json(&self) -> Value {
        match self {
            Self::Accepted(seq) => json!({"seq": seq, "status": "accepted"}),
            Self::Duplicate(seq) => json!({"seq": seq, "status": "duplicate"}),
            Self::Rejected { seq, reason, .. } => json!({"seq": seq, "status": "rejected", "reason": reason}),
        }
    }
}

impl Bridge {
    /// Rate limit and parse a device message: what to journal, or why not.
    pub(super) fn check_message(
        &self,
        device: &str,
        payload: &[u8],
    ) -> Result<(String, Option<u64>, Body), Outcome> {
        let hint =
            serde_json::from_slice::<Value>(payload).ok().and_then(|v| v.get("Seq").and_then(Value::as_u64));
        let Some(may_command) = self.devices.get(device) else {
            tracing::warn!(device, "message from an unknown device refused");
            let reason = format!("unknown device {device:?}");
            return Err(Outcome::Rejected { seq: hint, reason, kind: RejectKind::Content });
        };
        if self.limiter.check_key(&device.to_string()).is_err() {
            metrics::counter!("fogchain_proxy_rate_limited_total", "source" => "mqtt").increment(1);
            let reason = format!("rate limit exceeded: at most {}", self.rate_text);
            return Err(Outcome::Rejected { seq: hint, reason, kind: RejectKind::Quota });
        }
        match parse_message(payload, |target| may_command.contains(target), &self.cfg.danger_index) {
            Ok((seq, body)) => {
                metrics::counter!("fogchain_proxy_messages_received_total", "kind" => body.kind())
                    .increment(1);
                Ok((device.to_string(), seq, body))
            }
            Err(e) => Err(Outcome::Rejected { seq: hint, reason: e.to_string(), kind: RejectKind::Content }),
        }
    }

    /// Journals messages with one fsync and wakes the batcher: per message, new (with its seq),
    /// a duplicate, or refused (`(seq, reason)`: queue full, journal failure).
    pub(super) fn accept_all(
        &self,
        items: Vec<(String, Option<u64>, Body)>,
    ) -> Vec<Result<Accepted, (Option<u64>, IntakeError)>> {
        if items.is_empty() {
            return Vec::new();
        }
        let mut journal = self.journal.lock();
        let mut recent = self.recent.lock();
        let mut remembered = Vec::new();
        let mut last: HashMap<String, u64> = HashMap::new();
        let mut records = Vec::new();
        let mut out = Vec::with_capacity(items.len());
        let backlog = journal.backlog();
        for (device, seq, body) in items {
            let last_seq = last
                .entry(device.clone())
                .or_insert_with(|| journal.last_seq.get(&device).copied().unwrap_or(0));
            if let Some(seq) = seq.filter(|s| *s <= *last_seq) {
                out.push(Ok(Accepted::Duplicate(seq)));
                continue;
            }
            let digest = seq.is_none().then(|| content_digest(&device, &body));
            if let Some(seq) = digest.and_then(|d| recent.seen(&device, d)) {
                out.push(Ok(Accepted::Duplicate(seq)));
                continue;
            }
            if backlog + records.len() >= self.queue_limit {
                out.push(Err((seq, IntakeError::QueueFull { waiting: backlog + records.len() })));
                continue;
            }
            let seq = seq.unwrap_or(last_seq.saturating_add(1));
            *last_seq = seq;
            if let Some(d) = digest {
                recent.remember(&device, d, seq);
                remembered.push((device.clone(), d));
            }
            let id = journal.next_id();
            records.push(Record::Accepted(Message {
                id,
                device,
                seq,
                body,
                accepted: std::time::Instant::now(),
            }));
            out.push(Ok(Accepted::New(seq)));
        }
        if records.is_empty() {
            return out;
        }
        drop(recent);
        if let Err(e) = journal.append(records) {
            // not accepted: a re-send must not be taken for a duplicate
            self.recent.lock().forget(&remembered);
            tracing::error!(error = %e, "journal write failed");
            let reason = IntakeError::Journal(e.to_string());
            return out
                .into_iter()
                .map(|o| match o {
                    Ok(Accepted::New(seq)) => Err((Some(seq), reason.clone())),
                    other => other,
                })
                .collect();
        }
        drop(journal);
        self.wake.notify_one();
        out
    }

    /// Records a proxy-originated reading of `device` (e.g. a warehouse release) through the
    /// journal, like a device message; returns its seq.
    pub fn record_internal(&self, device: &str, topic: &str, payload: Vec<u8>) -> Result<u64, IntakeError> {
        let body = Body::Registry { topic: topic.to_string(), payload: payload.into(), signature: None };
        match self.accept_all(vec![(device.to_string(), None, body)]).pop() {
            Some(Ok(Accepted::New(seq) | Accepted::Duplicate(seq))) => Ok(seq),
            Some(Err((_, e))) => Err(e),
            // accept_all answers every item it is given.
            None => Err(IntakeError::Journal("no answer for the record".into())),
        }
    }
}

/// Digest of what a message asks for (device and body): two sends of the same reading or action
/// without `Seq` have the same digest.
fn content_digest(device: &str, body: &Body) -> B256 {
    let mut bytes = device.as_bytes().to_vec();
    bytes.push(0);
    // Body is plain data (strings, numbers, bytes): serde_json cannot fail on it.
    bytes.extend(serde_json::to_vec(body).unwrap_or_default());
    keccak256(bytes)
}

/// Most digests remembered per device (the oldest are forgotten first).
const RECENT_PER_DEVICE: usize = 1024;

/// Messages without `Seq` accepted within the dedupe window, per device: digest, the seq they
/// were given, when. In memory only: after a restart the window starts empty.
#[derive(Debug)]
pub(super) struct RecentContent {
    window: Duration,
    by_device: HashMap<String, VecDeque<(B256, u64, Instant)>>,
}

impl RecentContent {
    pub(super) fn new(window: Duration) -> Self {
        Self { window, by_device: HashMap::new() }
    }

    /// The seq of an equal message accepted within the window, if any.
    fn seen(&mut self, device: &str, digest: B256) -> Option<u64> {
        let entries = self.by_device.get_mut(device)?;
        while entries.front().is_some_and(|(_, _, at)| at.elapsed() > self.window) {
            entries.pop_front();
        }
        entries.iter().rev().find(|(d, ..)| *d == digest).map(|(_, seq, _)| *seq)
    }

    fn remember(&mut self, device: &str, digest: B256, seq: u64) {
        if self.window.is_zero() {
            return;
        }
        let entries = self.by_device.entry(device.to_string()).or_default();
        if entries.len() == RECENT_PER_DEVICE {
            entries.pop_front();
        }
        entries.push_back((digest, seq, Instant::now()));
    }

    /// Drops what a failed journal write had remembered.
    fn forget(&mut self, remembered: &[(String, B256)]) {
        for (device, digest) in remembered {
            if let Some(entries) = self.by_device.get_mut(device) {
                if let Some(i) = entries.iter().rposition(|(d, ..)| d == digest) {
                    entries.remove(i);
                }
            }
        }
    }
}
