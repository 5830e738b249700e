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
//!
//! | file | step |
//! |---|---|
//! | `mod.rs` | connecting to the broker, routing its deliveries, publishing |
//! | `message.rs` | the message formats ([`parse_message`]) |
//! | `intake.rs` | checks, journal and acks of accepted messages (1, 2) |
//! | `submitter.rs` | batching into transactions, nonces and fees (3) |
//! | `receipts.rs` | receipts (newHeads or polling), re-sends, decisions and acks (4) |
//! | `shadow_topics.rs` | the device-shadow request topics (AWS IoT's) |

mod intake;
mod message;
mod receipts;
mod shadow_topics;
mod submitter;

pub use intake::{IntakeError, Offer, Outcome, RejectKind};
pub use message::{parse_message, MessageError};

use crate::{
    chain::Chain,
    config::{ChainConfig, ProxyConfig},
    journal::Journal,
    shadow::Shadows,
};
use alloy_primitives::{keccak256, B256};
use governor::{DefaultKeyedRateLimiter, RateLimiter};
use intake::Accepted;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use serde_json::Value;
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
    /// The bridge's client id (its persistent session).
    pub client_id: String,
    /// Shared-subscription group for device messages (`$share/{group}/...`), if any.
    pub shared_group: Option<String>,
    /// Whether to subscribe to shadow requests.
    pub shadows: bool,
}

impl BrokerLink {
    /// What the bridge subscribes to: device messages (through the shared-subscription group,
    /// if any) and, when it serves shadows, the shadow requests.
    fn filters(&self) -> Vec<String> {
        let messages = match &self.shared_group {
            Some(group) => format!("$share/{group}/devices/+/messages"),
            None => "devices/+/messages".to_string(),
        };
        let p = &self.shadow_prefix;
        let mut filters = vec![messages];
        if self.shadows {
            filters.extend(["get", "update", "delete"].map(|op| format!("{p}/things/+/shadow/{op}")));
        }
        filters
    }
}

/// A device message to handle: delivered by the broker (PUBACKed to it when handled), or
/// offered by the embedded broker's front.
enum Delivery {
    Broker(Publish),
    Front(Offer),
}

/// Offers from the front waiting for the bridge (each session also bounds its own).
const OFFER_QUEUE: usize = 4096;

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
    /// Messages without `Seq` seen within `[mqtt] dedupe-window-secs` (lock after `journal`).
    recent: parking_lot::Mutex<intake::RecentContent>,
    client: AsyncClient,
    /// Device id -> the devices it may command (its own included).
    devices: HashMap<String, HashSet<String>>,
    limiter: DefaultKeyedRateLimiter<String>,
    rate_text: String,
    queue_limit: usize,
    shadow_prefix: String,
    /// Device shadows.
    pub shadows: Shadows,
    /// Shadow requests per thing (`[limits] shadow-requests-per-second`).
    shadow_limiter: DefaultKeyedRateLimiter<String>,
    wake: Notify,
    next_nonce: tokio::sync::Mutex<Option<u64>>,
    /// Index of a node that announced a new head (`eth_subscribe("newHeads")`).
    heads_tx: mpsc::UnboundedSender<usize>,
    heads_rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<usize>>>,
    /// Where the embedded broker's front offers device messages ([`Self::offers`]).
    offers: mpsc::Sender<Offer>,
    /// Live newHeads subscriptions.
    heads_live: std::sync::atomic::AtomicUsize,
    /// Base fee of the newest head announced (wei) and when: fees without a round trip.
    head_base_fee: parking_lot::Mutex<Option<(u128, Instant)>>,
    /// Gas limit of the newest head announced (0 until one is seen).
    head_gas_limit: std::sync::atomic::AtomicU64,
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
    ///
    /// Its tasks (broker event loop, processor, batcher, receipt watcher, one `newHeads`
    /// follower per node) are spawned on `tasks` and end with the proxy's shutdown.
    pub async fn start(
        config: &ProxyConfig,
        chain: Arc<Chain>,
        link: BrokerLink,
        tasks: &crate::tasks::Tasks,
    ) -> crate::Result<Arc<Self>> {
        let mqtt = config
            .mqtt
            .as_ref()
            .ok_or_else(|| crate::ProxyError::Config("the bridge needs [mqtt]".into()))?;
        let journal = Journal::open(&config.data_dir)?;
        let shadows = Shadows::open(&config.data_dir.join("shadows"), config.limits.shadow_max_bytes)?;
        let l = &config.limits;
        let mut options = MqttOptions::new(link.client_id.clone(), link.host.clone(), link.port);
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
        let (offers_tx, offers_rx) = mpsc::channel(OFFER_QUEUE);
        let this = Arc::new(Self {
            chain,
            cfg: config.chain.clone(),
            journal: parking_lot::Mutex::new(journal),
            recent: parking_lot::Mutex::new(intake::RecentContent::new(Duration::from_secs(
                mqtt.dedupe_window_secs,
            ))),
            client,
            devices: config
                .devices
                .iter()
                .map(|d| (d.id.clone(), d.commands.iter().cloned().chain([d.id.clone()]).collect()))
                .collect(),
            limiter: RateLimiter::keyed(crate::config::quota(l.device_messages_per_second, l.device_burst)),
            rate_text: format!("{} messages/s, burst {}", l.device_messages_per_second, l.device_burst),
            queue_limit: mqtt.queue_limit,
            shadow_prefix: link.shadow_prefix.clone(),
            shadows,
            shadow_limiter: RateLimiter::keyed(crate::config::quota(
                l.shadow_requests_per_second,
                l.shadow_requests_per_second,
            )),
            wake: Notify::new(),
            next_nonce: tokio::sync::Mutex::new(None),
            heads_tx,
            heads_rx: parking_lot::Mutex::new(Some(heads_rx)),
            offers: offers_tx,
            heads_live: std::sync::atomic::AtomicUsize::new(0),
            head_base_fee: parking_lot::Mutex::new(None),
            head_gas_limit: std::sync::atomic::AtomicU64::new(0),
        });
        if backlog > 0 {
            tracing::info!(backlog, "journal replayed: resuming unfinished messages");
        }
        // Unbounded, but bounded in fact by the broker's in-flight window: messages are PUBACKed
        // only after processing. A bounded channel could deadlock the event loop (blocked on a
        // full channel) against the processor (blocked on the client's request queue).
        let (tx, rx) = mpsc::unbounded_channel();

        let (subscribed_tx, mut subscribed) = tokio::sync::watch::channel(false);
        tasks.spawn(this.clone().poll_broker(eventloop, link.filters(), tx, subscribed_tx));
        tasks.spawn(this.clone().process(rx, offers_rx));
        tasks.spawn(this.clone().batcher());
        tasks.spawn(this.clone().watcher());
        for (i, url) in this.chain.upstream.ws_urls().into_iter().enumerate() {
            tasks.spawn(this.clone().follow_heads(i, url));
        }
        let ready = tokio::time::timeout(Duration::from_secs(30), subscribed.wait_for(|s| *s)).await;
        if !matches!(ready, Ok(Ok(_))) {
            tracing::warn!(broker = %format!("{}:{}", link.host, link.port), "the bridge is not subscribed yet; continuing");
        }
        Ok(this)
    }

    pub(super) async fn poll_broker(
        self: Arc<Self>,
        mut eventloop: EventLoop,
        filters: Vec<String>,
        tx: mpsc::UnboundedSender<Publish>,
        subscribed: tokio::sync::watch::Sender<bool>,
    ) {
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

    /// Handles device messages in groups: every one waiting (from the broker, or offered by the
    /// front, up to [`GROUP_MAX`]) is checked, then all accepted ones are journaled with one
    /// fsync, then acknowledged (group commit: the fsync cost is shared, the order per device
    /// is kept): the broker's delivery with a PUBACK, an offer through its reply, and every
    /// message on `devices/{id}/acks`.
    pub(super) async fn process(
        self: Arc<Self>,
        mut broker: mpsc::UnboundedReceiver<Publish>,
        mut front: mpsc::Receiver<Offer>,
    ) {
        loop {
            let first = tokio::select! {
                Some(p) = broker.recv() => Delivery::Broker(p),
                Some(o) = front.recv() => Delivery::Front(o),
                else => return,
            };
            let mut group = vec![first];
            while group.len() < GROUP_MAX {
                match broker.try_recv() {
                    Ok(p) => group.push(Delivery::Broker(p)),
                    Err(_) => match front.try_recv() {
                        Ok(o) => group.push(Delivery::Front(o)),
                        Err(_) => break,
                    },
                }
            }
            // (index in group, device, outcome so far)
            let mut outcomes: Vec<(usize, String, Option<Outcome>)> = Vec::new();
            let mut candidates = Vec::new();
            for (i, delivery) in group.iter().enumerate() {
                let (topic, device, payload): (&str, Option<&str>, &[u8]) = match delivery {
                    Delivery::Broker(p) => (&p.topic, None, &p.payload),
                    Delivery::Front(o) => ("", Some(&o.device), &o.payload),
                };
                let levels: Vec<&str> = topic.split('/').collect();
                let device: &str = match (device, levels.as_slice()) {
                    (Some(d), _) => d,
                    (None, ["devices", d, "messages"]) => d,
                    (None, [prefix, "things", thing, "shadow", op]) if *prefix == self.shadow_prefix => {
                        self.on_shadow(thing, op, payload).await;
                        continue;
                    }
                    _ => {
                        tracing::debug!(%topic, "ignored");
                        continue;
                    }
                };
                match self.check_message(device, payload) {
                    Ok(c) => {
                        candidates.push(c);
                        outcomes.push((i, device.to_string(), None));
                    }
                    Err(refused) => outcomes.push((i, device.to_string(), Some(refused))),
                }
            }
            let mut journaled = self.accept_all(candidates).into_iter();
            let mut replies: HashMap<usize, Outcome> = HashMap::new();
            for (i, device, outcome) in outcomes {
                let outcome = outcome.unwrap_or_else(|| match journaled.next() {
                    Some(Ok(Accepted::New(seq))) => Outcome::Accepted(seq),
                    Some(Ok(Accepted::Duplicate(seq))) => Outcome::Duplicate(seq),
                    Some(Err((seq, e))) => {
                        let kind = match e {
                            IntakeError::QueueFull { .. } => RejectKind::Quota,
                            IntakeError::Journal(_) => RejectKind::Internal,
                        };
                        Outcome::Rejected { seq, reason: e.to_string(), kind }
                    }
                    // accept_all answers every candidate
                    None => Outcome::Rejected {
                        seq: None,
                        reason: "not journaled".into(),
                        kind: RejectKind::Internal,
                    },
                });
                self.ack(&device, outcome.ack_json()).await;
                if let Delivery::Front(_) = &group[i] {
                    replies.insert(i, outcome);
                }
            }
            for (i, delivery) in group.into_iter().enumerate() {
                match delivery {
                    Delivery::Broker(publish) => {
                        if let Err(e) = self.client.ack(&publish).await {
                            tracing::warn!(error = %e, "acking a message to the broker");
                        }
                    }
                    Delivery::Front(offer) => {
                        // every offer names its device, so it has an outcome
                        if let Some(outcome) = replies.remove(&i) {
                            let _ = offer.reply.send(outcome);
                        }
                    }
                }
            }
        }
    }

    /// Where the embedded broker's front hands device messages over (bounded: a front that
    /// outruns the journal waits).
    pub fn offers(&self) -> mpsc::Sender<Offer> {
        self.offers.clone()
    }

    /// (messages accepted and not finished, how long the oldest has waited).
    pub fn backlog(&self) -> (usize, Option<std::time::Duration>) {
        let journal = self.journal.lock();
        (journal.backlog(), journal.oldest_age())
    }

    pub(super) async fn publish(&self, topic: String, payload: &Value) {
        if let Err(e) = self.client.publish(topic.clone(), QoS::AtLeastOnce, false, payload.to_string()).await
        {
            tracing::warn!(%topic, error = %e, "publishing");
        }
    }

    /// Publishes an ack to the device at QoS 0: acks are advisory (a device re-sends, with the
    /// same Seq, what it saw no ack for), and QoS 0 keeps them out of the bridge's in-flight
    /// window, so a burst of acks never holds back the PUBACKs the broker waits for.
    pub(super) async fn ack(&self, device: &str, payload: Value) {
        let status = match payload.get("status").and_then(Value::as_str) {
            Some("accepted") => "accepted",
            Some("duplicate") => "duplicate",
            Some("rejected") => "rejected",
            Some("recorded") => "recorded",
            Some("failed") => "failed",
            _ => "other",
        };
        metrics::counter!("fogchain_proxy_messages_total", "status" => status).increment(1);
        let topic = format!("devices/{device}/acks");
        if let Err(e) = self.client.publish(topic.clone(), QoS::AtMostOnce, false, payload.to_string()).await
        {
            tracing::warn!(%topic, error = %e, "publishing an ack");
        }
    }
}
