//! The MQTT bridge: device messages in, transactions out, decisions and acks back.
//!
//! The bridge is an MQTT client (rumqttc, persistent session, QoS 1, manual acks) of the
//! broker — the embedded one or an external one — subscribed to `devices/+/messages` and the
//! shadow request topics. For each device message it:
//! 1. parses it (the forest-fire paper's RM / AM format, see [`parse_message`]), applies the
//!    device's rate limit, drops duplicates (seq not above the device's last), and refuses it
//!    when the queue for the chain is full;
//! 2. journals it (fsync) and only then acks it, both at the MQTT level (PUBACK) and on
//!    `devices/{id}/acks` with `{"seq", "status": "accepted"}`;
//! 3. batches registry messages into `SensorRegistry.recordBatch`, sends each signed reading as
//!    `recordSigned` and each action message as `DangerIndex.submit` (one transaction: the
//!    decision is read from the receipt's `DangerIndexUpdated` event, one chain round trip);
//! 4. on the receipt, acks `{"seq", "status": "recorded", "txHash", "blockNumber"}` and publishes
//!    an action's decision `{"diX100", "risk", "txHash", "blockNumber", "device"}` on its
//!    `Publish_Topic` (QoS 1).
//!
//! Refusals are acks `{"seq", "status": "rejected", "reason"}` (never journaled) and failures
//! after acceptance `{"seq", "status": "failed", "reason"}`.

use crate::{
    chain::{quantity, Chain, Fees},
    config::{ChainConfig, ProxyConfig},
    journal::{Body, Journal, Message, Record},
    shadow::{rejection_json, Shadows},
    upstream::UpstreamError,
};
use alloy_primitives::{keccak256, Address, Bytes, LogData, B256, U256};
use alloy_sol_types::{SolCall, SolEvent};
use fogchain_contracts::{risk, DangerIndex, SensorRegistry};
use governor::{DefaultKeyedRateLimiter, RateLimiter};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use serde_json::{json, Value};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, Notify};

/// Where the bridge connects.
#[derive(Debug, Clone)]
pub struct BrokerLink {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Username / password at the broker.
    pub credentials: Option<(String, String)>,
    /// Prefix of the shadow topics at this broker (`$fogchain`; the embedded broker uses an
    /// internal name that its front maps to `$fogchain`).
    pub shadow_prefix: String,
}

/// Most device messages journaled with one fsync.
const GROUP_MAX: usize = 512;

/// The on-chain id of a device: keccak256 of its id.
pub fn device_key(id: &str) -> B256 {
    keccak256(id.as_bytes())
}

/// The bridge.
pub struct Bridge {
    chain: Arc<Chain>,
    cfg: ChainConfig,
    journal: parking_lot::Mutex<Journal>,
    client: AsyncClient,
    devices: HashSet<String>,
    limiter: DefaultKeyedRateLimiter<String>,
    rate_text: String,
    queue_limit: usize,
    shadow_prefix: String,
    /// Device shadows.
    pub shadows: Shadows,
    wake: Notify,
    next_nonce: tokio::sync::Mutex<Option<u64>>,
    /// Index of a node that announced a new head (`eth_subscribe("newHeads")`).
    heads_tx: mpsc::UnboundedSender<usize>,
    heads_rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<usize>>>,
    /// Live newHeads subscriptions.
    heads_live: std::sync::atomic::AtomicUsize,
    /// Base fee of the newest head announced (wei) and when: fees without a round trip.
    head_base_fee: parking_lot::Mutex<Option<(u128, Instant)>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("gateway", &self.chain.address()).finish_non_exhaustive()
    }
}

impl Bridge {
    /// Opens the journal and shadows, connects to the broker and starts the bridge's tasks;
    /// returns once its subscriptions are granted (so that no device message published after
    /// that finds no subscriber), or after 30 s with a warning when the broker is not reachable.
    pub async fn start(config: &ProxyConfig, chain: Arc<Chain>, link: BrokerLink) -> eyre::Result<Arc<Self>> {
        let mqtt = config.mqtt.as_ref().ok_or_else(|| eyre::eyre!("the bridge needs [mqtt]"))?;
        let journal = Journal::open(&config.data_dir)?;
        let shadows = Shadows::open(&config.data_dir.join("shadows"))?;
        let l = &config.limits;
        let mut options = MqttOptions::new("fogchain-bridge", link.host.clone(), link.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(false);
        options.set_manual_acks(true);
        options.set_max_packet_size(mqtt.max_packet_bytes + 1024, mqtt.max_packet_bytes + 1024);
        // Decisions and shadow answers are QoS 1; a wide window keeps them from stalling the
        // request queue (which also carries the PUBACKs of deliveries).
        options.set_inflight(1000);
        if let Some((u, p)) = &link.credentials {
            options.set_credentials(u.clone(), p.clone());
        }
        let (client, mut eventloop) = AsyncClient::new(options, 4096);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let backlog = journal.backlog();
        let (heads_tx, heads_rx) = mpsc::unbounded_channel();
        let this = Arc::new(Self {
            chain,
            cfg: config.chain.clone(),
            journal: parking_lot::Mutex::new(journal),
            client,
            devices: config.devices.iter().map(|d| d.id.clone()).collect(),
            limiter: RateLimiter::keyed(crate::config::quota(l.device_messages_per_second, l.device_burst)),
            rate_text: format!("{} messages/s, burst {}", l.device_messages_per_second, l.device_burst),
            queue_limit: mqtt.queue_limit,
            shadow_prefix: link.shadow_prefix.clone(),
            shadows,
            wake: Notify::new(),
            next_nonce: tokio::sync::Mutex::new(None),
            heads_tx,
            heads_rx: parking_lot::Mutex::new(Some(heads_rx)),
            heads_live: std::sync::atomic::AtomicUsize::new(0),
            head_base_fee: parking_lot::Mutex::new(None),
        });
        if backlog > 0 {
            tracing::info!(backlog, "journal replayed: resuming unfinished messages");
        }
        // Unbounded, but bounded in fact by the broker's in-flight window: messages are PUBACKed
        // only after processing. A bounded channel could deadlock the event loop (blocked on a
        // full channel) against the processor (blocked on the client's request queue).
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = tokio::sync::watch::channel(false);
        tokio::spawn(this.clone().poll_broker(eventloop, tx, subscribed_tx));
        tokio::spawn(this.clone().process(rx));
        tokio::spawn(this.clone().batcher());
        tokio::spawn(this.clone().watcher());
        for (i, url) in this.chain.upstream.ws_urls().into_iter().enumerate() {
            tokio::spawn(this.clone().follow_heads(i, url));
        }
        let ready = tokio::time::timeout(Duration::from_secs(30), subscribed.wait_for(|s| *s)).await;
        if !matches!(ready, Ok(Ok(_))) {
            tracing::warn!(broker = %format!("{}:{}", link.host, link.port), "the bridge is not subscribed yet; continuing");
        }
        Ok(this)
    }

    async fn poll_broker(
        self: Arc<Self>,
        mut eventloop: EventLoop,
        tx: mpsc::UnboundedSender<Publish>,
        subscribed: tokio::sync::watch::Sender<bool>,
    ) {
        let p = &self.shadow_prefix;
        let filters = [
            "devices/+/messages".to_string(),
            format!("{p}/things/+/shadow/get"),
            format!("{p}/things/+/shadow/update"),
            format!("{p}/things/+/shadow/delete"),
        ];
        let mut down_since: Option<Instant> = None;
        let mut granted = 0;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    granted += 1;
                    if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) {
                        tracing::error!(
                            "the broker refused a bridge subscription (check its ACL for the bridge user)"
                        );
                    }
                    if granted == filters.len() {
                        subscribed.send_replace(true);
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("bridge connected to the MQTT broker");
                    down_since = None;
                    granted = 0;
                    for f in &filters {
                        if let Err(e) = self.client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                            tracing::error!(filter = %f, error = %e, "subscribing");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if tx.send(publish).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if down_since.is_none() {
                        tracing::warn!(error = %e, "bridge lost the MQTT broker; reconnecting");
                        down_since = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Handles what the broker delivers, in groups: every device message waiting in the queue
    /// (up to [`GROUP_MAX`]) is checked, then all accepted ones are journaled with one fsync,
    /// then acked (group commit: the fsync cost is shared, the order per device is kept).
    async fn process(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Publish>) {
        while let Some(first) = rx.recv().await {
            let mut group = vec![first];
            while group.len() < GROUP_MAX {
                match rx.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
            let mut candidates = Vec::new();
            for publish in &group {
                let levels: Vec<&str> = publish.topic.split('/').collect();
                match levels.as_slice() {
                    ["devices", device, "messages"] => {
                        if let Some(c) = self.check_message(device, &publish.payload).await {
                            candidates.push(c);
                        }
                    }
                    [prefix, "things", thing, "shadow", op] if *prefix == self.shadow_prefix => {
                        self.on_shadow(thing, op, &publish.payload).await
                    }
                    _ => tracing::debug!(topic = %publish.topic, "ignored"),
                }
            }
            let devices: Vec<String> = candidates.iter().map(|c| c.0.clone()).collect();
            let outcomes = self.accept_all(candidates);
            for (device, outcome) in devices.iter().zip(outcomes) {
                let ack = match outcome {
                    Ok(Accepted::New(seq)) => json!({"seq": seq, "status": "accepted"}),
                    Ok(Accepted::Duplicate(seq)) => json!({"seq": seq, "status": "duplicate"}),
                    Err((seq, reason)) => json!({"seq": seq, "status": "rejected", "reason": reason}),
                };
                self.ack(device, ack).await;
            }
            for publish in &group {
                if let Err(e) = self.client.ack(publish).await {
                    tracing::warn!(error = %e, "acking a message to the broker");
                }
            }
        }
    }

    async fn publish(&self, topic: String, payload: &Value) {
        if let Err(e) = self.client.publish(topic.clone(), QoS::AtLeastOnce, false, payload.to_string()).await
        {
            tracing::warn!(%topic, error = %e, "publishing");
        }
    }

    /// Publishes an ack to the device at QoS 0: acks are advisory (a device re-sends, with the
    /// same Seq, what it saw no ack for), and QoS 0 keeps them out of the bridge's in-flight
    /// window, so a burst of acks never holds back the PUBACKs the broker waits for.
    async fn ack(&self, device: &str, payload: Value) {
        let topic = format!("devices/{device}/acks");
        if let Err(e) = self.client.publish(topic.clone(), QoS::AtMostOnce, false, payload.to_string()).await
        {
            tracing::warn!(%topic, error = %e, "publishing an ack");
        }
    }

    /// Rate limit and parse a device message; refusals are acked here. Returns what to journal.
    async fn check_message(&self, device: &str, payload: &[u8]) -> Option<(String, Option<u64>, Body)> {
        if !self.devices.contains(device) {
            tracing::warn!(device, "message from an unknown device ignored");
            return None;
        }
        let hint =
            serde_json::from_slice::<Value>(payload).ok().and_then(|v| v.get("Seq").and_then(Value::as_u64));
        if self.limiter.check_key(&device.to_string()).is_err() {
            let reason = format!("rate limit exceeded: at most {}", self.rate_text);
            self.ack(device, json!({"seq": hint, "status": "rejected", "reason": reason})).await;
            return None;
        }
        match parse_message(payload, &self.devices, &self.cfg.danger_index) {
            Ok((seq, body)) => Some((device.to_string(), seq, body)),
            Err(reason) => {
                self.ack(device, json!({"seq": hint, "status": "rejected", "reason": reason})).await;
                None
            }
        }
    }

    /// Journals messages with one fsync and wakes the batcher: per message, new (with its seq),
    /// a duplicate, or refused (`(seq, reason)`: queue full, journal failure).
    fn accept_all(
        &self,
        items: Vec<(String, Option<u64>, Body)>,
    ) -> Vec<Result<Accepted, (Option<u64>, String)>> {
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
                let reason = format!(
                    "queue full: {} messages are waiting for the chain (is it reachable?); retry later",
                    backlog + records.len()
                );
                out.push(Err((seq, reason)));
                continue;
            }
            let seq = seq.unwrap_or(*last_seq + 1);
            *last_seq = seq;
            let id = journal.next_id();
            records.push(Record::Accepted(Message { id, device, seq, body }));
            out.push(Ok(Accepted::New(seq)));
        }
        if records.is_empty() {
            return out;
        }
        if let Err(e) = journal.append(records) {
            tracing::error!(error = %e, "journal write failed");
            let reason = format!("journal write failed: {e}");
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
    pub fn record_internal(&self, device: &str, topic: &str, payload: Vec<u8>) -> Result<u64, String> {
        let body = Body::Registry { topic: topic.to_string(), payload: payload.into(), signature: None };
        match self.accept_all(vec![(device.to_string(), None, body)]).pop() {
            Some(Ok(Accepted::New(seq) | Accepted::Duplicate(seq))) => Ok(seq),
            Some(Err((_, reason))) => Err(reason),
            None => Err("nothing journaled".into()),
        }
    }

    async fn on_shadow(&self, thing: &str, op: &str, payload: &[u8]) {
        if !self.devices.contains(thing) {
            tracing::debug!(thing, "shadow request for an unknown thing ignored");
            return;
        }
        let token = serde_json::from_slice::<Value>(payload).ok().and_then(|v| v.get("clientToken").cloned());
        let base = format!("{}/things/{thing}/shadow", self.shadow_prefix);
        match op {
            "get" => match self.shadows.get(thing, token.as_ref()) {
                Ok(doc) => self.publish(format!("{base}/get/accepted"), &doc).await,
                Err(r) => {
                    self.publish(format!("{base}/get/rejected"), &rejection_json(&r, token.as_ref())).await
                }
            },
            "delete" => match self.shadows.delete(thing, token.as_ref()) {
                Ok(v) => self.publish(format!("{base}/delete/accepted"), &v).await,
                Err(r) => {
                    self.publish(format!("{base}/delete/rejected"), &rejection_json(&r, token.as_ref())).await
                }
            },
            "update" => self.update_shadow(thing, payload).await,
            _ => {}
        }
    }

    /// Applies a shadow update and publishes accepted / documents / delta (or rejected).
    pub async fn update_shadow(&self, thing: &str, request: &[u8]) {
        let base = format!("{}/things/{thing}/shadow", self.shadow_prefix);
        match self.shadows.update(thing, request) {
            Ok(out) => {
                self.publish(format!("{base}/update/accepted"), &out.accepted).await;
                self.publish(format!("{base}/update/documents"), &out.documents).await;
                if let Some(delta) = out.delta {
                    self.publish(format!("{base}/update/delta"), &delta).await;
                }
            }
            Err((r, token)) => {
                self.publish(format!("{base}/update/rejected"), &rejection_json(&r, token.as_ref())).await
            }
        }
    }

    /// Submits pending messages when woken. Nagle-style: a message that finds no transaction
    /// of the bridge in flight goes at once; while one is in flight, messages linger up to
    /// `batch-interval-ms` to share the next transaction.
    async fn batcher(self: Arc<Self>) {
        let linger = Duration::from_millis(self.cfg.batch_interval_ms);
        loop {
            tokio::select! {
                _ = self.wake.notified() => {
                    let busy = !self.journal.lock().inflight.is_empty();
                    if busy {
                        tokio::time::sleep(linger).await;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if let Err(e) = self.submit_pending().await {
                tracing::warn!(error = %e, "submitting to the chain; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Groups of pending messages, one per transaction.
    fn pending_groups(&self) -> Vec<Vec<Message>> {
        let journal = self.journal.lock();
        let mut batch = Vec::new();
        let mut groups = Vec::new();
        for id in &journal.pending {
            let Some(m) = journal.messages.get(id) else { continue };
            match &m.body {
                Body::Registry { signature: None, .. } => {
                    batch.push(m.clone());
                    if batch.len() == self.cfg.batch_max {
                        groups.push(std::mem::take(&mut batch));
                    }
                }
                _ => groups.push(vec![m.clone()]),
            }
        }
        if !batch.is_empty() {
            groups.push(batch);
        }
        groups
    }

    async fn submit_pending(&self) -> Result<(), UpstreamError> {
        // Front to back: nonces follow arrival order (a device's signed readings must reach the
        // chain in seq order).
        let mut work: std::collections::VecDeque<Vec<Message>> = self.pending_groups().into();
        tracing::debug!(groups = ?work.iter().map(|g| g.iter().map(|m| m.id).collect::<Vec<_>>()).collect::<Vec<_>>(), "batching");
        if work.is_empty() {
            return Ok(());
        }
        // Fees from the newest head's base fee while the subscriptions are live (a head at most
        // 10 s old), else asked of a node.
        let recent = *self.head_base_fee.lock();
        let fees = match recent.filter(|(_, at)| at.elapsed() < Duration::from_secs(10)) {
            Some((base_fee, _)) => self.chain.fees_over(base_fee).await?,
            None => self.chain.fees().await?,
        };
        while let Some(group) = work.pop_front() {
            let (to, input) = self.encode(&group);
            let gas = match self.chain.estimate(to, &input).await {
                Ok(gas) => gas,
                Err(UpstreamError::Rpc { message, .. }) if group.len() > 1 => {
                    tracing::warn!(%message, "a batch would revert; sending its messages one by one");
                    for m in group.into_iter().rev() {
                        work.push_front(vec![m]);
                    }
                    continue;
                }
                Err(UpstreamError::Rpc { message, .. }) => {
                    self.fail(&group, format!("the chain refused it: {message}")).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.send_new(group, to, input, gas, fees).await?;
        }
        Ok(())
    }

    fn encode(&self, group: &[Message]) -> (Address, Bytes) {
        let registry = self.cfg.sensor_registry;
        match &group[0].body {
            Body::Action { contract, p, h, cs, .. } => {
                let call = DangerIndex::submitCall {
                    region: device_key(&group[0].device),
                    p: U256::from(*p),
                    h: h.map(U256::from),
                    cs: U256::from(*cs),
                };
                (*contract, call.abi_encode().into())
            }
            Body::Registry { topic, payload, signature: Some(sig) } => {
                let call = SensorRegistry::recordSignedCall {
                    deviceId: device_key(&group[0].device),
                    seq: group[0].seq,
                    topic: topic.clone(),
                    payload: payload.clone(),
                    signature: sig.clone(),
                };
                (registry, call.abi_encode().into())
            }
            Body::Registry { .. } => {
                let mut ids = Vec::new();
                let mut topics = Vec::new();
                let mut payloads = Vec::new();
                for m in group {
                    if let Body::Registry { topic, payload, .. } = &m.body {
                        ids.push(device_key(&m.device));
                        topics.push(topic.clone());
                        payloads.push(payload.clone());
                    }
                }
                let call = SensorRegistry::recordBatchCall { deviceIds: ids, topics, payloads };
                (registry, call.abi_encode().into())
            }
        }
    }

    async fn take_nonce(&self) -> Result<u64, UpstreamError> {
        let mut next = self.next_nonce.lock().await;
        let nonce = match *next {
            Some(n) => n,
            None => {
                let chain = self.chain.pending_nonce().await?;
                let journal = self.journal.lock().max_inflight_nonce().map(|n| n + 1).unwrap_or(0);
                chain.max(journal)
            }
        };
        *next = Some(nonce + 1);
        Ok(nonce)
    }

    async fn send_new(
        &self,
        group: Vec<Message>,
        to: Address,
        input: Bytes,
        gas: u64,
        fees: Fees,
    ) -> Result<(), UpstreamError> {
        let nonce = self.take_nonce().await?;
        let (tx, raw) = match self.chain.sign(nonce, to, input, gas, fees) {
            Ok(t) => t,
            Err(e) => {
                self.fail(&group, format!("signing failed: {e}")).await;
                return Ok(());
            }
        };
        let ids: Vec<u64> = group.iter().map(|m| m.id).collect();
        tracing::debug!(?ids, nonce, %tx, "sending");
        let journaled = self.journal.lock().append(vec![Record::Sent { tx, nonce, raw: raw.clone(), ids }]);
        if let Err(e) = journaled {
            tracing::error!(error = %e, "journal write failed; not sending");
            *self.next_nonce.lock().await = None;
            return Ok(());
        }
        match self.chain.upstream.call_all("eth_sendRawTransaction", json!([raw])).await {
            Ok(_) => Ok(()),
            Err(UpstreamError::Rpc { message, .. }) if is_benign_send_error(&message) => Ok(()),
            Err(UpstreamError::Rpc { message, .. }) if message.contains("nonce too low") => {
                // someone else used the account: the watcher abandons it if its nonce is taken
                *self.next_nonce.lock().await = None;
                Ok(())
            }
            Err(UpstreamError::Rpc { message, .. }) => {
                // refused for good: its messages fail, and the nonce is filled so later ones go on
                let records = vec![
                    Record::Abandoned { tx },
                    Record::Failed { ids: group.iter().map(|m| m.id).collect(), reason: message.clone() },
                ];
                if let Err(e) = self.journal.lock().append(records) {
                    tracing::error!(error = %e, "journal write failed");
                }
                for m in &group {
                    self.ack(&m.device, json!({"seq": m.seq, "status": "failed", "reason": message})).await;
                }
                self.fill_nonce(nonce, fees).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn fill_nonce(&self, nonce: u64, fees: Fees) {
        let Ok((tx, raw)) = self.chain.sign_filler(nonce, fees) else { return };
        let journaled =
            self.journal.lock().append(vec![Record::Sent { tx, nonce, raw: raw.clone(), ids: vec![] }]);
        if journaled.is_ok() {
            if let Err(e) = self.chain.upstream.call_all("eth_sendRawTransaction", json!([raw])).await {
                tracing::warn!(nonce, error = %e, "nonce filler refused");
                *self.next_nonce.lock().await = None;
            }
        }
    }

    async fn fail(&self, group: &[Message], reason: String) {
        let ids = group.iter().map(|m| m.id).collect();
        if let Err(e) = self.journal.lock().append(vec![Record::Failed { ids, reason: reason.clone() }]) {
            tracing::error!(error = %e, "journal write failed");
        }
        for m in group {
            self.ack(&m.device, json!({"seq": m.seq, "status": "failed", "reason": reason})).await;
        }
    }

    /// Looks for the receipts of sent transactions: at once at a node that announced a new
    /// head (so a receipt is seen as soon as its block is applied there), and every
    /// `receipt-poll-ms` at any node while no newHeads subscription is live (every second
    /// otherwise, for resends).
    async fn watcher(self: Arc<Self>) {
        let period = Duration::from_millis(self.cfg.receipt_poll_ms.max(10));
        let Some(mut heads) = self.heads_rx.lock().take() else { return };
        loop {
            let live = self.heads_live.load(std::sync::atomic::Ordering::Relaxed) > 0;
            let wait = if live { Duration::from_secs(1) } else { period };
            let mut nodes: Vec<Option<usize>> = tokio::select! {
                node = heads.recv() => vec![node],
                _ = tokio::time::sleep(wait) => vec![None],
            };
            while let Ok(node) = heads.try_recv() {
                if !nodes.contains(&Some(node)) {
                    nodes.push(Some(node));
                }
            }
            for node in nodes {
                if let Err(e) = self.poll_receipts(node).await {
                    tracing::debug!(error = %e, "polling receipts");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Follows node `node`'s `newHeads` over WebSocket, reconnecting every second when it fails.
    async fn follow_heads(self: Arc<Self>, node: usize, url: String) {
        use jsonrpsee::core::client::SubscriptionClientT;
        loop {
            match jsonrpsee::ws_client::WsClientBuilder::default().build(&url).await {
                Ok(client) => {
                    let sub = client
                        .subscribe::<Value, _>(
                            "eth_subscribe",
                            jsonrpsee::rpc_params!["newHeads"],
                            "eth_unsubscribe",
                        )
                        .await;
                    match sub {
                        Ok(mut sub) => {
                            self.heads_live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::debug!(%url, "following newHeads");
                            while let Some(Ok(head)) = sub.next().await {
                                if let Some(fee) =
                                    head.get("baseFeePerGas").and_then(crate::chain::quantity_u128)
                                {
                                    *self.head_base_fee.lock() = Some((fee, Instant::now()));
                                }
                                if self.heads_tx.send(node).is_err() {
                                    break;
                                }
                            }
                            self.heads_live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => tracing::debug!(%url, error = %e, "eth_subscribe newHeads"),
                    }
                }
                Err(e) => tracing::debug!(%url, error = %e, "newHeads WebSocket"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn poll_receipts(&self, node: Option<usize>) -> Result<(), UpstreamError> {
        let inflight: Vec<(B256, u64, Bytes, Instant)> = {
            let j = self.journal.lock();
            let mut v: Vec<_> =
                j.inflight.iter().map(|(h, f)| (*h, f.nonce, f.raw.clone(), f.sent_at)).collect();
            v.sort_by_key(|x| x.1);
            v
        };
        for chunk in inflight.chunks(200) {
            let calls: Vec<(&str, Value)> =
                chunk.iter().map(|(h, ..)| ("eth_getTransactionReceipt", json!([h]))).collect();
            let answers = self.chain.upstream.batch_at(node, &calls).await?;
            let mut latest_nonce: Option<u64> = None;
            for ((hash, nonce, raw, sent_at), answer) in chunk.iter().zip(answers) {
                match answer {
                    Ok(receipt) if !receipt.is_null() => self.finish(*hash, &receipt).await,
                    Ok(_) if sent_at.elapsed() > Duration::from_secs(3) => {
                        self.resend(*hash, *nonce, raw, &mut latest_nonce).await?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    async fn resend(
        &self,
        hash: B256,
        nonce: u64,
        raw: &Bytes,
        latest: &mut Option<u64>,
    ) -> Result<(), UpstreamError> {
        if let Some(f) = self.journal.lock().inflight.get_mut(&hash) {
            f.sent_at = Instant::now();
        }
        match self.chain.upstream.call_all("eth_sendRawTransaction", json!([raw])).await {
            Ok(_) => Ok(()),
            Err(UpstreamError::Rpc { message, .. }) if is_benign_send_error(&message) => Ok(()),
            Err(UpstreamError::Rpc { message, .. }) if message.contains("nonce too low") => {
                let mined = match *latest {
                    Some(n) => n,
                    None => *latest.insert(self.chain.nonce_at("latest").await?),
                };
                // its nonce is taken: either by this transaction (a receipt appears) or by another
                let receipt = self.chain.upstream.call("eth_getTransactionReceipt", json!([hash])).await?;
                if !receipt.is_null() {
                    self.finish(hash, &receipt).await;
                } else if mined > nonce {
                    tracing::warn!(%hash, nonce, "nonce taken by another transaction; its messages are resubmitted");
                    let _ = self.journal.lock().append(vec![Record::Abandoned { tx: hash }]);
                    *self.next_nonce.lock().await = None;
                    self.wake.notify_one();
                }
                Ok(())
            }
            Err(UpstreamError::Rpc { message, .. }) => {
                tracing::warn!(%hash, %message, "resend refused");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Handles a receipt: acks, decisions, then the `done` record.
    async fn finish(&self, hash: B256, receipt: &Value) {
        let ok = receipt.get("status").and_then(quantity) == Some(1);
        let block = receipt.get("blockNumber").and_then(quantity).unwrap_or(0);
        let messages: Vec<Message> = {
            let j = self.journal.lock();
            let Some(f) = j.inflight.get(&hash) else { return };
            f.ids.iter().filter_map(|id| j.messages.get(id).cloned()).collect()
        };
        let logs = receipt_logs(receipt);
        for m in &messages {
            let mut ack = json!({"seq": m.seq, "txHash": hash, "blockNumber": block});
            if !ok {
                ack["status"] = json!("failed");
                ack["reason"] = json!("transaction reverted");
                self.ack(&m.device, ack).await;
                continue;
            }
            ack["status"] = json!("recorded");
            if let Body::Action { contract, publish_topic, .. } = &m.body {
                let event = logs
                    .iter()
                    .filter(|l| l.0 == *contract)
                    .find_map(|l| DangerIndex::DangerIndexUpdated::decode_log_data(&l.1).ok());
                if let Some(e) = event {
                    let di: u64 = e.diX100.try_into().unwrap_or(u64::MAX);
                    let decision = json!({
                        "diX100": di,
                        "risk": risk::name(e.risk),
                        "txHash": hash,
                        "blockNumber": block,
                        "device": m.device,
                    });
                    self.publish(publish_topic.clone(), &decision).await;
                    ack["diX100"] = json!(di);
                    ack["risk"] = json!(risk::name(e.risk));
                }
            }
            self.ack(&m.device, ack).await;
        }
        if let Err(e) = self.journal.lock().append(vec![Record::Done { tx: hash, block, ok }]) {
            tracing::error!(error = %e, "journal write failed");
        }
    }
}

enum Accepted {
    New(u64),
    Duplicate(u64),
}

fn is_benign_send_error(message: &str) -> bool {
    message.contains("already known") || message.contains("known transaction")
}

fn receipt_logs(receipt: &Value) -> Vec<(Address, LogData)> {
    let Some(logs) = receipt.get("logs").and_then(Value::as_array) else { return Vec::new() };
    logs.iter()
        .filter_map(|l| {
            let address: Address = l.get("address")?.as_str()?.parse().ok()?;
            let topics: Vec<B256> =
                l.get("topics")?.as_array()?.iter().filter_map(|t| t.as_str()?.parse().ok()).collect();
            let data = hex::decode(l.get("data")?.as_str()?.trim_start_matches("0x")).ok()?;
            Some((address, LogData::new_unchecked(topics, data.into())))
        })
        .collect()
}

/// Parses a device message. Formats (the forest-fire paper's, plus optional `Seq` and
/// `Signature`):
/// - registry message (RM): `{"Payload": <any JSON>, "Topic": "<string>", "MessageContent":
///   <anything without "Address">, "Seq"?: <u64>, "Signature"?: "0x<65 bytes>"}`. The recorded
///   payload is the `Payload` string's UTF-8 bytes, or the compact JSON of a non-string
///   `Payload`. A signed reading (SensorRegistry.recordSigned) needs `Seq` and a string `Payload`.
/// - action message (AM): `{"MessageContent": {"Address": "0x<DangerIndex>", "Values": {"CS":
///   <int>, "P": <int>, "H": [<int> x 5]}, "Publish_Topic": "devices/<id>/commands"}, ...}`,
///   values in hundredths as the contract takes them.
///
/// Returns the optional seq and the body, or the reason for refusing it.
pub fn parse_message(
    payload: &[u8],
    devices: &HashSet<String>,
    danger_index: &[Address],
) -> Result<(Option<u64>, Body), String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("message is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("message must be a JSON object")?;
    let seq = match obj.get("Seq") {
        None | Some(Value::Null) => None,
        Some(s) => Some(s.as_u64().filter(|s| *s > 0).ok_or("Seq must be a positive integer")?),
    };
    let content = obj.get("MessageContent");
    if let Some((c, address)) = content.and_then(|c| Some((c, c.get("Address")?))) {
        let contract: Address = address
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or("MessageContent.Address must be a 0x-prefixed contract address")?;
        if !danger_index.is_empty() && !danger_index.contains(&contract) {
            return Err(format!("MessageContent.Address {contract} is not a DangerIndex this proxy serves"));
        }
        let values = c.get("Values").and_then(Value::as_object).ok_or("MessageContent.Values is required")?;
        let int = |name: &str| -> Result<u64, String> {
            let v = values.get(name).ok_or(format!("Values.{name} is required"))?;
            v.as_u64()
                .ok_or(format!("Values.{name} must be a non-negative integer in hundredths (12.34 -> 1234)"))
        };
        let (cs, p) = (int("CS")?, int("P")?);
        let h = values
            .get("H")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 5)
            .ok_or("Values.H must be 5 humidities (today and the 4 days before)")?;
        let mut hs = [0u64; 5];
        for (i, x) in h.iter().enumerate() {
            hs[i] = x.as_u64().ok_or("Values.H must hold non-negative integers in hundredths")?;
        }
        let topic = c
            .get("Publish_Topic")
            .and_then(Value::as_str)
            .ok_or("MessageContent.Publish_Topic is required")?;
        match topic.split('/').collect::<Vec<_>>().as_slice() {
            ["devices", target, "commands"] if devices.contains(*target) => {}
            _ => {
                return Err("Publish_Topic must be devices/<deviceId>/commands of a registered device".into())
            }
        }
        return Ok((seq, Body::Action { contract, p, h: hs, cs, publish_topic: topic.to_string() }));
    }
    let topic = obj.get("Topic").and_then(Value::as_str).ok_or("Topic (a string) is required")?;
    let payload = obj.get("Payload").ok_or("Payload is required")?;
    let signature = match obj.get("Signature") {
        None | Some(Value::Null) => None,
        Some(s) => {
            let bytes = s
                .as_str()
                .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
                .filter(|b| b.len() == 65)
                .ok_or("Signature must be 0x-prefixed 65 bytes (r, s, v)")?;
            if seq.is_none() {
                return Err("a signed reading needs its Seq".into());
            }
            if !payload.is_string() {
                return Err("a signed reading needs a string Payload (the signed bytes)".into());
            }
            Some(Bytes::from(bytes))
        }
    };
    let bytes = match payload {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    };
    Ok((seq, Body::Registry { topic: topic.to_string(), payload: bytes.into(), signature }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices() -> HashSet<String> {
        ["s1", "act-1"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_papers_rm_and_am() {
        let (seq, body) = parse_message(
            br#"{"Payload": {"CS": 1000}, "Topic": "sensors/cs", "MessageContent": "reading"}"#,
            &devices(),
            &[],
        )
        .unwrap();
        assert_eq!(seq, None);
        assert_eq!(
            body,
            Body::Registry {
                topic: "sensors/cs".into(),
                payload: Bytes::from_static(br#"{"CS":1000}"#),
                signature: None
            }
        );
        let am = br#"{"Payload": "", "Topic": "fire", "MessageContent": {"Address": "0x0000000000000000000000000000000000000007",
            "Values": {"CS": 10000, "P": 1000, "H": [5000, 5000, 5000, 5000, 5000]}, "Publish_Topic": "devices/act-1/commands"}, "Seq": 4}"#;
        let (seq, body) = parse_message(am, &devices(), &[]).unwrap();
        assert_eq!(seq, Some(4));
        assert!(matches!(body, Body::Action { p: 1000, cs: 10000, h: [5000, 5000, 5000, 5000, 5000], .. }));
    }

    #[test]
    fn refuses_bad_messages_with_a_reason() {
        let d = devices();
        let bad = |m: &str| parse_message(m.as_bytes(), &d, &[]).unwrap_err();
        assert!(bad("nope").starts_with("message is not JSON"));
        assert_eq!(bad(r#"{"Payload": 1}"#), "Topic (a string) is required");
        assert!(bad(r#"{"MessageContent": {"Address": "0x0000000000000000000000000000000000000007", "Values": {"CS": 1.5, "P": 1, "H": [1,1,1,1,1]}, "Publish_Topic": "devices/act-1/commands"}}"#).contains("hundredths"));
        assert!(bad(r#"{"MessageContent": {"Address": "0x0000000000000000000000000000000000000007", "Values": {"CS": 1, "P": 1, "H": [1,1,1,1,1]}, "Publish_Topic": "devices/other/commands"}}"#).starts_with("Publish_Topic"));
        assert_eq!(
            bad(r#"{"Payload": "x", "Topic": "t", "Signature": "0x00"}"#),
            "Signature must be 0x-prefixed 65 bytes (r, s, v)"
        );
        let allowed = [Address::repeat_byte(1)];
        let am = r#"{"MessageContent": {"Address": "0x0000000000000000000000000000000000000007", "Values": {"CS": 1, "P": 1, "H": [1,1,1,1,1]}, "Publish_Topic": "devices/act-1/commands"}}"#;
        assert!(parse_message(am.as_bytes(), &d, &allowed).unwrap_err().contains("not a DangerIndex"));
    }
}
