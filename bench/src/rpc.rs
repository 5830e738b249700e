//! A small async JSON-RPC 2.0 client over HTTP (reqwest): single calls and batches.

use alloy_json_rpc::{Id, Request};
use eyre::{bail, eyre, WrapErr};
use serde_json::{json, Value};
use std::time::Duration;

/// One JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Rpc {
    client: reqwest::Client,
    url: String,
}

/// A JSON-RPC error object, or a transport failure, as text.
pub(crate) type CallResult = Result<Value, String>;

impl Rpc {
    /// An endpoint; requests time out after 120 s (a saturated node answers slowly, never not).
    pub(crate) fn new(url: &str) -> eyre::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self { client, url: url.to_string() })
    }

    /// The endpoint's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// POSTs a JSON-RPC body and parses the answer; `what` names it in errors.
    async fn post(&self, body: &Value, what: &str) -> eyre::Result<Value> {
        self.client
            .post(&self.url)
            .json(body)
            .send()
            .await
            .wrap_err_with(|| format!("{what} at {}", self.url))?
            .json()
            .await
            .wrap_err_with(|| format!("{what} at {}: answer is not JSON", self.url))
    }

    /// Calls `method`; a JSON-RPC error becomes an error with its message.
    pub(crate) async fn call(&self, method: &str, params: Value) -> eyre::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer = self.post(&body, method).await?;
        match answer.get("error") {
            Some(e) => bail!("{method}: {}", e.get("message").and_then(Value::as_str).unwrap_or("error")),
            None => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Sends `calls` as one batch; answers come back in the order of `calls`.
    pub(crate) async fn batch(&self, calls: &[(&str, Value)]) -> eyre::Result<Vec<CallResult>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.raw_batch(batch_body(calls)).await
    }

    /// Sends an already built batch body (an array of requests with ids 0..n).
    pub(crate) async fn raw_batch(&self, body: Value) -> eyre::Result<Vec<CallResult>> {
        let n = body.as_array().map_or(0, Vec::len);
        let answer = self.post(&body, &format!("batch of {n}")).await?;
        let Some(items) = answer.as_array() else {
            let message = answer["error"]["message"].as_str().unwrap_or("not an array").to_string();
            return Err(eyre!("batch of {n} at {}: {message}", self.url));
        };
        let mut out: Vec<CallResult> = vec![Err("no answer".into()); n];
        for item in items {
            let Some(id) = item.get("id").and_then(Value::as_u64).map(|i| i as usize) else { continue };
            if id >= n {
                continue;
            }
            out[id] = match item.get("error") {
                Some(e) => Err(e.get("message").and_then(Value::as_str).unwrap_or("error").to_string()),
                None => Ok(item.get("result").cloned().unwrap_or(Value::Null)),
            };
        }
        Ok(out)
    }

    /// A quantity-valued call as u128.
    pub(crate) async fn quantity(&self, method: &str, params: Value) -> eyre::Result<u128> {
        let v = self.call(method, params).await?;
        quantity(&v).ok_or_else(|| eyre!("{method}: not a quantity: {v}"))
    }
}

/// A JSON-RPC 2.0 batch of `calls` with ids 0..n (alloy-json-rpc's request type).
pub(crate) fn batch_body(calls: &[(&str, Value)]) -> Value {
    let requests: Vec<Request<&Value>> =
        calls.iter().zip(0u64..).map(|((m, p), id)| Request::new(m.to_string(), Id::Number(id), p)).collect();
    serde_json::to_value(requests).unwrap_or_default()
}

/// A JSON-RPC quantity (`"0x.."`) as u128.
pub(crate) fn quantity(v: &Value) -> Option<u128> {
    u128::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}
