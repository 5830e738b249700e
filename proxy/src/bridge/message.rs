//! Device message formats: the forest-fire paper's registry (RM) and action (AM) messages.

use crate::journal::Body;
use alloy_primitives::{Address, Bytes};
use serde_json::Value;

/// Why a device message is refused: the `reason` of its `rejected` ack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not JSON.
    #[error("message is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("message must be a JSON object")]
    NotObject,
    /// `Seq` is not a positive integer below 2^63.
    #[error("Seq must be a positive integer below 2^63")]
    BadSeq,
    /// An action's `MessageContent.Address` is not an address.
    #[error("MessageContent.Address must be a 0x-prefixed contract address")]
    BadAddress,
    /// An action names a contract that is not one of the network's DangerIndex contracts
    /// (`[chain] danger-index`).
    #[error("MessageContent.Address {0} is not a DangerIndex of this network")]
    UnknownContract(Address),
    /// An action without `Values`.
    #[error("MessageContent.Values is required")]
    MissingValues,
    /// A value (`CS`, `P`) is missing.
    #[error("Values.{0} is required")]
    MissingValue(&'static str),
    /// A value is not a non-negative integer.
    #[error("Values.{0} must be a non-negative integer in hundredths (12.34 -> 1234)")]
    BadValue(&'static str),
    /// `H` is not 5 entries.
    #[error("Values.H must be 5 humidities (today and the 4 days before)")]
    BadHumidities,
    /// An entry of `H` is not a non-negative integer.
    #[error("Values.H must hold non-negative integers in hundredths")]
    BadHumidity,
    /// An action without `Publish_Topic`.
    #[error("MessageContent.Publish_Topic is required")]
    MissingPublishTopic,
    /// `Publish_Topic` is not a commands topic.
    #[error("Publish_Topic must be devices/<deviceId>/commands")]
    BadPublishTopic,
    /// `Publish_Topic` is the commands topic of a device this one may not command.
    #[error("this device may not command {0} (the proxy config lists the devices it may command)")]
    ForeignActuator(String),
    /// A reading without `Topic`.
    #[error("Topic (a string) is required")]
    MissingTopic,
    /// A reading without `Payload`.
    #[error("Payload is required")]
    MissingPayload,
    /// `Signature` is not 65 hex bytes.
    #[error("Signature must be 0x-prefixed 65 bytes (r, s, v)")]
    BadSignature,
    /// A signed reading without `Seq`.
    #[error("a signed reading needs its Seq")]
    SignedWithoutSeq,
    /// A signed reading whose `Payload` is not a string.
    #[error("a signed reading needs a string Payload (the signed bytes)")]
    SignedPayloadNotString,
}

/// Largest `Seq` a device may send (2^63 - 1).
pub(super) const MAX_SEQ: u64 = i64::MAX as u64;

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
/// An action is refused unless its contract is in `danger_index` and its `Publish_Topic` is
/// `devices/{target}/commands` with `may_command(target)`. Returns the optional seq and the
/// body, or why it is refused.
pub fn parse_message(
    payload: &[u8],
    may_command: impl Fn(&str) -> bool,
    danger_index: &[Address],
) -> Result<(Option<u64>, Body), MessageError> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let obj = v.as_object().ok_or(MessageError::NotObject)?;
    let seq = match obj.get("Seq") {
        None | Some(Value::Null) => None,
        // below 2^63: the proxy counts on from a device's last seq without overflow
        Some(s) => Some(s.as_u64().filter(|s| *s > 0 && *s <= MAX_SEQ).ok_or(MessageError::BadSeq)?),
    };
    let content = obj.get("MessageContent");
    if let Some((c, address)) = content.and_then(|c| Some((c, c.get("Address")?))) {
        let contract: Address =
            address.as_str().and_then(|a| a.parse().ok()).ok_or(MessageError::BadAddress)?;
        if !danger_index.contains(&contract) {
            return Err(MessageError::UnknownContract(contract));
        }
        let values = c.get("Values").and_then(Value::as_object).ok_or(MessageError::MissingValues)?;
        let int = |name: &'static str| -> Result<u64, MessageError> {
            let v = values.get(name).ok_or(MessageError::MissingValue(name))?;
            v.as_u64().ok_or(MessageError::BadValue(name))
        };
        let (cs, p) = (int("CS")?, int("P")?);
        let h = values
            .get("H")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 5)
            .ok_or(MessageError::BadHumidities)?;
        let mut hs = [0u64; 5];
        for (i, x) in h.iter().enumerate() {
            hs[i] = x.as_u64().ok_or(MessageError::BadHumidity)?;
        }
        let topic =
            c.get("Publish_Topic").and_then(Value::as_str).ok_or(MessageError::MissingPublishTopic)?;
        match topic.split('/').collect::<Vec<_>>().as_slice() {
            ["devices", target, "commands"] if may_command(target) => {}
            ["devices", target, "commands"] => return Err(MessageError::ForeignActuator(target.to_string())),
            _ => return Err(MessageError::BadPublishTopic),
        }
        return Ok((seq, Body::Action { contract, p, h: hs, cs, publish_topic: topic.to_string() }));
    }
    let topic = obj.get("Topic").and_then(Value::as_str).ok_or(MessageError::MissingTopic)?;
    let payload = obj.get("Payload").ok_or(MessageError::MissingPayload)?;
    let signature = match obj.get("Signature") {
        None | Some(Value::Null) => None,
        Some(s) => {
            let bytes = s
                .as_str()
                .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
                .filter(|b| b.len() == 65)
                .ok_or(MessageError::BadSignature)?;
            if seq.is_none() {
                return Err(MessageError::SignedWithoutSeq);
            }
            if !payload.is_string() {
                return Err(MessageError::SignedPayloadNotString);
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

    /// The device under test may command act-1.
    fn may(target: &str) -> bool {
        target == "act-1"
    }

    const DI: [Address; 1] = [Address::with_last_byte(7)];

    #[test]
    fn parses_the_papers_rm_and_am() {
        let (seq, body) = parse_message(
            br#"{"Payload": {"CS": 1000}, "Topic": "sensors/cs", "MessageContent": "reading"}"#,
            may,
            &DI,
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
        let (seq, body) = parse_message(am, may, &DI).unwrap();
        assert_eq!(seq, Some(4));
        assert!(matches!(body, Body::Action { p: 1000, cs: 10000, h: [5000, 5000, 5000, 5000, 5000], .. }));
    }

    #[test]
    fn refuses_bad_messages_with_a_reason() {
        let bad = |m: &str| parse_message(m.as_bytes(), may, &DI).unwrap_err().to_string();
        assert!(bad("nope").starts_with("message is not JSON"));
        assert_eq!(bad(r#"{"Payload": 1}"#), "Topic (a string) is required");
        assert!(bad(r#"{"MessageContent": {"Address": "0x0000000000000000000000000000000000000007", "Values": {"CS": 1.5, "P": 1, "H": [1,1,1,1,1]}, "Publish_Topic": "devices/act-1/commands"}}"#).contains("hundredths"));
        assert_eq!(
            bad(r#"{"Payload": "x", "Topic": "t", "Signature": "0x00"}"#),
            "Signature must be 0x-prefixed 65 bytes (r, s, v)"
        );
        assert_eq!(
            bad(r#"{"Seq": 18446744073709551615, "Payload": "x", "Topic": "t"}"#),
            MessageError::BadSeq.to_string()
        );
    }

    #[test]
    fn actions_only_to_listed_contracts_and_permitted_actuators() {
        let am = |address: &str, topic: &str| {
            format!(
                r#"{{"MessageContent": {{"Address": "{address}", "Values": {{"CS": 1, "P": 1, "H": [1,1,1,1,1]}}, "Publish_Topic": "{topic}"}}}}"#
            )
        };
        let listed = "0x0000000000000000000000000000000000000007";
        let err = |m: String, di: &[Address]| parse_message(m.as_bytes(), may, di).unwrap_err();
        assert!(
            matches!(err(am(listed, "devices/act-2/commands"), &DI), MessageError::ForeignActuator(t) if t == "act-2")
        );
        assert_eq!(err(am(listed, "devices/act-1/other"), &DI), MessageError::BadPublishTopic);
        let unlisted = "0x000000000000000000000000000000000000dEaD";
        assert!(matches!(err(am(unlisted, "devices/act-1/commands"), &DI), MessageError::UnknownContract(_)));
        // a proxy that lists no DangerIndex takes no action message at all
        assert!(matches!(err(am(listed, "devices/act-1/commands"), &[]), MessageError::UnknownContract(_)));
    }
}
