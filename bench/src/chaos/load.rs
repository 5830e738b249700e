//! What the chaos run does to the system and sees of it, recorded in one [`History`]: signed
//! transfers from closed-loop lanes through every node, registry messages from MQTT devices
//! (their acks are recorded by the proxy rig in [`crate::iot::Shared`]), and each node's head
//! and role polled every 100 ms.

use crate::{chain::Target, rpc::Rpc};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// One observation, at `t` seconds since the run started.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub(crate) enum Event {
    /// `eth_sendRawTransaction` of lane `lane`'s transaction to `node`; `error` if refused.
    Sent { t: f64, lane: usize, nonce: u64, hash: B256, node: usize, error: Option<String> },
    /// A receipt for `hash` read from `node`: in block `block` (`block_hash`).
    Receipt { t: f64, hash: B256, block: u64, block_hash: B256, node: usize },
    /// `node`'s head became `number` (`hash`, minted by `miner`).
    Head { t: f64, node: usize, number: u64, hash: B256, miner: Address },
    /// `node` reported itself the Raft leader (`raft_role` = "minter") after not doing so.
    Leader { t: f64, node: usize },
    /// Device `device` published message `seq`, an action message or a registry message
    /// (`queued`: handed to its client).
    Publish { t: f64, device: usize, seq: u64, queued: bool, action: bool },
    /// Device `device` got the proxy's ack `status` ("accepted": journaled, "recorded": in a
    /// block, "failed") for message `seq`.
    Ack { t: f64, device: usize, seq: u64, status: String },
    /// A fault began (`heal: false`) or ended.
    Fault { t: f64, kind: String, detail: String, heal: bool },
}

impl Event {
    /// Seconds since the run started.
    pub(crate) fn t(&self) -> f64 {
        match self {
            Self::Sent { t, .. }
            | Self::Receipt { t, .. }
            | Self::Head { t, .. }
            | Self::Leader { t, .. }
            | Self::Publish { t, .. }
            | Self::Ack { t, .. }
            | Self::Fault { t, .. } => *t,
        }
    }
}

/// Everything observed.
pub(crate) struct History {
    pub(crate) t0: Instant,
    events: Mutex<Vec<Event>>,
}

impl History {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { t0: Instant::now(), events: Mutex::new(Vec::new()) })
    }

    /// Seconds since the start.
    pub(crate) fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub(crate) fn push(&self, event: Event) {
        self.events.lock().push(event);
    }

    /// The events in time order.
    pub(crate) fn events(&self) -> Vec<Event> {
        let mut events = self.events.lock().clone();
        events.sort_by(|a, b| a.t().total_cmp(&b.t()));
        events
    }
}

/// How long one RPC call of the load may take (a paused node never answers).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

async fn call(rpc: &Rpc, method: &str, params: Value) -> Result<Value, String> {
    match tokio::time::timeout(CALL_TIMEOUT, rpc.call(method, params)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("timed out".into()),
    }
}

/// One closed-loop sender: a transfer of 1 wei at a time, `interval` apart at most. A
/// transaction is never replaced: the same signed bytes go to the next node until a receipt
/// comes (nodes that are down, paused or cut off are skipped that way).
pub(crate) async fn lane(
    lane: usize,
    key: PrivateKeySigner,
    target: Arc<Target>,
    nodes: Vec<Rpc>,
    interval: Duration,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) {
    let n = nodes.len();
    let mut turn = lane;
    let mut nonce = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next.into()).await;
        next = Instant::now() + interval;
        let current = match nonce {
            Some(v) => v,
            None => {
                turn += 1;
                let answer =
                    call(&nodes[turn % n], "eth_getTransactionCount", json!([key.address(), "latest"])).await;
                match answer.ok().as_ref().and_then(crate::rpc::quantity) {
                    Some(v) => *nonce.insert(v as u64),
                    None => continue,
                }
            }
        };
        let to = Address::from(rand::random::<[u8; 20]>());
        let Ok(tx) = target.sign(&key, current, TxKind::Call(to), U256::from(1), Bytes::new(), 21_000) else {
            return;
        };
        let raw = tx.raw_hex();
        let mut last_send: Option<Instant> = None;
        // until a receipt (or the end of the run)
        while !stop.load(Ordering::Relaxed) {
            if last_send.is_none_or(|t| t.elapsed() > Duration::from_secs(3)) {
                turn += 1;
                let node = turn % n;
                let answer = call(&nodes[node], "eth_sendRawTransaction", json!([raw])).await;
                let error = answer.err().filter(|e| !e.contains("already known"));
                let refused = error.is_some();
                history.push(Event::Sent {
                    t: history.now(),
                    lane,
                    nonce: current,
                    hash: tx.hash,
                    node,
                    error,
                });
                if !refused {
                    last_send = Some(Instant::now());
                }
            }
            // any node's receipt will do; the checker asks every node at the end
            let node = (turn + 1) % n;
            if let Ok(receipt) = call(&nodes[node], "eth_getTransactionReceipt", json!([tx.hash])).await {
                let block = receipt["blockNumber"]
                    .as_str()
                    .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
                let block_hash = receipt["blockHash"].as_str().and_then(|s| s.parse::<B256>().ok());
                if let (Some(block), Some(block_hash)) = (block, block_hash) {
                    history.push(Event::Receipt { t: history.now(), hash: tx.hash, block, block_hash, node });
                    nonce = Some(current + 1);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            // a nonce above ours means our transaction (the only one with it) is in a block:
            // the receipt query above will find it
        }
    }
}

/// Polls every node's latest block and role every 100 ms until `stop`.
pub(crate) async fn watch(node: usize, rpc: Rpc, history: Arc<History>, stop: Arc<AtomicBool>) {
    let mut last: Option<u64> = None;
    let mut leading = false;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(block) = call(&rpc, "eth_getBlockByNumber", json!(["latest", false])).await {
            let number = block["number"]
                .as_str()
                .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
            let hash = block["hash"].as_str().and_then(|s| s.parse::<B256>().ok());
            let miner = block["miner"].as_str().and_then(|s| s.parse::<Address>().ok());
            if let (Some(number), Some(hash), Some(miner)) = (number, hash, miner) {
                if last != Some(number) {
                    last = Some(number);
                    history.push(Event::Head { t: history.now(), node, number, hash, miner });
                }
            }
        }
        let role = call(&rpc, "raft_role", json!([])).await;
        let now_leading = role.as_ref().ok().and_then(Value::as_str) == Some("minter");
        if now_leading && !leading {
            history.push(Event::Leader { t: history.now(), node });
        }
        leading = now_leading;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Devices publish in turn, `rate` messages per second in total, each with its own rising `Seq`,
/// until `stop`: registry messages naming themselves in the payload (`{"chaos": "<device>:<seq>"}`)
/// and, every `action_every`-th message, an action message for DangerIndex `danger` whose
/// precipitation value `P` is the `Seq` (the checker finds it in the transaction's input); its
/// decision goes to the device's own commands topic.
pub(crate) async fn devices(
    (ids, clients, shared): (Vec<String>, Vec<rumqttc::AsyncClient>, Arc<Mutex<crate::iot::Shared>>),
    (rate, action_every, danger): (f64, usize, Address),
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) {
    let t0 = Instant::now();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        let d = i % ids.len();
        let seq = (i / ids.len()) as u64 + 1;
        let action = action_every > 0 && i % action_every == action_every - 1;
        i += 1;
        let body = if action {
            json!({"Payload": {"chaos": format!("{d}:{seq}")}, "Topic": "fire/danger", "Seq": seq,
                   "MessageContent": {"Address": danger, "Values": {"CS": 812, "P": seq, "H": [5500, 5100, 4900, 4700, 4600]},
                                      "Publish_Topic": format!("devices/{}/commands", ids[d])}})
        } else {
            json!({"Payload": {"chaos": format!("{d}:{seq}")}, "Topic": "chaos", "Seq": seq})
        };
        shared
            .lock()
            .messages
            .insert((d, seq), crate::iot::Times { sent: Some(Instant::now()), ..Default::default() });
        // try_publish: a full client queue (the proxy is down) is a message never offered
        let queued = clients[d]
            .try_publish(
                format!("devices/{}/messages", ids[d]),
                rumqttc::QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .is_ok();
        history.push(Event::Publish { t: history.now(), device: d, seq, queued, action });
    }
}
