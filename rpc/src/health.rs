//! `GET /health` and `GET /ready` on the RPC port, for load balancers, the proxy and operators.
//!
//! - `/health` (liveness): 200 while the Raft thread runs; 503 once it stopped on a fault (the
//!   process is about to exit, see `Node::failed`).
//! - `/ready` (readiness): 200 when the node can serve its chain now — the Raft thread runs, a
//!   leader is known, no block sync is under way, and the applied index is within
//!   [`READY_MAX_LAG`] entries of the commit index; else 503 with the reason.
//!
//! Both answer `{"status":"ok"}` or `{"status":"unavailable","reason":"..."}`. Other requests go
//! on to JSON-RPC.

use fogchain_consensus::{Consensus, NotReady};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

/// Most committed-but-unapplied Raft entries of a ready node.
pub const READY_MAX_LAG: u64 = 64;

/// HTTP middleware answering `/health` and `/ready`.
#[derive(Debug, Clone)]
pub struct HealthLayer {
    consensus: Arc<Consensus>,
}

impl HealthLayer {
    /// Over this node's consensus.
    pub fn new(consensus: Arc<Consensus>) -> Self {
        Self { consensus }
    }
}

impl<S> tower::Layer<S> for HealthLayer {
    type Service = Health<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Health { inner, consensus: self.consensus.clone() }
    }
}

/// The service of [`HealthLayer`].
#[derive(Debug, Clone)]
pub struct Health<S> {
    inner: S,
    consensus: Arc<Consensus>,
}

fn answer(result: Result<(), NotReady>) -> HttpResponse {
    let (status, body) = match result {
        Ok(()) => (hyper::StatusCode::OK, serde_json::json!({ "status": "ok" })),
        Err(reason) => (
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unavailable", "reason": reason.to_string() }),
        ),
    };
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

impl<S> tower::Service<HttpRequest> for Health<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let probe = matches!(*request.method(), hyper::Method::GET | hyper::Method::HEAD);
        let result = match request.uri().path() {
            "/health" if probe => Some(self.consensus.fault().map_or(Ok(()), |f| Err(NotReady::Stopped(f)))),
            "/ready" if probe => Some(self.consensus.readiness(READY_MAX_LAG)),
            _ => None,
        };
        match result {
            Some(result) => Box::pin(std::future::ready(Ok(answer(result)))),
            None => Box::pin(self.inner.call(request)),
        }
    }
}
