//! A device's session at the front: CONNECT and authentication, then two directions.
//!
//! Device -> broker: PUBLISH only under `devices/{id}/` and `$fogchain/things/{id}/shadow/`
//! (elsewhere: MQTT 5 gets PUBACK/PUBREC 0x87 "not authorized", MQTT 3 is disconnected, as AWS
//! IoT does; MQTT 3 has no negative PUBACK). Messages on `devices/{id}/messages` go to the
//! bridge ([`crate::bridge::Offer`]) and are acknowledged, in order, once journaled; an MQTT 5
//! message with a response topic (its own topics only) is answered there with the ack's JSON
//! and its correlation data. Other publishes go to rumqttd, QoS 2 as QoS 1 with the PUBREC
//! sent when rumqttd has it. SUBSCRIBE is granted only under the device's prefixes, at QoS 1 at
//! most (SUBACK 0x80 / 0x87 for the rest).
//!
//! Broker -> device: deliveries with `_fogchain/` mapped back to `$fogchain/`, SUBACKs merged
//! with the front's refusals, everything in the device's protocol version.

use super::{
    codec::{
        read_connect, CodecError, ConnectCode, DeviceCodec, Hello, Incoming, Outgoing, ServerLimits, Version,
    },
    quickack,
    upstream::{acker, Upstream},
    EmbeddedBroker, INTERNAL_SHADOW_PREFIX, SHADOW_PREFIX,
};
use crate::{
    auth::Authenticator,
    bridge::{Offer, Outcome},
    config::{LimitsConfig, MqttConfig},
    guard::{Caps, LoginRefusal},
    tls,
};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use rumqttc::mqttbytes::v4::{self, Packet};
use rumqttc::{v5::mqttbytes::v5, QoS};
use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};

/// Time a connection gets to send its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The device-facing front of the embedded broker.
pub struct Front {
    auth: Arc<Authenticator>,
    broker: EmbeddedBroker,
    pub(super) max_packet: usize,
    max_keep_alive: u16,
    receive_max: u16,
    limits: LimitsConfig,
    pub(super) offers: mpsc::Sender<Offer>,
    /// Open sessions per device (`[limits] sessions-per-device`).
    sessions: Arc<Caps<String>>,
}

/// What an authenticated CONNECT leaves for the connected session.
struct Connected {
    device: String,
    own: String,
    shadow: String,
    version: Version,
    session_expiry: u32,
    /// The CONNECT for rumqttd (internal login, scoped client id).
    connect: v4::Connect,
    codec: DeviceCodec,
    peer: SocketAddr,
}

/// A device's QoS 2 PUBLISH between its arrival and PUBREL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exactly {
    /// Handed over; PUBREC not sent yet (a re-sent PUBLISH is ignored).
    Pending,
    /// PUBREC sent (a re-sent PUBLISH gets PUBREC again, and is not handed over again).
    Received,
}

/// A device message waiting for the journal, in arrival order.
pub(super) struct PendingAck {
    pub(super) pkid: u16,
    pub(super) qos: QoS,
    pub(super) outcome: oneshot::Receiver<Outcome>,
    pub(super) response: Option<(String, Option<Bytes>)>,
}

/// State both directions of a session share.
#[derive(Default)]
pub(super) struct Shared {
    /// QoS 2 packet ids of the device's PUBLISHes until PUBREL.
    pub(super) exactly: Mutex<HashMap<u16, Exactly>>,
    /// SUBSCRIBE packet id -> (number of filters, refused positions), merged into the SUBACK.
    pub(super) refused: Mutex<HashMap<u16, (usize, Vec<usize>)>>,
    /// UNSUBSCRIBE packet id -> number of filters (an MQTT 5 UNSUBACK has a reason for each).
    pub(super) unsubscribes: Mutex<HashMap<u16, usize>>,
}

impl Front {
    /// A front for `broker` that hands device messages to `offers` (the bridge).
    pub fn new(
        auth: Arc<Authenticator>,
        broker: EmbeddedBroker,
        mqtt: &MqttConfig,
        limits: LimitsConfig,
        offers: mpsc::Sender<Offer>,
        sessions: Arc<Caps<String>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            auth,
            broker,
            max_packet: mqtt.max_packet_bytes,
            max_keep_alive: mqtt.max_keep_alive_secs,
            receive_max: mqtt.receive_maximum.max(1),
            sessions,
            limits,
            offers,
        })
    }

    pub(super) fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    pub(super) fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// Accepts devices on `listener` (TLS when `tls` is given) until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
        let limits = self.limits.clone();
        tls::serve(listener, tls, "MQTT", &limits, move |stream, peer, cn| {
            let this = self.clone();
            async move { this.run(stream, peer, cn).await }
        })
        .await
    }

    /// Runs one device connection to its end and logs why it ended.
    pub(super) async fn run<S>(self: Arc<Self>, stream: S, peer: SocketAddr, cert_cn: Option<String>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if let Err(why) = self.session(stream, peer, cert_cn).await {
            tracing::info!(%peer, "MQTT connection closed: {why}");
        }
    }

    async fn session<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        cert_cn: Option<String>,
    ) -> Result<(), SessionError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut client_rd, mut client_wr) = tokio::io::split(stream);
        let mut buf = BytesMut::with_capacity(4096);
        let hello =
            tokio::time::timeout(CONNECT_TIMEOUT, read_hello(&mut client_rd, &mut buf, self.max_packet))
                .await
                .map_err(|_| SessionError::ConnectTimeout)?;
        let Hello { version, mut connect, session_expiry } = match hello {
            Err(SessionError::Codec(CodecError::Level(level))) => {
                // MQTT 3.1.1 §3.1.2.2: CONNACK 0x01 for a level the server does not speak
                let ack = v4::ConnAck {
                    session_present: false,
                    code: v4::ConnectReturnCode::RefusedProtocolVersion,
                };
                let mut out = BytesMut::new();
                if Packet::ConnAck(ack).write(&mut out, 16).is_ok() {
                    client_wr.write_all(&out).await?;
                }
                return Err(SessionError::Codec(CodecError::Level(level)));
            }
            other => other?,
        };
        let mut limits = ServerLimits {
            receive_max: self.receive_max,
            max_packet: u32::try_from(self.max_packet).unwrap_or(u32::MAX),
            ..Default::default()
        };
        // Server keep-alive: a device asking for none, or more than the maximum, gets the maximum
        // (told in CONNACK under MQTT 5; rumqttd drops it after 1.5 x that of silence).
        if connect.keep_alive == 0 || connect.keep_alive > self.max_keep_alive {
            connect.keep_alive = self.max_keep_alive;
            limits.server_keep_alive = Some(self.max_keep_alive);
        }
        if connect.client_id.is_empty() {
            let id = format!("auto-{}", hex::encode(rand::random::<[u8; 8]>()));
            if version == Version::V5 {
                limits.assigned_client_id = Some(id.clone());
            } else if !connect.clean_session {
                // MQTT 3.1.1 §3.1.3.1: an empty client id needs a clean session
                let mut codec = DeviceCodec::new(version, self.max_packet, limits);
                let ack = Outgoing::ConnAck {
                    code: ConnectCode::BadClientId,
                    session_present: false,
                    reason: None,
                };
                write(&mut client_wr, &mut codec, ack).await?;
                return Err(SessionError::BadClientId(String::new()));
            }
            connect.client_id = id;
        }
        let mut codec = DeviceCodec::new(version, self.max_packet, limits);
        let device = match self.authenticate(&connect, peer, cert_cn.as_deref()).await {
            Ok(device) => device,
            Err((code, why)) => {
                let ack = Outgoing::ConnAck { code, session_present: false, reason: Some(why.to_string()) };
                write(&mut client_wr, &mut codec, ack).await?;
                return Err(SessionError::Refused { why, client_id: connect.client_id });
            }
        };
        let (own, shadow) = own_prefixes(&device);
        let refuse = |why: &'static str| Outgoing::ConnAck {
            code: if why == "client id" { ConnectCode::BadClientId } else { ConnectCode::NotAuthorized },
            session_present: false,
            reason: Some(why.into()),
        };
        if let Some(will) = &connect.last_will {
            if !(will.topic.starts_with(&own) || will.topic.starts_with(&shadow)) {
                write(&mut client_wr, &mut codec, refuse("last will outside the device's topics")).await?;
                return Err(SessionError::ForeignWill { device, topic: will.topic.clone() });
            }
            let topic = to_internal(&will.topic);
            connect.last_will = Some(v4::LastWill { topic, ..will.clone() });
        }
        if "+$#/:".chars().any(|c| connect.client_id.contains(c)) {
            write(&mut client_wr, &mut codec, refuse("client id")).await?;
            return Err(SessionError::BadClientId(connect.client_id));
        }
        let secret = self.broker.secrets.get(&device).cloned().ok_or(SessionError::NoSecret)?;
        connect.login = Some(v4::Login { username: device.clone(), password: secret });
        // Client ids are scoped to the device, so one device cannot take over another's session.
        connect.client_id = format!("{device}:{}", connect.client_id);
        // Boxed: the state of a connected session is large, and a connection that never gets
        // here (refused, throttled) should not hold room for it.
        let _held = match self.sessions.admit(device.clone()) {
            Ok(held) => held,
            Err(cap) => {
                let why = "too many sessions of this device (sessions-per-device)";
                let ack = Outgoing::ConnAck {
                    code: ConnectCode::QuotaExceeded,
                    session_present: false,
                    reason: Some(why.into()),
                };
                write(&mut client_wr, &mut codec, ack).await?;
                return Err(SessionError::Refused { why: cap, client_id: connect.client_id });
            }
        };
        let session = Connected { device, own, shadow, version, session_expiry, connect, codec, peer };
        Box::pin(self.connected(session, client_rd, client_wr, buf)).await
    }

    /// An authenticated device's session: connects it to rumqttd and relays both ways.
    async fn connected<S>(
        &self,
        session: Connected,
        mut client_rd: tokio::io::ReadHalf<S>,
        mut client_wr: tokio::io::WriteHalf<S>,
        mut buf: BytesMut,
    ) -> Result<(), SessionError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connected { device, own, shadow, version, session_expiry, connect, mut codec, peer } = session;
        let broker = TcpStream::connect(self.broker.internal).await.map_err(SessionError::InternalBroker)?;
        let _ = broker.set_nodelay(true);
        let (mut broker_rd, mut broker_wr) = broker.into_split();
        write_v4(&mut broker_wr, &Packet::Connect(connect), self.max_packet).await?;
        tracing::debug!(%peer, %device, ?version, session_expiry, "device connected");
        let _connected = fogchain_metrics::Open::new(metrics::gauge!("fogchain_proxy_mqtt_connections"));

        let (to_client, mut to_client_rx) = mpsc::channel::<Outgoing>(256);
        let writer = tokio::spawn(async move {
            while let Some(out) = to_client_rx.recv().await {
                if write(&mut client_wr, &mut codec, out).await.is_err() {
                    break;
                }
            }
            let _ = client_wr.shutdown().await;
        });
        let shared = Arc::new(Shared::default());
        let (acks, acks_rx) = mpsc::channel::<PendingAck>(usize::from(self.receive_max));
        let acker =
            tokio::spawn(acker(acks_rx, to_client.clone(), shared.clone(), own.clone(), shadow.clone()));
        let max = self.max_packet;
        let mut down = {
            let (to_client, shared) = (to_client.clone(), shared.clone());
            tokio::spawn(async move {
                let mut buf = BytesMut::with_capacity(4096);
                let fd = std::os::fd::AsRawFd::as_raw_fd(broker_rd.as_ref());
                loop {
                    // rumqttd leaves Nagle on: acknowledge its segments at once so that its next
                    // packet does not wait for our delayed ACK (40 ms).
                    quickack(fd);
                    let packet = match read_v4(&mut broker_rd, &mut buf, max).await {
                        Ok(Some(p)) => p,
                        _ => break,
                    };
                    let out = match packet {
                        Packet::ConnAck(ack) => Outgoing::ConnAck {
                            code: if ack.code == v4::ConnectReturnCode::Success {
                                ConnectCode::Accepted
                            } else {
                                ConnectCode::NotAuthorized
                            },
                            session_present: ack.session_present,
                            reason: None,
                        },
                        Packet::Publish(mut p) => {
                            if let Some(rest) = p.topic.strip_prefix(INTERNAL_SHADOW_PREFIX) {
                                p.topic = format!("{SHADOW_PREFIX}{rest}");
                            }
                            Outgoing::Packet(Packet::Publish(p))
                        }
                        Packet::SubAck(ack) => Outgoing::Packet(Packet::SubAck(merge_suback(ack, &shared))),
                        Packet::UnsubAck(ack) => {
                            let filters = shared.unsubscribes.lock().remove(&ack.pkid).unwrap_or(1);
                            Outgoing::UnsubAck { pkid: ack.pkid, filters }
                        }
                        Packet::PubAck(ack) => {
                            let mut exactly = shared.exactly.lock();
                            if let Some(state) = exactly.get_mut(&ack.pkid) {
                                // a QoS 2 publish that rumqttd took as QoS 1
                                *state = Exactly::Received;
                                Outgoing::Ack { pkid: ack.pkid, qos: QoS::ExactlyOnce, refusal: None }
                            } else {
                                Outgoing::Packet(Packet::PubAck(ack))
                            }
                        }
                        other => Outgoing::Packet(other),
                    };
                    if to_client.send(out).await.is_err() {
                        break;
                    }
                }
            })
        };
        let up = Upstream {
            front: self,
            version,
            device: &device,
            own: &own,
            shadow: &shadow,
            to_client: &to_client,
            acks,
            shared,
        };
        // The session ends when either side does (rumqttd drops idle clients by keep-alive).
        let result = tokio::select! {
            r = up.run(&mut client_rd, &mut buf, &mut broker_wr) => r,
            _ = &mut down => Err(SessionError::BrokerClosed),
        };
        down.abort();
        acker.abort();
        if let (Version::V5, Err(e)) = (version, &result) {
            // MQTT 5 §4.13: tell the device why before closing
            if let Some(code) = e.disconnect_reason() {
                let _ = to_client.send(Outgoing::Disconnect(code, e.to_string())).await;
            }
        }
        drop(to_client);
        if !matches!(result, Err(SessionError::DisconnectWithWill)) {
            let _ = broker_wr.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        match result {
            Err(SessionError::DisconnectWithWill) => Ok(()),
            other => other,
        }
    }

    /// The device behind a CONNECT, or the CONNACK code and reason to refuse it with.
    async fn authenticate(
        &self,
        connect: &v4::Connect,
        peer: SocketAddr,
        cert_cn: Option<&str>,
    ) -> Result<String, (ConnectCode, &'static str)> {
        let identity = match (&connect.login, cert_cn.and_then(|cn| self.auth.by_cert(cn))) {
            (_, Some(id)) => Ok(Some(id)),
            (Some(login), None) => {
                let (user, pass) = (login.username.clone(), login.password.clone());
                self.auth.login(&connect.client_id, user, pass, peer.ip()).await
            }
            (None, None) => Ok(None),
        };
        let (code, reason, why) = match identity {
            Ok(Some(id)) if id.device => return Ok(id.name),
            Err(LoginRefusal::Busy) => {
                (ConnectCode::ServerBusy, "busy", "server busy: too many logins in progress")
            }
            Err(LoginRefusal::Throttled { .. }) => {
                (ConnectCode::Throttled, "throttled", "too many failed logins from this client or address")
            }
            Ok(None) if connect.login.is_some() => {
                (ConnectCode::BadUserNamePassword, "bad_password", "bad user name or password")
            }
            _ => (ConnectCode::NotAuthorized, "not_authorized", "not a device"),
        };
        metrics::counter!("fogchain_proxy_mqtt_auth_failures_total", "reason" => reason).increment(1);
        Err((code, why))
    }
}

/// Reads the CONNECT.
async fn read_hello<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Hello, SessionError> {
    loop {
        if let Some(hello) = read_connect(buf, max)? {
            return Ok(hello);
        }
        if buf.len() > max + 8 {
            return Err(SessionError::TooLarge);
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(SessionError::ClosedBeforeConnect);
        }
    }
}

/// Reads one packet from the device; `None` at a clean end of stream.
pub(super) async fn read_device<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    codec: &mut DeviceCodec,
) -> Result<Option<Incoming>, SessionError> {
    loop {
        if let Some(incoming) = codec.decode(buf)? {
            return Ok(Some(incoming));
        }
        if rd.read_buf(buf).await? == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(SessionError::ClosedMidPacket) };
        }
    }
}

/// Writes `out` to the device in its version (nothing when it has no form there).
async fn write<W: AsyncWrite + Unpin>(
    wr: &mut W,
    codec: &mut DeviceCodec,
    out: Outgoing,
) -> Result<(), SessionError> {
    let mut bytes = BytesMut::with_capacity(64);
    if codec.encode(out, &mut bytes)? {
        wr.write_all(&bytes).await?;
    }
    Ok(())
}

/// Reads one MQTT 3.1.1 packet from the broker; `None` at a clean end of stream.
async fn read_v4<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, SessionError> {
    loop {
        if !buf.is_empty() {
            match Packet::read(buf, max + 64) {
                Ok(p) => return Ok(Some(p)),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(SessionError::Codec(CodecError::Malformed(e))),
            }
        }
        if rd.read_buf(buf).await? == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(SessionError::ClosedMidPacket) };
        }
    }
}

pub(super) async fn write_v4<W: AsyncWrite + Unpin>(
    wr: &mut W,
    packet: &Packet,
    max: usize,
) -> Result<(), SessionError> {
    let mut out = BytesMut::with_capacity(packet.size() + 8);
    packet.write(&mut out, max + 64).map_err(|e| SessionError::Codec(CodecError::Malformed(e)))?;
    Ok(wr.write_all(&out).await?)
}

/// The topic prefixes a device may use: `devices/{id}/` and its shadow's.
fn own_prefixes(device: &str) -> (String, String) {
    (format!("devices/{device}/"), format!("{SHADOW_PREFIX}/things/{device}/shadow/"))
}

pub(super) fn to_internal(topic: &str) -> String {
    match topic.strip_prefix(SHADOW_PREFIX) {
        Some(rest) => format!("{INTERNAL_SHADOW_PREFIX}{rest}"),
        None => topic.to_string(),
    }
}

fn merge_suback(ack: v4::SubAck, shared: &Shared) -> v4::SubAck {
    let Some((total, denied)) = shared.refused.lock().remove(&ack.pkid) else { return ack };
    let mut granted = ack.return_codes.into_iter();
    let codes = (0..total)
        .map(|i| {
            if denied.contains(&i) {
                v4::SubscribeReasonCode::Failure
            } else {
                granted.next().unwrap_or(v4::SubscribeReasonCode::Failure)
            }
        })
        .collect();
    v4::SubAck { pkid: ack.pkid, return_codes: codes }
}

impl SessionError {
    /// The MQTT 5 DISCONNECT reason for an error the device caused.
    fn disconnect_reason(&self) -> Option<v5::DisconnectReasonCode> {
        use v5::DisconnectReasonCode as R;
        Some(match self {
            Self::Codec(CodecError::TopicAlias(_)) => R::TopicAliasInvalid,
            Self::Codec(CodecError::Malformed(_) | CodecError::Malformed5(_)) => R::MalformedPacket,
            Self::Codec(_) | Self::SecondConnect => R::ProtocolError,
            Self::BrokerClosed => R::KeepAliveTimeout,
            Self::BridgeGone => R::ServerShuttingDown,
            _ => return None,
        })
    }
}

/// Why a device's session at the front ended (logged; the device sees its CONNACK code or a
/// closed connection).
#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
    #[error("no CONNECT within 10 s")]
    ConnectTimeout,
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("CONNECT larger than the packet limit")]
    TooLarge,
    #[error("connection closed before CONNECT")]
    ClosedBeforeConnect,
    #[error("CONNECT refused ({why}) for client id {client_id:?}")]
    Refused { why: &'static str, client_id: String },
    #[error("device {device}: last will on {topic:?}, outside its topics")]
    ForeignWill { device: String, topic: String },
    #[error("device {device} published to {topic:?}, outside its topics (devices/{device}/ and its shadow)")]
    ForeignPublish { device: String, topic: String },
    #[error("client id {0:?} may not contain + $ # / : (and may be empty only with a clean session)")]
    BadClientId(String),
    #[error("device has no internal secret")]
    NoSecret,
    #[error("a second CONNECT is a protocol violation")]
    SecondConnect,
    #[error("internal broker: {0}")]
    InternalBroker(std::io::Error),
    #[error("the broker closed the session")]
    BrokerClosed,
    #[error("the bridge stopped")]
    BridgeGone,
    #[error("DISCONNECT with will (MQTT 5 reason 0x04)")]
    DisconnectWithWill,
    #[error("connection closed mid-packet")]
    ClosedMidPacket,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
