//! The nodes behind the proxy: round-robin over healthy nodes, health checks, failover.
//!
//! A node is healthy when its last `GET /ready` (every `health-interval-ms`) answered 200: its
//! Raft thread runs, it knows a leader and has applied what is committed (a node that is
//! syncing, cut off from the leader or failed is skipped while others are ready). A
//! request that cannot reach a node (connect error, reset, timeout) marks it unhealthy at once and
//! is sent to the next one, so a dead node is skipped from the next request on, and the periodic
//! check brings it back when it answers again. JSON-RPC requests are safe to resend: reads are
//! idempotent, and a raw transaction resent to another node has the same hash.

use crate::config::UpstreamConfig;
use bytes::Bytes;
use fogchain_client::{jsonrpc, AnswerError, RpcError};
use serde_json::Value;
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No node answered.
    #[error("no node is reachable ({0})")]
    Unreachable(String),
    /// The node answered with a JSON-RPC error.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The answer was not JSON-RPC.
    #[error("bad answer from node: {0}")]
    BadAnswer(String),
}

/// A request to one node that got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {source}")]
struct SendError {
    url: String,
    source: reqwest::Error,
}

#[derive(Debug)]
struct Node {
    url: String,
    healthy: AtomicBool,
}

/// The pool of nodes.
#[derive(Debug)]
pub struct Upstream {
    nodes: Vec<Node>,
    next: AtomicUsize,
    http: reqwest::Client,
    ids: AtomicUsize,
    admin_token: Option<String>,
}

impl Upstream {
    /// A pool over `config.nodes` (all presumed healthy until checked) and its health checker.
    pub fn start(config: &UpstreamConfig, tasks: &crate::tasks::Tasks) -> crate::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let this = Arc::new(Self {
            nodes: config
                .nodes
                .iter()
                .map(|u| Node { url: u.clone(), healthy: AtomicBool::new(true) })
                .collect(),
            next: AtomicUsize::new(0),
            http,
            ids: AtomicUsize::new(1),
            admin_token: config.admin_token.clone(),
        });
        let weak = Arc::downgrade(&this);
        let period = Duration::from_millis(config.health_interval_ms.max(50));
        tasks.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(this) = weak.upgrade() else { return };
                this.check_health().await;
            }
        });
        Ok(this)
    }

    async fn check_health(&self) {
        let checks = self.nodes.iter().map(|n| {
            let req = self.http.get(format!("{}/ready", n.url.trim_end_matches('/')));
            async move {
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(2), req.send()).await,
                    Ok(Ok(r)) if r.status().is_success()
                );
                if ok != n.healthy.swap(ok, Ordering::Relaxed) {
                    if ok {
                        tracing::info!(node = %n.url, "node is back");
                    } else {
                        tracing::warn!(node = %n.url, "node is not ready (GET /ready)");
                    }
                }
            }
        });
        futures::future::join_all(checks).await;
    }

    /// `(url, healthy)` of every node.
    pub fn status(&self) -> Vec<(String, bool)> {
        self.nodes.iter().map(|n| (n.url.clone(), n.healthy.load(Ordering::Relaxed))).collect()
    }

    /// Node indices to try, healthy ones first in round-robin order, then the others.
    fn order(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let rotated = (0..n).map(|i| (start + i) % n);
        let (mut healthy, sick): (Vec<_>, Vec<_>) =
            rotated.partition(|i| self.nodes[*i].healthy.load(Ordering::Relaxed));
        healthy.extend(sick);
        healthy
    }

    /// Sends a JSON-RPC body as is; returns the node's HTTP status and body.
    pub async fn forward(&self, body: Bytes) -> Result<(u16, Bytes), UpstreamError> {
        self.forward_as(body, false).await
    }

    /// [`Self::forward`], with the nodes' admin token when `admin` (and one is configured).
    pub async fn forward_as(&self, body: Bytes, admin: bool) -> Result<(u16, Bytes), UpstreamError> {
        let mut last = String::new();
        for i in self.order() {
            match self.send_to(i, body.clone(), admin).await {
                Ok(answer) => return Ok(answer),
                Err(e) => last = e.to_string(),
            }
        }
        Err(UpstreamError::Unreachable(last))
    }

    /// Sends a JSON-RPC body to node `i`; a transport failure marks it unhealthy.
    async fn send_to(&self, i: usize, body: Bytes, admin: bool) -> Result<(u16, Bytes), SendError> {
        let node = &self.nodes[i];
        let mut request = self.http.post(&node.url).header("content-type", "application/json").body(body);
        if let (true, Some(token)) = (admin, &self.admin_token) {
            request = request.bearer_auth(token);
        }
        let started = std::time::Instant::now();
        let error = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(bytes) => {
                        metrics::histogram!("fogchain_proxy_upstream_request_seconds", "node" => node.url.clone())
                            .record(started.elapsed().as_secs_f64());
                        return Ok((status, bytes));
                    }
                    Err(source) => SendError { url: node.url.clone(), source },
                }
            }
            Err(source) => SendError { url: node.url.clone(), source },
        };
        if node.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(node = %node.url, %error, "node unreachable, failing over");
        }
        Err(error)
    }

    /// The WebSocket URL of each node (its `http(s)://` URL as `ws(s)://`: Fogchain serves
    /// both on one port).
    pub fn ws_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| match n.url.split_once("://") {
                Some(("https", rest)) => format!("wss://{rest}"),
                Some((_, rest)) => format!("ws://{rest}"),
                None => n.url.clone(),
            })
            .collect()
    }

    /// [`Self::ws_urls`] in the order requests would try the nodes (ready ones first, round
    /// robin).
    pub fn ws_urls_in_order(&self) -> Vec<String> {
        let urls = self.ws_urls();
        self.order().into_iter().map(|i| urls[i].clone()).collect()
    }

    /// The nodes' admin token, if configured.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Calls `method` and returns its result.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let (_, bytes) = self.forward(self.request(method, params)).await?;
        Ok(jsonrpc::answer(&bytes)?)
    }

    /// A JSON-RPC request body with a fresh id.
    fn request(&self, method: &str, params: Value) -> Bytes {
        let id = self.ids.fetch_add(1, Ordering::Relaxed) as u64;
        Bytes::from(jsonrpc::request(method, &params, id))
    }

    /// Calls `method` at every healthy node at once (at every node when none is healthy) and
    /// returns the first success, else the first JSON-RPC error, else `Unreachable`. Used for
    /// `eth_sendRawTransaction`: the Raft leader gets the transaction straight away instead of
    /// through a follower's forwarding, and a node that is down costs nothing. Requests are not
    /// cancelled when an answer wins.
    pub async fn call_all(self: &Arc<Self>, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let body = self.request(method, params);
        let mut targets: Vec<usize> =
            (0..self.nodes.len()).filter(|i| self.nodes[*i].healthy.load(Ordering::Relaxed)).collect();
        if targets.is_empty() {
            targets = (0..self.nodes.len()).collect();
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in targets.iter().copied() {
            let (this, body, tx) = (self.clone(), body.clone(), tx.clone());
            tokio::spawn(async move {
                let answer = match this.send_to(i, body, false).await {
                    Ok((_, bytes)) => jsonrpc::answer(&bytes).map_err(UpstreamError::from),
                    Err(e) => Err(UpstreamError::Unreachable(e.to_string())),
                };
                let _ = tx.send(answer);
            });
        }
        drop(tx);
        let (mut rpc_error, mut other) = (None, None);
        while let Some(answer) = rx.recv().await {
            match answer {
                Ok(v) => return Ok(v),
                Err(e @ UpstreamError::Rpc(_)) => {
                    rpc_error.get_or_insert(e);
                }
                Err(e) => {
                    other.get_or_insert(e);
                }
            }
        }
        Err(rpc_error.or(other).unwrap_or_else(|| UpstreamError::Unreachable("no node configured".into())))
    }

    /// The Raft and chain state of node `i` alone (`admin_nodeInfo` with the nodes' admin token,
    /// `net_peerCount`), for the dashboard: `(nodeInfo, peerCount)`.
    pub async fn node_status(&self, i: usize) -> Result<(Value, Value), UpstreamError> {
        let calls = [("admin_nodeInfo", Value::Array(vec![])), ("net_peerCount", Value::Array(vec![]))];
        let body = Bytes::from(jsonrpc::batch(&calls));
        let (_, bytes) =
            self.send_to(i, body, true).await.map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let mut answers = jsonrpc::batch_answers(&bytes, 2)?.into_iter();
        let info = answers.next().ok_or_else(|| UpstreamError::BadAnswer("no nodeInfo".into()))??;
        let peers = answers.next().ok_or_else(|| UpstreamError::BadAnswer("no peerCount".into()))??;
        Ok((info, peers))
    }

    /// Calls several methods in one JSON-RPC batch; results in request order.
    pub async fn batch(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, UpstreamError>>, UpstreamError> {
        self.batch_at(None, calls).await
    }

    /// [`Self::batch`] at node `node` (an index into the configured nodes), or at any healthy
    /// node when `None` or when that node fails.
    pub async fn batch_at(
        &self,
        node: Option<usize>,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, UpstreamError>>, UpstreamError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let body = Bytes::from(jsonrpc::batch(calls));
        let at = match node.filter(|i| *i < self.nodes.len()) {
            Some(i) => self.send_to(i, body.clone(), false).await.ok(),
            None => None,
        };
        let (_, bytes) = match at {
            Some(answer) => answer,
            None => self.forward(body).await?,
        };
        let answers = jsonrpc::batch_answers(&bytes, calls.len())?;
        Ok(answers.into_iter().map(|a| a.map_err(UpstreamError::from)).collect())
    }
}

impl From<AnswerError> for UpstreamError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::Rpc(e) => Self::Rpc(e),
            AnswerError::Malformed(why) => Self::BadAnswer(why),
        }
    }
}
