//! The embedded MQTT broker: rumqttd on a loopback port, behind the proxy's front.
//!
//! rumqttd routes, queues and delivers (QoS 0/1, persistent sessions, retained messages); it has
//! no per-client topic ACLs and never delivers `$`-prefixed topics, so devices do not reach it
//! directly. The front, where devices connect (plain TCP or TLS), speaks MQTT 3.1.1 and:
//! - authenticates the CONNECT (device id + password, or a client certificate whose CN is the
//!   device id) and answers CONNACK 4 "bad user name or password" / 5 "not authorized" itself;
//!   it then connects to rumqttd with an internal per-device secret;
//! - lets a device publish only under `devices/{id}/` and to its own shadow requests
//!   `$fogchain/things/{id}/shadow/...`: a publish elsewhere closes the connection (as AWS IoT
//!   does, MQTT 3.1.1 has no negative PUBACK), and is logged with the reason;
//! - grants a subscription only under those prefixes: other filters get SUBACK 0x80 (failure);
//! - maps `$fogchain/` to rumqttd's internal `_fogchain/` and back.

use crate::{auth::Authenticator, config::ProxyConfig, tls};
use bytes::BytesMut;
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, Publish, SubAck, Subscribe, SubscribeReasonCode, UnsubAck,
};
use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// Shadow topic prefix devices use.
pub const SHADOW_PREFIX: &str = "$fogchain";
/// The same prefix inside rumqttd.
pub const INTERNAL_SHADOW_PREFIX: &str = "_fogchain";
/// The bridge's username at the embedded broker.
pub const BRIDGE_USER: &str = "fogchain-bridge";

/// The running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    /// rumqttd's loopback address.
    pub internal: SocketAddr,
    /// Where the bridge connects: a loopback relay to rumqttd (see [`relay`]).
    pub bridge: SocketAddr,
    /// Internal secrets: username -> password at rumqttd.
    secrets: Arc<HashMap<String, String>>,
}

impl EmbeddedBroker {
    /// Starts rumqttd on a free loopback port with one internal secret per device and one for
    /// the bridge; waits until it accepts connections.
    pub async fn start(config: &ProxyConfig, max_packet: usize) -> crate::Result<Self> {
        // Below Linux's ephemeral range (32768–60999): an outgoing connection's source port cannot
        // take it between this check and rumqttd's bind.
        let port = (0..200)
            .map(|_| rand::random_range(20_000..32_000u16))
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .map_or_else(|| std::net::TcpListener::bind("127.0.0.1:0")?.local_addr().map(|a| a.port()), Ok)?;
        let internal: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut secrets = HashMap::new();
        for d in &config.devices {
            secrets.insert(d.id.clone(), hex::encode(rand::random::<[u8; 24]>()));
        }
        secrets.insert(BRIDGE_USER.to_string(), hex::encode(rand::random::<[u8; 24]>()));
        let connections = rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: max_packet,
            max_inflight_count: 500,
            auth: Some(secrets.clone()),
            external_auth: None,
            dynamic_filters: true,
        };
        let mut v4 = HashMap::new();
        v4.insert(
            "internal".to_string(),
            rumqttd::ServerSettings {
                name: "fogchain-internal".into(),
                listen: internal,
                tls: None,
                next_connection_delay_ms: 0,
                connections,
            },
        );
        let broker_config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 100_000,
                max_outgoing_packet_count: 1000,
                max_segment_size: (max_packet * 16).max(1 << 20),
                max_segment_count: 10,
                ..Default::default()
            },
            v4: Some(v4),
            ..Default::default()
        };
        std::thread::Builder::new().name("rumqttd".into()).spawn(move || {
            let mut broker = rumqttd::Broker::new(broker_config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(internal).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                return Err(crate::error::ProxyError::Broker(format!(
                    "the embedded MQTT broker did not start on {internal}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let relay_listener = TcpListener::bind("127.0.0.1:0").await?;
        let bridge = relay_listener.local_addr()?;
        tokio::spawn(relay(relay_listener, internal));
        Ok(Self { internal, bridge, secrets: Arc::new(secrets) })
    }

    /// The bridge's credentials at rumqttd.
    pub fn bridge_credentials(&self) -> (String, String) {
        (BRIDGE_USER.to_string(), self.secrets[BRIDGE_USER].clone())
    }
}

/// The device-facing front of the embedded broker.
pub struct Front {
    auth: Arc<Authenticator>,
    broker: EmbeddedBroker,
    max_packet: usize,
}

impl Front {
    /// A front for `broker`.
    pub fn new(auth: Arc<Authenticator>, broker: EmbeddedBroker, max_packet: usize) -> Arc<Self> {
        Arc::new(Self { auth, broker, max_packet })
    }

    /// Accepts devices on `listener` (TLS when `tls` is given) until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
        tls::serve(listener, tls, "MQTT", move |stream, peer, cn| {
            let this = self.clone();
            async move {
                if let Err(why) = this.session(stream, peer, cn).await {
                    tracing::info!(%peer, "MQTT connection closed: {why}");
                }
            }
        })
        .await
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
        // MQTT 3.1.1 §3.1.2.2: a CONNECT of another protocol level (MQTT 5 clients) is answered
        // with return code 0x01 before its body, which this codec cannot parse, is read.
        let level = tokio::time::timeout(Duration::from_secs(10), connect_level(&mut client_rd, &mut buf))
            .await
            .map_err(|_| SessionError::ConnectTimeout)??;
        if level != 4 {
            let ack = ConnAck::new(ConnectReturnCode::RefusedProtocolVersion, false);
            write_packet(&mut client_wr, &Packet::ConnAck(ack), self.max_packet).await?;
            return Err(SessionError::ProtocolLevel(level));
        }
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            read_packet(&mut client_rd, &mut buf, self.max_packet),
        )
        .await
        .map_err(|_| SessionError::ConnectTimeout)??;
        let Some(Packet::Connect(mut connect)) = first else {
            return Err(SessionError::NotConnect);
        };
        let identity = match (&connect.login, cert_cn.as_deref().and_then(|cn| self.auth.by_cert(cn))) {
            (_, Some(id)) => Some(id),
            (Some(login), None) => {
                self.auth.by_password_async(login.username.clone(), login.password.clone()).await
            }
            (None, None) => None,
        };
        let device = match identity {
            Some(id) if id.device => id.name,
            other => {
                let code = if connect.login.is_some() && other.is_none() {
                    ConnectReturnCode::BadUserNamePassword
                } else {
                    ConnectReturnCode::NotAuthorized
                };
                let reason = if code == ConnectReturnCode::BadUserNamePassword {
                    "bad_password"
                } else {
                    "not_authorized"
                };
                metrics::counter!("fogchain_proxy_mqtt_auth_failures_total", "reason" => reason).increment(1);
                write_packet(&mut client_wr, &Packet::ConnAck(ConnAck::new(code, false)), self.max_packet)
                    .await?;
                return Err(SessionError::Refused { code, client_id: connect.client_id });
            }
        };
        let (own, shadow) = own_prefixes(&device);
        if let Some(will) = &connect.last_will {
            if !(will.topic.starts_with(&own) || will.topic.starts_with(&shadow)) {
                write_packet(
                    &mut client_wr,
                    &Packet::ConnAck(ConnAck::new(ConnectReturnCode::NotAuthorized, false)),
                    self.max_packet,
                )
                .await?;
                return Err(SessionError::ForeignWill { device, topic: will.topic.clone() });
            }
            let topic = to_internal(&will.topic);
            connect.last_will = Some(rumqttc::LastWill { topic, ..will.clone() });
        }
        let secret = self.broker.secrets.get(&device).cloned().ok_or(SessionError::NoSecret)?;
        connect.login = Some(rumqttc::Login { username: device.clone(), password: secret });
        if "+$#/:".chars().any(|c| connect.client_id.contains(c)) {
            let ack = ConnAck::new(ConnectReturnCode::BadClientId, false);
            write_packet(&mut client_wr, &Packet::ConnAck(ack), self.max_packet).await?;
            return Err(SessionError::BadClientId(connect.client_id));
        }
        // Client ids are scoped to the device, so one device cannot take over another's session.
        connect.client_id = format!("{device}:{}", connect.client_id);
        let broker = TcpStream::connect(self.broker.internal).await.map_err(SessionError::InternalBroker)?;
        let _ = broker.set_nodelay(true);
        let (mut broker_rd, mut broker_wr) = broker.into_split();
        write_packet(&mut broker_wr, &Packet::Connect(connect), self.max_packet).await?;
        tracing::debug!(%peer, %device, "device connected");
        let _connected = fogchain_metrics::Open::new(metrics::gauge!("fogchain_proxy_mqtt_connections"));

        let (to_client, mut to_client_rx) = mpsc::channel::<Packet>(256);
        let max = self.max_packet;
        let writer = tokio::spawn(async move {
            while let Some(p) = to_client_rx.recv().await {
                if write_packet(&mut client_wr, &p, max).await.is_err() {
                    break;
                }
            }
            let _ = client_wr.shutdown().await;
        });
        // SUBSCRIBE packet id -> which filters were refused (positions), to merge into the SUBACK
        let refused: Arc<Refused> = Default::default();
        let down = {
            let to_client = to_client.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::with_capacity(4096);
                let fd = std::os::fd::AsRawFd::as_raw_fd(broker_rd.as_ref());
                loop {
                    // rumqttd does not set TCP_NODELAY on its sockets: acknowledge its segments at
                    // once so that Nagle does not hold its next packet for our delayed ACK (40 ms).
                    quickack(fd);
                    let packet = match read_packet(&mut broker_rd, &mut buf, max).await {
                        Ok(Some(p)) => p,
                        _ => break,
                    };
                    let packet = match packet {
                        Packet::Publish(mut p) => {
                            if let Some(rest) = p.topic.strip_prefix(INTERNAL_SHADOW_PREFIX) {
                                p.topic = format!("{SHADOW_PREFIX}{rest}");
                            }
                            Packet::Publish(p)
                        }
                        Packet::SubAck(ack) => Packet::SubAck(merge_suback(ack, &refused)),
                        other => other,
                    };
                    if to_client.send(packet).await.is_err() {
                        break;
                    }
                }
            })
        };
        // The session ends when either side does (rumqttd drops idle clients by keep-alive).
        let mut down = down;
        let result = tokio::select! {
            r = self.upstream_loop(&device, &mut client_rd, &mut buf, &mut broker_wr, &to_client, &refused) => r,
            _ = &mut down => Err(SessionError::BrokerClosed),
        };
        down.abort();
        drop(to_client);
        let _ = broker_wr.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        result
    }

    /// Client -> broker: ACL checks and topic mapping.
    async fn upstream_loop<R: AsyncRead + Unpin>(
        &self,
        device: &str,
        client_rd: &mut R,
        buf: &mut BytesMut,
        broker_wr: &mut tokio::net::tcp::OwnedWriteHalf,
        to_client: &mpsc::Sender<Packet>,
        refused: &Refused,
    ) -> Result<(), SessionError> {
        let (own, shadow) = own_prefixes(device);
        loop {
            let packet = match read_packet(client_rd, buf, self.max_packet).await? {
                Some(p) => p,
                None => return Ok(()),
            };
            let packet = match packet {
                Packet::Publish(p) => {
                    if !(p.topic.starts_with(&own) || p.topic.starts_with(&shadow)) {
                        return Err(SessionError::ForeignPublish {
                            device: device.to_string(),
                            topic: p.topic,
                            own: own.clone(),
                            shadow: shadow.clone(),
                        });
                    }
                    Packet::Publish(Publish { topic: to_internal(&p.topic), ..p })
                }
                Packet::Subscribe(s) => {
                    let total = s.filters.len();
                    let mut allowed = Vec::new();
                    let mut denied = Vec::new();
                    for (i, f) in s.filters.into_iter().enumerate() {
                        if f.path.starts_with(&own) || f.path.starts_with(&shadow) {
                            allowed.push(rumqttc::SubscribeFilter { path: to_internal(&f.path), qos: f.qos });
                        } else {
                            tracing::info!(device, filter = %f.path, "subscription refused: outside the device's topics");
                            denied.push(i);
                        }
                    }
                    if allowed.is_empty() {
                        let codes = vec![SubscribeReasonCode::Failure; total];
                        let _ = to_client.send(Packet::SubAck(SubAck::new(s.pkid, codes))).await;
                        continue;
                    }
                    if !denied.is_empty() {
                        refused.lock().insert(s.pkid, (total, denied));
                    }
                    Packet::Subscribe(Subscribe { pkid: s.pkid, filters: allowed })
                }
                Packet::Unsubscribe(mut u) => {
                    u.topics.retain(|t| t.starts_with(&own) || t.starts_with(&shadow));
                    if u.topics.is_empty() {
                        let _ = to_client.send(Packet::UnsubAck(UnsubAck::new(u.pkid))).await;
                        continue;
                    }
                    u.topics = u.topics.iter().map(|t| to_internal(t)).collect();
                    Packet::Unsubscribe(u)
                }
                Packet::Connect(_) => return Err(SessionError::SecondConnect),
                other => other,
            };
            write_packet(broker_wr, &packet, self.max_packet).await?;
        }
    }
}

/// Refused filters of SUBSCRIBEs in flight: packet id -> (number of filters, refused positions),
/// merged into the broker's SUBACK.
type Refused = parking_lot::Mutex<HashMap<u16, (usize, Vec<usize>)>>;

/// The topic prefixes a device may use: `devices/{id}/` and its shadow's.
fn own_prefixes(device: &str) -> (String, String) {
    (format!("devices/{device}/"), format!("{SHADOW_PREFIX}/things/{device}/shadow/"))
}

fn to_internal(topic: &str) -> String {
    match topic.strip_prefix(SHADOW_PREFIX) {
        Some(rest) => format!("{INTERNAL_SHADOW_PREFIX}{rest}"),
        None => topic.to_string(),
    }
}

fn merge_suback(ack: SubAck, refused: &Refused) -> SubAck {
    let Some((total, denied)) = refused.lock().remove(&ack.pkid) else { return ack };
    let mut granted = ack.return_codes.into_iter();
    let codes = (0..total)
        .map(|i| {
            if denied.contains(&i) {
                SubscribeReasonCode::Failure
            } else {
                granted.next().unwrap_or(SubscribeReasonCode::Failure)
            }
        })
        .collect();
    SubAck::new(ack.pkid, codes)
}

/// Relays connections on `listener` to `target` byte for byte, acknowledging `target`'s segments
/// at once (TCP_QUICKACK) and sending without Nagle: rumqttd leaves Nagle on, so without this a
/// small packet it writes right after another waits for the bridge's delayed ACK (40 ms).
async fn relay(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut client_rd, mut client_wr) = client.into_split();
            let (mut server_rd, mut server_wr) = server.into_split();
            let up = async {
                let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
                let _ = server_wr.shutdown().await;
            };
            let down = async {
                let fd = std::os::fd::AsRawFd::as_raw_fd(server_rd.as_ref());
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    quickack(fd);
                    match server_rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if client_wr.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client_wr.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

/// Sets TCP_QUICKACK on `fd` (Linux; the kernel clears it again on its own, so it is re-armed
/// before every read).
fn quickack(fd: std::os::fd::RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this task owns, with a valid pointer and length.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Reads until the protocol level of the CONNECT at the start of `buf` is known: fixed header
/// (type 1, remaining length), then "\0\x04MQTT" (or MQTT 3.1's "\0\x06MQIsdp") and the level.
async fn connect_level<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> Result<u8, SessionError> {
    loop {
        if let Some(&first) = buf.first() {
            if first >> 4 != 1 {
                return Err(SessionError::NotConnect);
            }
            // remaining length: 1 to 4 bytes, high bit = more
            let len_bytes = buf[1..].iter().take(4).position(|b| b & 0x80 == 0).map(|p| p + 1);
            if let Some(n) = len_bytes {
                let start = 1 + n;
                if buf.len() >= start + 9 && &buf[start..start + 8] == b"\0\x06MQIsdp" {
                    return Ok(buf[start + 8]); // MQTT 3.1
                }
                if buf.len() >= start + 7 && &buf[start..start + 6] == b"\0\x04MQTT" {
                    return Ok(buf[start + 6]);
                }
                if buf.len() >= start + 9 {
                    return Err(SessionError::NotMqtt);
                }
            } else if buf.len() > 5 {
                return Err(SessionError::BadLength);
            }
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(SessionError::ClosedBeforeConnect);
        }
    }
}

/// Why a device's session at the front ended (logged; the device sees its CONNACK code or a
/// closed connection).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("no CONNECT within 10 s")]
    ConnectTimeout,
    #[error("protocol level {0} refused: the proxy speaks MQTT 3.1.1 (level 4)")]
    ProtocolLevel(u8),
    #[error("the first packet must be CONNECT")]
    NotConnect,
    #[error("not an MQTT CONNECT")]
    NotMqtt,
    #[error("malformed CONNECT length")]
    BadLength,
    #[error("connection closed before CONNECT")]
    ClosedBeforeConnect,
    #[error("CONNECT refused ({code:?}) for client id {client_id:?}")]
    Refused { code: ConnectReturnCode, client_id: String },
    #[error("device {device}: last will on {topic:?}, outside its topics")]
    ForeignWill { device: String, topic: String },
    #[error("device {device} published to {topic:?}: a device may publish only under {own} and {shadow}")]
    ForeignPublish { device: String, topic: String, own: String, shadow: String },
    #[error("client id {0:?} may not contain + $ # / :")]
    BadClientId(String),
    #[error("device has no internal secret")]
    NoSecret,
    #[error("a second CONNECT is a protocol violation")]
    SecondConnect,
    #[error("internal broker: {0}")]
    InternalBroker(std::io::Error),
    #[error("the broker closed the session")]
    BrokerClosed,
    #[error("malformed MQTT packet: {0}")]
    Malformed(rumqttc::Error),
    #[error("connection closed mid-packet")]
    ClosedMidPacket,
    #[error("encoding: {0}")]
    Encode(rumqttc::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one MQTT 3.1.1 packet; `None` at a clean end of stream.
async fn read_packet<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, SessionError> {
    loop {
        if !buf.is_empty() {
            match Packet::read(buf, max) {
                Ok(p) => return Ok(Some(p)),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(SessionError::Malformed(e)),
            }
        }
        let n = rd.read_buf(buf).await?;
        if n == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(SessionError::ClosedMidPacket) };
        }
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(
    wr: &mut W,
    packet: &Packet,
    max: usize,
) -> Result<(), SessionError> {
    let mut out = BytesMut::with_capacity(packet.size() + 8);
    packet.write(&mut out, max + 16).map_err(SessionError::Encode)?;
    Ok(wr.write_all(&out).await?)
}
