//! Steps 1 and 2: a device message is checked (format, device, rate, duplicate, queue room),
//! journaled with one fsync per group, and only then acknowledged.

use super::message::parse_message;
use super::Bridge;
use crate::journal::{Body, Message, Record};
use serde_json::{json, Value};
use std::collections::HashMap;

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

impl Bridge {
    /// Rate limit and parse a device message; refusals are acked here. Returns what to journal.
    pub(super) async fn check_message(
        &self,
        device: &str,
        payload: &[u8],
    ) -> Option<(String, Option<u64>, Body)> {
        if !self.devices.contains(device) {
            tracing::warn!(device, "message from an unknown device ignored");
            return None;
        }
        let hint =
            serde_json::from_slice::<Value>(payload).ok().and_then(|v| v.get("Seq").and_then(Value::as_u64));
        if self.limiter.check_key(&device.to_string()).is_err() {
            metrics::counter!("fogchain_proxy_rate_limited_total", "source" => "mqtt").increment(1);
            let reason = format!("rate limit exceeded: at most {}", self.rate_text);
            self.ack(device, json!({"seq": hint, "status": "rejected", "reason": reason})).await;
            return None;
        }
        match parse_message(payload, &self.devices, &self.cfg.danger_index) {
            Ok((seq, body)) => {
                metrics::counter!("fogchain_proxy_messages_received_total", "kind" => body.kind())
                    .increment(1);
                Some((device.to_string(), seq, body))
            }
            Err(e) => {
                let reason = e.to_string();
                self.ack(device, json!({"seq": hint, "status": "rejected", "reason": reason})).await;
                None
            }
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
            if backlog + records.len() >= self.queue_limit {
                out.push(Err((seq, IntakeError::QueueFull { waiting: backlog + records.len() })));
                continue;
            }
            let seq = seq.unwrap_or(*last_seq + 1);
            *last_seq = seq;
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
        if let Err(e) = journal.append(records) {
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
