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

/// `rpc.call` within [`CALL_TIMEOUT`].
async fn call(rpc: &Rpc, method: &str, params: Value) -> eyre::Result<Value> {
    tokio::time::timeout(CALL_TIMEOUT, rpc.call(method, params))
        .await
        .unwrap_or_else(|_| Err(eyre::eyre!("{method}: timed out")))
}

/// Most transactions one lane has without a receipt; beyond, it only re-sends (a cluster
/// without a majority must not fill the pools with nonces that cannot run).
const LANE_WINDOW: usize = 8;

/// A transaction of a lane waiting for its receipt.
struct InFlight {
    nonce: u64,
    hash: B256,
    raw: String,
    sent: Instant,
}

/// One sender at a fixed rate (open loop: a stuck transaction does not hold the next one back):
/// a 1-wei transfer every `interval` with the next nonce, to the nodes in turn. A transaction is
/// never replaced: without a receipt after [`RESEND_AFTER`] the same signed bytes go to the next
/// node (a killed, paused or cut-off node is routed around; nonces after a lost one wait in the
/// pools until it is re-sent). Sends do not wait for slow nodes (each is its own task).
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
    let mut next_nonce = None;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut next_tick = Instant::now();
    let send = |node: usize, raw: String, hash: B256, nonce: u64| {
        let (rpc, history) = (nodes[node].clone(), history.clone());
        tokio::spawn(async move {
            let answer = call(&rpc, "eth_sendRawTransaction", json!([raw])).await;
            let error = answer.err().map(|e| format!("{e:#}")).filter(|e| !e.contains("already known"));
            history.push(Event::Sent { t: history.now(), lane, nonce, hash, node, error });
        });
    };
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if next_nonce.is_none() {
            turn += 1;
            let answer =
                call(&nodes[turn % n], "eth_getTransactionCount", json!([key.address(), "latest"])).await;
            next_nonce = answer.ok().as_ref().and_then(crate::rpc::quantity).map(|v| v as u64);
            continue;
        }
        // a new transaction on schedule
        if Instant::now() >= next_tick && in_flight.len() < LANE_WINDOW {
            next_tick += interval;
            let nonce = next_nonce.unwrap_or_default();
            let to = Address::from(rand::random::<[u8; 20]>());
            let Ok(tx) = target.sign(&key, nonce, TxKind::Call(to), U256::from(1), Bytes::new(), 21_000)
            else {
                return;
            };
            turn += 1;
            send(turn % n, tx.raw_hex(), tx.hash, nonce);
            in_flight.push(InFlight { nonce, hash: tx.hash, raw: tx.raw_hex(), sent: Instant::now() });
            next_nonce = Some(nonce + 1);
        } else if Instant::now() >= next_tick {
            next_tick = Instant::now() + interval;
        }
        // receipts, from the nodes in turn
        if in_flight.is_empty() {
            continue;
        }
        let rpc = &nodes[(turn + 1) % n];
        let calls: Vec<(&str, Value)> =
            in_flight.iter().map(|f| ("eth_getTransactionReceipt", json!([f.hash]))).collect();
        let answers = tokio::time::timeout(CALL_TIMEOUT, rpc.batch(&calls)).await.ok().and_then(Result::ok);
        let mut done = vec![false; in_flight.len()];
        for (i, answer) in answers.into_iter().flatten().enumerate() {
            let Ok(receipt) = answer else { continue };
            let block = receipt["blockNumber"]
                .as_str()
                .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
            let block_hash = receipt["blockHash"].as_str().and_then(|s| s.parse::<B256>().ok());
            if let (Some(block), Some(block_hash)) = (block, block_hash) {
                let node = (turn + 1) % n;
                history.push(Event::Receipt {
                    t: history.now(),
                    hash: in_flight[i].hash,
                    block,
                    block_hash,
                    node,
                });
                done[i] = true;
            }
        }
        let mut i = 0;
        in_flight.retain(|_| {
            i += 1;
            !done[i - 1]
        });
        for f in in_flight.iter_mut().filter(|f| f.sent.elapsed() > RESEND_AFTER) {
            turn += 1;
            send(turn % n, f.raw.clone(), f.hash, f.nonce);
            f.sent = Instant::now();
        }
    }
}

/// A transaction without a receipt this long is sent again, to the next node.
const RESEND_AFTER: Duration = Duration::from_millis(1500);

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
