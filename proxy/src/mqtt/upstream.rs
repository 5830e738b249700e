//! Device -> broker for one session at the front: the ACL on PUBLISH, SUBSCRIBE and
//! UNSUBSCRIBE, device messages handed to the bridge, QoS 2 state, and the acks that wait for
//! the journal (see [`super::front`] for the whole session).

use super::{
    codec::{DeviceCodec, Incoming, Outgoing, Refusal, ServerLimits, Version},
    front::{read_device, to_internal, write_v4, Exactly, Front, PendingAck, SessionError, Shared},
};
use crate::bridge::{Offer, Outcome, RejectKind};
use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{self, Packet};
use rumqttc::QoS;
use std::sync::Arc;
use tokio::{
    io::AsyncRead,
    sync::{mpsc, oneshot},
};

/// Device -> broker (or bridge) for one session.
pub(super) struct Upstream<'a> {
    pub(super) front: &'a Front,
    pub(super) version: Version,
    pub(super) device: &'a str,
    pub(super) own: &'a str,
    pub(super) shadow: &'a str,
    pub(super) to_client: &'a mpsc::Sender<Outgoing>,
    pub(super) acks: mpsc::Sender<PendingAck>,
    pub(super) shared: Arc<Shared>,
}

impl Upstream<'_> {
    pub(super) async fn run<R: AsyncRead + Unpin>(
        &self,
        client_rd: &mut R,
        buf: &mut BytesMut,
        broker_wr: &mut tokio::net::tcp::OwnedWriteHalf,
    ) -> Result<(), SessionError> {
        let mut codec = DeviceCodec::new(self.version(), self.front.max_packet, ServerLimits::default());
        let messages = format!("{}messages", self.own);
        loop {
            let Some(Incoming { packet, response, with_will }) =
                read_device(client_rd, buf, &mut codec).await?
            else {
                return Ok(());
            };
            let packet = match packet {
                Packet::Publish(p) if !self.mine(&p.topic) => {
                    if self.version() != Version::V5 {
                        return Err(SessionError::ForeignPublish {
                            device: self.device.into(),
                            topic: p.topic,
                        });
                    }
                    tracing::info!(device = self.device, topic = %p.topic, "publish refused: outside the device's topics");
                    if p.qos != QoS::AtMostOnce {
                        let why = format!("a device may publish only under {} and {}", self.own, self.shadow);
                        let refusal = Some((Refusal::NotAuthorized, why));
                        let _ =
                            self.to_client.send(Outgoing::Ack { pkid: p.pkid, qos: p.qos, refusal }).await;
                    }
                    continue;
                }
                Packet::Publish(p) if p.topic == messages => {
                    self.offer(p, response).await?;
                    continue;
                }
                Packet::Publish(mut p) => {
                    if p.qos == QoS::ExactlyOnce {
                        if self.repeated_exactly(p.pkid).await {
                            continue;
                        }
                        p.qos = QoS::AtLeastOnce;
                    }
                    Packet::Publish(v4::Publish { topic: to_internal(&p.topic), ..p })
                }
                Packet::PubRel(rel) => {
                    self.shared.exactly.lock().remove(&rel.pkid);
                    let comp = Outgoing::Packet(Packet::PubComp(v4::PubComp { pkid: rel.pkid }));
                    let _ = self.to_client.send(comp).await;
                    continue;
                }
                Packet::Subscribe(s) => match self.subscribe(s).await {
                    Some(s) => Packet::Subscribe(s),
                    None => continue,
                },
                Packet::Unsubscribe(mut u) => {
                    let filters = u.topics.len();
                    u.topics.retain(|t| self.mine(t));
                    if u.topics.is_empty() {
                        let _ = self.to_client.send(Outgoing::UnsubAck { pkid: u.pkid, filters }).await;
                        continue;
                    }
                    self.shared.unsubscribes.lock().insert(u.pkid, filters);
                    u.topics = u.topics.iter().map(|t| to_internal(t)).collect();
                    Packet::Unsubscribe(u)
                }
                Packet::Disconnect if with_will => return Err(SessionError::DisconnectWithWill),
                Packet::Connect(_) => return Err(SessionError::SecondConnect),
                other => other,
            };
            write_v4(broker_wr, &packet, self.front.max_packet).await?;
        }
    }

    fn version(&self) -> Version {
        self.version
    }

    fn mine(&self, topic: &str) -> bool {
        topic.starts_with(self.own) || topic.starts_with(self.shadow)
    }

    /// Whether a QoS 2 PUBLISH is a re-send of one not yet released (answered here if so);
    /// otherwise records it as pending.
    async fn repeated_exactly(&self, pkid: u16) -> bool {
        let state = {
            let mut exactly = self.shared.exactly.lock();
            match exactly.get(&pkid) {
                Some(s) => Some(*s),
                None => {
                    exactly.insert(pkid, Exactly::Pending);
                    None
                }
            }
        };
        match state {
            None => false,
            Some(Exactly::Pending) => true,
            Some(Exactly::Received) => {
                let _ =
                    self.to_client.send(Outgoing::Ack { pkid, qos: QoS::ExactlyOnce, refusal: None }).await;
                true
            }
        }
    }

    /// Hands a device message to the bridge; its ack waits for the journal (in order).
    async fn offer(
        &self,
        p: v4::Publish,
        response: Option<(String, Option<Bytes>)>,
    ) -> Result<(), SessionError> {
        if p.qos == QoS::ExactlyOnce && self.repeated_exactly(p.pkid).await {
            return Ok(());
        }
        let (reply, outcome) = oneshot::channel();
        let offer = Offer { device: self.device.to_string(), payload: p.payload, reply };
        self.front.offers.send(offer).await.map_err(|_| SessionError::BridgeGone)?;
        if p.qos != QoS::AtMostOnce || response.is_some() {
            let pending = PendingAck { pkid: p.pkid, qos: p.qos, outcome, response };
            self.acks.send(pending).await.map_err(|_| SessionError::BridgeGone)?;
        }
        Ok(())
    }

    /// The part of a SUBSCRIBE the device may make, capped at QoS 1; `None` when nothing is
    /// left (the SUBACK is sent here then).
    async fn subscribe(&self, s: v4::Subscribe) -> Option<v4::Subscribe> {
        let total = s.filters.len();
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for (i, f) in s.filters.into_iter().enumerate() {
            if self.mine(&f.path) {
                let qos = if f.qos == QoS::ExactlyOnce { QoS::AtLeastOnce } else { f.qos };
                allowed.push(v4::SubscribeFilter { path: to_internal(&f.path), qos });
            } else {
                tracing::info!(device = self.device, filter = %f.path, "subscription refused: outside the device's topics");
                denied.push(i);
            }
        }
        if allowed.is_empty() {
            let codes = vec![v4::SubscribeReasonCode::Failure; total];
            let ack = Packet::SubAck(v4::SubAck { pkid: s.pkid, return_codes: codes });
            let _ = self.to_client.send(Outgoing::Packet(ack)).await;
            return None;
        }
        if !denied.is_empty() {
            self.shared.refused.lock().insert(s.pkid, (total, denied));
        }
        Some(v4::Subscribe { pkid: s.pkid, filters: allowed })
    }
}

/// Sends the acks of device messages in arrival order, each once the bridge has decided (for
/// an accepted message: once it is journaled), and MQTT 5 responses.
pub(super) async fn acker(
    mut pending: mpsc::Receiver<PendingAck>,
    to_client: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    own: String,
    shadow: String,
) {
    while let Some(p) = pending.recv().await {
        // the bridge gone (shutdown): no ack, the device re-sends
        let Ok(outcome) = p.outcome.await else { return };
        if p.qos != QoS::AtMostOnce {
            let refusal = match &outcome {
                Outcome::Accepted(_) | Outcome::Duplicate(_) => None,
                Outcome::Rejected { reason, kind, .. } => Some((
                    match kind {
                        RejectKind::Content => Refusal::PayloadFormatInvalid,
                        RejectKind::Quota => Refusal::QuotaExceeded,
                        RejectKind::Internal => Refusal::Unspecified,
                    },
                    reason.clone(),
                )),
            };
            if p.qos == QoS::ExactlyOnce {
                shared.exactly.lock().insert(p.pkid, Exactly::Received);
            }
            if to_client.send(Outgoing::Ack { pkid: p.pkid, qos: p.qos, refusal }).await.is_err() {
                return;
            }
        }
        if let Some((topic, correlation)) = p.response {
            if topic.starts_with(&own) || topic.starts_with(&shadow) {
                let payload = Bytes::from(outcome.ack_json().to_string());
                let _ = to_client.send(Outgoing::Response { topic, payload, correlation }).await;
            }
        }
    }
}
