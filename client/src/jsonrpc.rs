//! JSON-RPC 2.0 bodies and answers (spec: <https://www.jsonrpc.org/specification>), on
//! alloy-json-rpc's types.
//!
//! A body is built once as bytes ([`request`], [`batch`]); an answer's bytes decode into the
//! call's `result` or its error ([`answer`], [`batch_answers`]). Batches use ids `0..n`, so each
//! answer goes back to its call whatever order the server answers in (the spec allows any).

use alloy_json_rpc::{Id, Request, Response, ResponsePacket, ResponsePayload};
use serde_json::Value;

/// A JSON-RPC error object as the node sent it (geth's codes: -32000 for a rejected
/// transaction, 3 for a revert with its data, -32602 for bad params, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// The error message (geth's wording, e.g. `nonce too low: next nonce 5, tx nonce 3`).
    pub message: String,
    /// The error data (revert data as `0x` hex, ...), when any.
    pub data: Option<Value>,
}

/// Why an answer gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The node answered with a JSON-RPC error object.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The answer is not JSON-RPC 2.0 (or a batch lacks the answer to a call).
    #[error("malformed JSON-RPC answer: {0}")]
    Malformed(String),
}

/// The JSON of a request or batch; JSON values and strings always serialise.
fn to_bytes(body: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

/// The body of one call: `{"jsonrpc":"2.0","id":id,"method":method,"params":params}`.
pub fn request(method: &str, params: &Value, id: u64) -> Vec<u8> {
    to_bytes(&Request::new(method.to_string(), Id::Number(id), params))
}

/// The body of a batch of `calls` (method, params) with ids `0..calls.len()`.
pub fn batch(calls: &[(&str, Value)]) -> Vec<u8> {
    let requests: Vec<Request<&Value>> =
        calls.iter().zip(0u64..).map(|((m, p), id)| Request::new(m.to_string(), Id::Number(id), p)).collect();
    to_bytes(&requests)
}

/// The result of one answer, or its error.
pub fn answer(bytes: &[u8]) -> Result<Value, AnswerError> {
    let response: Response<Value, Value> =
        serde_json::from_slice(bytes).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    result(response.payload)
}

/// The results of a batch of `n` calls with ids `0..n`, in call order. An answer missing from
/// the batch is `Malformed`. A single error object instead of an array (the server refused the
/// whole batch, e.g. too large) is returned as the outer error.
pub fn batch_answers(bytes: &[u8], n: usize) -> Result<Vec<Result<Value, AnswerError>>, AnswerError> {
    let packet: ResponsePacket<Value, Value> =
        serde_json::from_slice(bytes).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    let responses = match packet {
        ResponsePacket::Batch(responses) => responses,
        ResponsePacket::Single(response) => {
            result(response.payload)?;
            return Err(AnswerError::Malformed("a single answer to a batch".into()));
        }
    };
    let mut out: Vec<Result<Value, AnswerError>> =
        (0..n).map(|_| Err(AnswerError::Malformed("no answer to this call in the batch".into()))).collect();
    for response in responses {
        if let Id::Number(id) = response.id {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = result(response.payload);
            }
        }
    }
    Ok(out)
}

fn result(payload: ResponsePayload<Value, Value>) -> Result<Value, AnswerError> {
    match payload {
        ResponsePayload::Success(v) => Ok(v),
        ResponsePayload::Failure(e) => {
            Err(RpcError { code: e.code, message: e.message.into_owned(), data: e.data }.into())
        }
    }
}

/// A JSON-RPC quantity (`"0x…"` hex, no leading zeros required) as u128.
pub fn quantity(v: &Value) -> Option<u128> {
    u128::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

/// A JSON-RPC quantity as u64 (block numbers, nonces, gas).
pub fn quantity_u64(v: &Value) -> Option<u64> {
    quantity(v)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_json_rpc_2() {
        let one: Value = serde_json::from_slice(&request("eth_chainId", &json!([]), 7)).unwrap();
        assert_eq!(one, json!({"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []}));
        let many: Value =
            serde_json::from_slice(&batch(&[("a", json!([1])), ("b", json!({"x": 2}))])).unwrap();
        assert_eq!(
            many,
            json!([
                {"jsonrpc": "2.0", "id": 0, "method": "a", "params": [1]},
                {"jsonrpc": "2.0", "id": 1, "method": "b", "params": {"x": 2}},
            ])
        );
    }

    #[test]
    fn answers_give_the_result_or_the_error_object() {
        assert_eq!(answer(br#"{"jsonrpc":"2.0","id":1,"result":"0x539"}"#), Ok(json!("0x539")));
        assert_eq!(
            answer(br#"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted","data":"0x08c3"}}"#),
            Err(AnswerError::Rpc(RpcError {
                code: 3,
                message: "execution reverted".into(),
                data: Some(json!("0x08c3"))
            }))
        );
        assert!(matches!(answer(b"<html>"), Err(AnswerError::Malformed(_))));
        assert!(matches!(answer(br#"{"jsonrpc":"2.0","id":1}"#), Err(AnswerError::Malformed(_))));
        assert_eq!(quantity(&json!("0x539")), Some(1337));
        assert_eq!(quantity(&json!("539")), None);
        assert_eq!(quantity_u64(&json!("0x10000000000000000")), None, "above u64");
    }

    #[test]
    fn batch_answers_come_back_in_call_order_whatever_the_server_order() {
        let bytes = br#"[{"jsonrpc":"2.0","id":2,"result":"c"},
            {"jsonrpc":"2.0","id":0,"error":{"code":-32000,"message":"nonce too low"}},
            {"jsonrpc":"2.0","id":9,"result":"stray"}]"#;
        let out = batch_answers(bytes, 3).unwrap();
        assert_eq!(out[0].as_ref().unwrap_err().to_string(), "nonce too low");
        assert!(matches!(out[1], Err(AnswerError::Malformed(_))), "id 1 had no answer");
        assert_eq!(out[2], Ok(json!("c")));
        let refused = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch too large"}}"#;
        assert_eq!(batch_answers(refused, 3).unwrap_err().to_string(), "batch too large");
    }
}
