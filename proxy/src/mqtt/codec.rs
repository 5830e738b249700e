//! The device side of the front on the wire: MQTT 3.1 (protocol level 3), 3.1.1 (4) and 5.0 (5),
//! read into one form — MQTT 3.1.1 packets (rumqttc's v4 types, what the embedded broker
//! speaks) plus what only MQTT 5 carries — and written back in the device's version.
//!
//! - MQTT 3.1 differs from 3.1.1 only in its CONNECT (protocol name `MQIsdp`, level 3), which is
//!   rewritten to 3.1.1 before it is parsed; its CONNACK carries no session-present flag.
//! - MQTT 5 (OASIS 2019) packets are read with rumqttc's v5 codec. Kept: reason codes (PUBACK,
//!   PUBREC, SUBACK, UNSUBACK, DISCONNECT, CONNACK with a reason string), topic aliases from the
//!   device (up to [`TOPIC_ALIAS_MAX`]), response topic and correlation data on a device
//!   message (answered by the front), session expiry (mapped to a persistent session or not),
//!   server keep-alive, receive maximum and maximum packet size in CONNACK. Properties on
//!   messages routed through the broker (user properties, content type) are not carried: the
//!   broker is MQTT 3.1.1.

use bytes::{Bytes, BytesMut};
use rumqttc::{
    mqttbytes::{v4, Error as Error4, Protocol},
    v5::mqttbytes::{v5, QoS as QoS5},
    QoS,
};
use std::collections::HashMap;

/// Topic aliases a device may set (MQTT 5 §3.3.2.3.4).
pub const TOPIC_ALIAS_MAX: u16 = 32;

/// The device's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1 (protocol level 3, `MQIsdp`).
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

/// Why a device's bytes are not MQTT the front takes.
#[derive(Debug, thiserror::Error)]
pub(super) enum CodecError {
    /// The first packet is not a CONNECT.
    #[error("the first packet must be CONNECT")]
    NotConnect,
    /// Not MQTT at all.
    #[error("not an MQTT CONNECT")]
    NotMqtt,
    /// A protocol level other than 3, 4, 5.
    #[error("protocol level {0} refused: the proxy speaks MQTT 3.1, 3.1.1 and 5.0 (levels 3, 4, 5)")]
    Level(u8),
    /// Malformed MQTT 3.1.1 / 3.1 packet.
    #[error("malformed MQTT packet: {0}")]
    Malformed(Error4),
    /// Malformed MQTT 5 packet.
    #[error("malformed MQTT 5 packet: {0}")]
    Malformed5(rumqttc::v5::mqttbytes::Error),
    /// A PUBLISH naming a topic alias the device never set, or one above the maximum.
    #[error("topic alias {0} is not set or above the maximum")]
    TopicAlias(u16),
    /// MQTT 5 AUTH (enhanced authentication) is not offered.
    #[error("enhanced authentication (AUTH) is not supported")]
    Auth,
}

/// A device's CONNECT in MQTT 3.1.1 form, with the MQTT 5 parts the front uses.
#[derive(Debug, Clone)]
pub(super) struct Hello {
    /// The device's protocol.
    pub version: Version,
    /// The CONNECT as the broker will get it (its login is the device's).
    pub connect: v4::Connect,
    /// MQTT 5 session expiry interval, seconds (0 when absent: the session ends with the
    /// connection).
    pub session_expiry: u32,
}

/// What the front read from a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Incoming {
    /// The packet in MQTT 3.1.1 form.
    pub packet: v4::Packet,
    /// MQTT 5 request/response: where to answer a device message, with which correlation data.
    pub response: Option<(String, Option<Bytes>)>,
    /// MQTT 5 DISCONNECT with reason 0x04: close without discarding the will.
    pub with_will: bool,
}

/// A refusal as MQTT 5 words it (ignored for MQTT 3: a PUBACK there has no reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 0x87 Not authorized.
    NotAuthorized,
    /// 0x97 Quota exceeded (rate limit, queue full).
    QuotaExceeded,
    /// 0x99 Payload format invalid.
    PayloadFormatInvalid,
    /// 0x80 Unspecified error.
    Unspecified,
}

/// How a CONNECT is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnectCode {
    /// Accepted.
    Accepted,
    /// MQTT 3: 4, MQTT 5: 0x86.
    BadUserNamePassword,
    /// MQTT 3: 5, MQTT 5: 0x87.
    NotAuthorized,
    /// Login throttled. MQTT 3: 5, MQTT 5: 0x9F connection rate exceeded.
    Throttled,
    /// Password checks busy. MQTT 3: 3, MQTT 5: 0x89 server busy.
    ServerBusy,
    /// MQTT 3: 2, MQTT 5: 0x85.
    BadClientId,
    /// A cap on the device's sessions. MQTT 3: 3 (server unavailable), MQTT 5: 0x97.
    QuotaExceeded,
}

/// What the front sends a device.
#[derive(Debug, Clone)]
pub(super) enum Outgoing {
    /// A packet from the broker (or the front) in MQTT 3.1.1 form.
    Packet(v4::Packet),
    /// CONNACK.
    ConnAck {
        /// The answer.
        code: ConnectCode,
        /// Whether a stored session was resumed.
        session_present: bool,
        /// Why (MQTT 5 reason string).
        reason: Option<String>,
    },
    /// PUBACK (QoS 1) or PUBREC (QoS 2) of a device's PUBLISH.
    Ack {
        /// Packet id.
        pkid: u16,
        /// QoS of the PUBLISH (1 or 2).
        qos: QoS,
        /// Refused: MQTT 5 reason code and string.
        refusal: Option<(Refusal, String)>,
    },
    /// An MQTT 5 response (request/response) straight from the front, QoS 0.
    Response {
        /// The device's response topic.
        topic: String,
        /// The answer.
        payload: Bytes,
        /// The device's correlation data.
        correlation: Option<Bytes>,
    },
    /// UNSUBACK of an UNSUBSCRIBE with `filters` filters (MQTT 5 has a reason per filter).
    UnsubAck {
        /// Packet id.
        pkid: u16,
        /// Filters in the UNSUBSCRIBE.
        filters: usize,
    },
    /// DISCONNECT with a reason (MQTT 5 only; MQTT 3 connections are just closed).
    Disconnect(v5::DisconnectReasonCode, String),
}

/// The server's side of CONNACK properties (MQTT 5).
#[derive(Debug, Clone, Default)]
pub(super) struct ServerLimits {
    /// Unacknowledged QoS 1/2 PUBLISHes a device may have (receive maximum).
    pub receive_max: u16,
    /// Largest packet the front takes, bytes.
    pub max_packet: u32,
    /// Keep-alive the server imposes, seconds, when it differs from the device's.
    pub server_keep_alive: Option<u16>,
    /// Client id the server assigned (the device sent an empty one).
    pub assigned_client_id: Option<String>,
}

/// Reads the CONNECT at the start of `buf` once it is complete (`Ok(None)`: more bytes needed).
/// `Err(Level)` is answered with CONNACK "unacceptable protocol version" in MQTT 3.1.1 form.
pub(super) fn read_connect(buf: &mut BytesMut, max: usize) -> Result<Option<Hello>, CodecError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    if first >> 4 != 1 {
        return Err(CodecError::NotConnect);
    }
    // remaining length: 1 to 4 bytes, high bit = more
    let Some(len_bytes) = buf[1..].iter().take(4).position(|b| b & 0x80 == 0).map(|p| p + 1) else {
        return if buf.len() > 5 { Err(CodecError::NotMqtt) } else { Ok(None) };
    };
    let start = 1 + len_bytes;
    let level = if buf.len() >= start + 9 && &buf[start..start + 8] == b"\0\x06MQIsdp" {
        3
    } else if buf.len() >= start + 7 && &buf[start..start + 6] == b"\0\x04MQTT" {
        buf[start + 6]
    } else if buf.len() >= start + 9 {
        return Err(CodecError::NotMqtt);
    } else {
        return Ok(None);
    };
    match level {
        3 => {
            let remaining = remaining_length(&buf[1..start]);
            if remaining < 12 {
                // name (8), level, flags, keep-alive (2): a shorter CONNECT is not one
                return Err(CodecError::NotMqtt);
            }
            if buf.len() < start + remaining {
                return Ok(None);
            }
            // MQIsdp/3 -> MQTT/4: the rest of a 3.1 CONNECT is laid out as in 3.1.1
            let body = buf.split_to(start + remaining).split_off(start + 9);
            let mut rewritten = BytesMut::with_capacity(body.len() + 12);
            rewritten.extend_from_slice(&[0x10]);
            encode_remaining_length(body.len() + 7, &mut rewritten);
            rewritten.extend_from_slice(b"\0\x04MQTT\x04");
            rewritten.extend_from_slice(&body);
            match v4::Packet::read(&mut rewritten, max) {
                Ok(v4::Packet::Connect(connect)) => {
                    Ok(Some(Hello { version: Version::V31, connect, session_expiry: 0 }))
                }
                Ok(_) => Err(CodecError::NotConnect),
                Err(e) => Err(CodecError::Malformed(e)),
            }
        }
        4 => match v4::Packet::read(buf, max) {
            Ok(v4::Packet::Connect(connect)) => {
                Ok(Some(Hello { version: Version::V311, connect, session_expiry: 0 }))
            }
            Ok(_) => Err(CodecError::NotConnect),
            Err(Error4::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(CodecError::Malformed(e)),
        },
        5 => match v5::Packet::read(buf, Some(max as u32)) {
            Ok(v5::Packet::Connect(c, will, login)) => {
                let session_expiry =
                    c.properties.as_ref().and_then(|p| p.session_expiry_interval).unwrap_or(0);
                let connect = v4::Connect {
                    protocol: Protocol::V4,
                    keep_alive: c.keep_alive,
                    client_id: c.client_id,
                    // MQTT 5 keeps a session after the connection only with an expiry interval
                    clean_session: c.clean_start || session_expiry == 0,
                    last_will: will.map(|w| v4::LastWill {
                        topic: String::from_utf8_lossy(&w.topic).into_owned(),
                        message: w.message,
                        qos: qos4(w.qos),
                        retain: w.retain,
                    }),
                    login: login.map(|l| v4::Login { username: l.username, password: l.password }),
                };
                Ok(Some(Hello { version: Version::V5, connect, session_expiry }))
            }
            Ok(_) => Err(CodecError::NotConnect),
            Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(CodecError::Malformed5(e)),
        },
        other => Err(CodecError::Level(other)),
    }
}

fn remaining_length(bytes: &[u8]) -> usize {
    bytes.iter().rev().fold(0, |acc, b| (acc << 7) | usize::from(b & 0x7f))
}

fn encode_remaining_length(mut len: usize, out: &mut BytesMut) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.extend_from_slice(&[byte]);
        if len == 0 {
            break;
        }
    }
}

/// A device connection's codec state after CONNECT.
#[derive(Debug)]
pub(super) struct DeviceCodec {
    version: Version,
    max: usize,
    /// MQTT 5 topic aliases the device set.
    aliases: HashMap<u16, String>,
    limits: ServerLimits,
}

impl DeviceCodec {
    /// The codec for a device speaking `version`, taking packets up to `max` bytes.
    pub(super) fn new(version: Version, max: usize, limits: ServerLimits) -> Self {
        Self { version, max, aliases: HashMap::new(), limits }
    }

    /// Reads one packet from `buf` (`Ok(None)`: more bytes needed).
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let plain = |packet| Ok(Some(Incoming { packet, response: None, with_will: false }));
        if self.version != Version::V5 {
            return match v4::Packet::read(buf, self.max) {
                Ok(p) => plain(p),
                Err(Error4::InsufficientBytes(_)) => Ok(None),
                Err(e) => Err(CodecError::Malformed(e)),
            };
        }
        let packet = match v5::Packet::read(buf, Some(self.max as u32)) {
            Ok(p) => p,
            Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => return Ok(None),
            Err(e) => return Err(CodecError::Malformed5(e)),
        };
        match packet {
            v5::Packet::Publish(p) => {
                let mut topic = String::from_utf8_lossy(&p.topic).into_owned();
                let props = p.properties.unwrap_or_default();
                if let Some(alias) = props.topic_alias {
                    if alias == 0 || alias > TOPIC_ALIAS_MAX {
                        return Err(CodecError::TopicAlias(alias));
                    }
                    if topic.is_empty() {
                        topic = self.aliases.get(&alias).cloned().ok_or(CodecError::TopicAlias(alias))?;
                    } else {
                        self.aliases.insert(alias, topic.clone());
                    }
                }
                let publish = v4::Publish {
                    dup: p.dup,
                    qos: qos4(p.qos),
                    retain: p.retain,
                    topic,
                    pkid: p.pkid,
                    payload: p.payload,
                };
                let response = props.response_topic.map(|t| (t, props.correlation_data));
                Ok(Some(Incoming { packet: v4::Packet::Publish(publish), response, with_will: false }))
            }
            v5::Packet::Subscribe(s) => plain(v4::Packet::Subscribe(v4::Subscribe {
                pkid: s.pkid,
                filters: s
                    .filters
                    .into_iter()
                    .map(|f| v4::SubscribeFilter { path: f.path, qos: qos4(f.qos) })
                    .collect(),
            })),
            v5::Packet::Unsubscribe(u) => {
                plain(v4::Packet::Unsubscribe(v4::Unsubscribe { pkid: u.pkid, topics: u.filters }))
            }
            v5::Packet::PubAck(a) => plain(v4::Packet::PubAck(v4::PubAck { pkid: a.pkid })),
            v5::Packet::PubRec(a) => plain(v4::Packet::PubRec(v4::PubRec { pkid: a.pkid })),
            v5::Packet::PubRel(a) => plain(v4::Packet::PubRel(v4::PubRel { pkid: a.pkid })),
            v5::Packet::PubComp(a) => plain(v4::Packet::PubComp(v4::PubComp { pkid: a.pkid })),
            v5::Packet::PingReq(_) => plain(v4::Packet::PingReq),
            v5::Packet::Disconnect(d) => Ok(Some(Incoming {
                packet: v4::Packet::Disconnect,
                response: None,
                with_will: d.reason_code == v5::DisconnectReasonCode::DisconnectWithWillMessage,
            })),
            v5::Packet::Auth(_) => Err(CodecError::Auth),
            // server-to-client packets from a device: a protocol error
            _ => Err(CodecError::NotConnect),
        }
    }

    /// Writes `out` in the device's version into `buf`; `Ok(false)` when it has no form in
    /// that version (an MQTT 5 response or DISCONNECT to an MQTT 3 device).
    pub(super) fn encode(&mut self, out: Outgoing, buf: &mut BytesMut) -> Result<bool, CodecError> {
        let limit = self.max + 64;
        if self.version != Version::V5 {
            let packet = match out {
                Outgoing::Packet(p) => p,
                Outgoing::ConnAck { code, session_present, .. } => {
                    let code = match code {
                        ConnectCode::Accepted => v4::ConnectReturnCode::Success,
                        ConnectCode::BadUserNamePassword => v4::ConnectReturnCode::BadUserNamePassword,
                        ConnectCode::NotAuthorized | ConnectCode::Throttled => {
                            v4::ConnectReturnCode::NotAuthorized
                        }
                        ConnectCode::ServerBusy | ConnectCode::QuotaExceeded => {
                            v4::ConnectReturnCode::ServiceUnavailable
                        }
                        ConnectCode::BadClientId => v4::ConnectReturnCode::BadClientId,
                    };
                    // MQTT 3.1's CONNACK has no session-present flag (its first byte is reserved)
                    let session_present = session_present && self.version == Version::V311;
                    v4::Packet::ConnAck(v4::ConnAck { session_present, code })
                }
                Outgoing::Ack { pkid, qos: QoS::ExactlyOnce, .. } => v4::Packet::PubRec(v4::PubRec { pkid }),
                Outgoing::Ack { pkid, .. } => v4::Packet::PubAck(v4::PubAck { pkid }),
                Outgoing::UnsubAck { pkid, .. } => v4::Packet::UnsubAck(v4::UnsubAck { pkid }),
                Outgoing::Response { .. } | Outgoing::Disconnect(..) => return Ok(false),
            };
            packet.write(buf, limit).map_err(CodecError::Malformed)?;
            return Ok(true);
        }
        let packet = match out {
            Outgoing::Packet(p) => match self.to_v5(p) {
                Some(p) => p,
                None => return Ok(false),
            },
            Outgoing::ConnAck { code, session_present, reason } => {
                let l = &self.limits;
                let props = v5::ConnAckProperties {
                    receive_max: Some(l.receive_max),
                    max_qos: None, // QoS 2 publishes are taken (subscriptions are granted QoS 1)
                    retain_available: Some(1),
                    max_packet_size: Some(l.max_packet),
                    assigned_client_identifier: l.assigned_client_id.clone(),
                    topic_alias_max: Some(TOPIC_ALIAS_MAX),
                    reason_string: reason,
                    wildcard_subscription_available: Some(1),
                    subscription_identifiers_available: Some(0),
                    shared_subscription_available: Some(0),
                    server_keep_alive: l.server_keep_alive,
                    session_expiry_interval: None,
                    user_properties: Vec::new(),
                    response_information: None,
                    server_reference: None,
                    authentication_method: None,
                    authentication_data: None,
                };
                let code = match code {
                    ConnectCode::Accepted => v5::ConnectReturnCode::Success,
                    ConnectCode::BadUserNamePassword => v5::ConnectReturnCode::BadUserNamePassword,
                    ConnectCode::NotAuthorized => v5::ConnectReturnCode::NotAuthorized,
                    ConnectCode::Throttled => v5::ConnectReturnCode::ConnectionRateExceeded,
                    ConnectCode::ServerBusy => v5::ConnectReturnCode::ServerBusy,
                    ConnectCode::BadClientId => v5::ConnectReturnCode::ClientIdentifierNotValid,
                    ConnectCode::QuotaExceeded => v5::ConnectReturnCode::QuotaExceeded,
                };
                v5::Packet::ConnAck(v5::ConnAck { session_present, code, properties: Some(props) })
            }
            Outgoing::Ack { pkid, qos, refusal } => {
                let reason_string = refusal.as_ref().map(|(_, why)| why.clone());
                let code = refusal.map(|(r, _)| r);
                if qos == QoS::ExactlyOnce {
                    let reason = match code {
                        None => v5::PubRecReason::Success,
                        Some(Refusal::NotAuthorized) => v5::PubRecReason::NotAuthorized,
                        Some(Refusal::QuotaExceeded) => v5::PubRecReason::QuotaExceeded,
                        Some(Refusal::PayloadFormatInvalid) => v5::PubRecReason::PayloadFormatInvalid,
                        Some(Refusal::Unspecified) => v5::PubRecReason::UnspecifiedError,
                    };
                    let properties = reason_string
                        .map(|s| v5::PubRecProperties { reason_string: Some(s), user_properties: vec![] });
                    v5::Packet::PubRec(v5::PubRec { pkid, reason, properties })
                } else {
                    let reason = match code {
                        None => v5::PubAckReason::Success,
                        Some(Refusal::NotAuthorized) => v5::PubAckReason::NotAuthorized,
                        Some(Refusal::QuotaExceeded) => v5::PubAckReason::QuotaExceeded,
                        Some(Refusal::PayloadFormatInvalid) => v5::PubAckReason::PayloadFormatInvalid,
                        Some(Refusal::Unspecified) => v5::PubAckReason::UnspecifiedError,
                    };
                    let properties = reason_string
                        .map(|s| v5::PubAckProperties { reason_string: Some(s), user_properties: vec![] });
                    v5::Packet::PubAck(v5::PubAck { pkid, reason, properties })
                }
            }
            Outgoing::UnsubAck { pkid, filters } => v5::Packet::UnsubAck(v5::UnsubAck {
                pkid,
                reasons: vec![v5::UnsubAckReason::Success; filters.max(1)],
                properties: None,
            }),
            Outgoing::Response { topic, payload, correlation } => {
                let mut p = v5::Publish::new(topic, QoS5::AtMostOnce, payload, None);
                p.properties = Some(v5::PublishProperties {
                    correlation_data: correlation,
                    content_type: Some("application/json".into()),
                    ..Default::default()
                });
                v5::Packet::Publish(p)
            }
            Outgoing::Disconnect(reason_code, why) => v5::Packet::Disconnect(v5::Disconnect {
                reason_code,
                properties: Some(v5::DisconnectProperties {
                    reason_string: Some(why),
                    session_expiry_interval: None,
                    user_properties: Vec::new(),
                    server_reference: None,
                }),
            }),
        };
        packet.write(buf, Some(limit as u32)).map_err(CodecError::Malformed5)?;
        Ok(true)
    }

    /// An MQTT 3.1.1 packet from the broker in MQTT 5 form.
    fn to_v5(&self, packet: v4::Packet) -> Option<v5::Packet> {
        Some(match packet {
            v4::Packet::Publish(p) => {
                let mut out = v5::Publish::new(p.topic, qos5(p.qos), p.payload, None);
                out.dup = p.dup;
                out.retain = p.retain;
                out.pkid = p.pkid;
                v5::Packet::Publish(out)
            }
            v4::Packet::PubAck(a) => v5::Packet::PubAck(v5::PubAck::new(a.pkid, None)),
            v4::Packet::PubRec(a) => v5::Packet::PubRec(v5::PubRec::new(a.pkid, None)),
            v4::Packet::PubRel(a) => v5::Packet::PubRel(v5::PubRel::new(a.pkid, None)),
            v4::Packet::PubComp(a) => v5::Packet::PubComp(v5::PubComp::new(a.pkid, None)),
            v4::Packet::SubAck(a) => v5::Packet::SubAck(v5::SubAck {
                pkid: a.pkid,
                return_codes: a
                    .return_codes
                    .into_iter()
                    .map(|c| match c {
                        v4::SubscribeReasonCode::Success(q) => v5::SubscribeReasonCode::Success(qos5(q)),
                        v4::SubscribeReasonCode::Failure => v5::SubscribeReasonCode::NotAuthorized,
                    })
                    .collect(),
                properties: None,
            }),
            v4::Packet::UnsubAck(a) => v5::Packet::UnsubAck(v5::UnsubAck {
                pkid: a.pkid,
                reasons: vec![v5::UnsubAckReason::Success],
                properties: None,
            }),
            v4::Packet::PingResp => v5::Packet::PingResp(v5::PingResp),
            v4::Packet::ConnAck(_) | v4::Packet::Disconnect => return None,
            _ => return None,
        })
    }
}

fn qos4(q: QoS5) -> QoS {
    match q {
        QoS5::AtMostOnce => QoS::AtMostOnce,
        QoS5::AtLeastOnce => QoS::AtLeastOnce,
        QoS5::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos5(q: QoS) -> QoS5 {
    match q {
        QoS::AtMostOnce => QoS5::AtMostOnce,
        QoS::AtLeastOnce => QoS5::AtLeastOnce,
        QoS::ExactlyOnce => QoS5::ExactlyOnce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mosquitto_pub -V mqttv31 -i d1 -u u -P p`'s CONNECT.
    fn connect31() -> BytesMut {
        let mut body = b"\0\x06MQIsdp\x03\xc2\x00\x3c".to_vec();
        for field in [&b"d1"[..], b"u", b"p"] {
            body.extend_from_slice(&(field.len() as u16).to_be_bytes());
            body.extend_from_slice(field);
        }
        let mut out = BytesMut::from(&[0x10u8, body.len() as u8][..]);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn mqtt31_connect_is_read_as_311() {
        let mut whole = connect31();
        let mut partial = BytesMut::from(&whole[..10]);
        assert!(read_connect(&mut partial, 1024).unwrap().is_none(), "incomplete");
        let hello = read_connect(&mut whole, 1024).unwrap().unwrap();
        assert_eq!(hello.version, Version::V31);
        assert_eq!(hello.connect.client_id, "d1");
        assert_eq!(hello.connect.keep_alive, 60);
        assert_eq!(hello.connect.login.as_ref().map(|l| l.password.as_str()), Some("p"));
        assert!(whole.is_empty());
    }

    #[test]
    fn unknown_levels_and_garbage_are_refused() {
        let mut six = BytesMut::from(&b"\x10\x0c\0\x04MQTT\x06\x02\0\x3c\0\0"[..]);
        assert!(matches!(read_connect(&mut six, 1024), Err(CodecError::Level(6))));
        let mut http = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
        assert!(matches!(read_connect(&mut http, 1024), Err(CodecError::NotConnect)));
    }

    #[test]
    fn mqtt5_publish_with_alias_and_response_topic() {
        let mut codec = DeviceCodec::new(Version::V5, 4096, ServerLimits::default());
        let mut first = v5::Publish::new("devices/d1/messages", QoS5::AtLeastOnce, "{}", None);
        first.pkid = 1;
        first.properties = Some(v5::PublishProperties {
            topic_alias: Some(3),
            response_topic: Some("devices/d1/responses".into()),
            correlation_data: Some(Bytes::from_static(b"c1")),
            ..Default::default()
        });
        let mut second = v5::Publish::new("", QoS5::AtLeastOnce, "{}", None);
        second.pkid = 2;
        second.properties = Some(v5::PublishProperties { topic_alias: Some(3), ..Default::default() });
        let mut buf = BytesMut::new();
        v5::Packet::Publish(first).write(&mut buf, None).unwrap();
        v5::Packet::Publish(second).write(&mut buf, None).unwrap();
        let a = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(a.response, Some(("devices/d1/responses".into(), Some(Bytes::from_static(b"c1")))));
        let b = codec.decode(&mut buf).unwrap().unwrap();
        assert!(
            matches!(b.packet, v4::Packet::Publish(p) if p.topic == "devices/d1/messages" && p.pkid == 2)
        );
        let mut unknown = v5::Publish::new("", QoS5::AtMostOnce, "{}", None);
        unknown.properties = Some(v5::PublishProperties { topic_alias: Some(4), ..Default::default() });
        v5::Packet::Publish(unknown).write(&mut buf, None).unwrap();
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::TopicAlias(4))));
    }

    #[test]
    fn acks_carry_reasons_in_mqtt5_only() {
        let refusal = Some((Refusal::QuotaExceeded, "rate limit".to_string()));
        let ack = Outgoing::Ack { pkid: 7, qos: QoS::AtLeastOnce, refusal };
        let mut buf = BytesMut::new();
        DeviceCodec::new(Version::V311, 4096, ServerLimits::default()).encode(ack.clone(), &mut buf).unwrap();
        assert_eq!(&buf[..], b"\x40\x02\x00\x07");
        let mut buf = BytesMut::new();
        DeviceCodec::new(Version::V5, 4096, ServerLimits::default()).encode(ack, &mut buf).unwrap();
        match v5::Packet::read(&mut buf, None).unwrap() {
            v5::Packet::PubAck(a) => {
                assert_eq!(a.reason, v5::PubAckReason::QuotaExceeded);
                assert_eq!(a.properties.unwrap().reason_string.as_deref(), Some("rate limit"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// Arbitrary bytes and mutations of valid packets never panic the front's reader (a
    /// deterministic stand-in for a fuzzer: xorshift over 200,000 inputs).
    #[test]
    fn hostile_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seeds: Vec<Vec<u8>> =
            vec![connect31().to_vec(), b"\x10\x0c\0\x04MQTT\x05\x02\0\x3c\0\0".to_vec()];
        let mut publish = BytesMut::new();
        let mut p = v5::Publish::new("devices/d/messages", QoS5::ExactlyOnce, "{}", None);
        p.pkid = 9;
        v5::Packet::Publish(p).write(&mut publish, None).unwrap();
        seeds.push(publish.to_vec());
        for round in 0..200_000u32 {
            let mut input = if round % 2 == 0 {
                let len = (next() % 64) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let mut s = seeds[(next() % seeds.len() as u64) as usize].clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % s.len() as u64) as usize;
                    s[i] = next() as u8;
                }
                s
            };
            if round % 3 == 0 {
                input.insert(0, 0x10);
            }
            let _ = read_connect(&mut BytesMut::from(&input[..]), 4096);
            for version in [Version::V311, Version::V5] {
                let mut codec = DeviceCodec::new(version, 4096, ServerLimits::default());
                let mut buf = BytesMut::from(&input[..]);
                while let Ok(Some(_)) = codec.decode(&mut buf) {}
            }
        }
    }
}
