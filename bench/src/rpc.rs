//! A small async JSON-RPC 2.0 client over HTTP (reqwest): single calls and batches. Bodies and
//! answers are fogchain-client's (alloy-json-rpc types), as in the proxy and the tests.

use eyre::{eyre, WrapErr};
pub(crate) use fogchain_client::jsonrpc::quantity;
use fogchain_client::{jsonrpc, AnswerError};
use serde_json::Value;
use std::time::Duration;

/// One JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Rpc {
    client: reqwest::Client,
    url: String,
}

/// The result of one call of a batch, or its JSON-RPC error.
pub(crate) type CallResult = Result<Value, AnswerError>;

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

    /// POSTs a JSON-RPC body and returns the answer's bytes; `what` names it in errors.
    async fn post(&self, body: Vec<u8>, what: &str) -> eyre::Result<Vec<u8>> {
        self.client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .wrap_err_with(|| format!("{what} at {}", self.url))?
            .bytes()
            .await
            .map(Vec::from)
            .wrap_err_with(|| format!("{what} at {}: reading the answer", self.url))
    }

    /// Calls `method`; a JSON-RPC error becomes an error with its message.
    pub(crate) async fn call(&self, method: &str, params: Value) -> eyre::Result<Value> {
        let answer = self.post(jsonrpc::request(method, &params, 1), method).await?;
        jsonrpc::answer(&answer).map_err(|e| eyre!("{method}: {e}"))
    }

    /// Sends `calls` as one batch; answers come back in the order of `calls`.
    pub(crate) async fn batch(&self, calls: &[(&str, Value)]) -> eyre::Result<Vec<CallResult>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.raw_batch(jsonrpc::batch(calls), calls.len()).await
    }

    /// Sends an already built batch body of `n` calls (ids 0..n, from `jsonrpc::batch`).
    pub(crate) async fn raw_batch(&self, body: Vec<u8>, n: usize) -> eyre::Result<Vec<CallResult>> {
        let answer = self.post(body, &format!("batch of {n}")).await?;
        jsonrpc::batch_answers(&answer, n).map_err(|e| eyre!("batch of {n} at {}: {e}", self.url))
    }

    /// A quantity-valued call as u128.
    pub(crate) async fn quantity(&self, method: &str, params: Value) -> eyre::Result<u128> {
        let v = self.call(method, params).await?;
        quantity(&v).ok_or_else(|| eyre!("{method}: not a quantity: {v}"))
    }
}
