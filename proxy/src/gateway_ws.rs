//! JSON-RPC over WebSocket through the gateway: `eth_subscribe` for dapps and the browser apps,
//! with the same authentication, roles and limits as HTTP.
//!
//! A WebSocket upgrade (RFC 6455) on the gateway's port is authenticated like an HTTP request
//! (client certificate, `Authorization: Bearer` / `Basic`), or — since browsers cannot set
//! headers on a WebSocket — by a bearer token in the query string (`ws://host:8080/?token=…`).
//! The gateway then opens a WebSocket to a ready node (round robin, the nodes' admin token
//! added for roles allowing `"*"`) and relays messages both ways. Every request from the caller
//! is checked before it is forwarded: each method of a call or batch must be in the caller's
//! role (else the error `-32004`, as over HTTP, and nothing is forwarded), the caller's rate
//! limit applies per message (`-32005`), and a message over `max-body-bytes` closes the
//! connection. At most `[limits] ws-per-caller` connections per caller and `ws-total` in all
//! (each holds a connection to a node); beyond, the upgrade gets 429. Answers and subscription notifications from the node pass unchanged. When the
//! node goes away the caller's connection is closed; clients reconnect and subscribe again.

use crate::{auth::Identity, gateway::Gateway};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Largest message taken from a node, bytes (a block with its transactions, a log batch).
const NODE_MESSAGE_MAX: usize = 64 << 20;

/// Time to open the WebSocket to a node.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a relayed WebSocket ended.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("no node accepted a WebSocket: {0}")]
    NoNode(String),
    #[error("WebSocket: {0}")]
    Ws(#[from] soketto::connection::Error),
    #[error("upgrade: {0}")]
    Upgrade(#[from] hyper::Error),
}

impl Gateway {
    /// Answers a WebSocket upgrade request: 101 and a relay to a node, or the HTTP error.
    pub(crate) async fn websocket(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        cert_cn: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let token = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| t.to_string()));
        let id = match token {
            Some(t) => match self.auth().by_token(&t) {
                Some(id) => id,
                None => return self.unauthorized("invalid bearer token"),
            },
            None => match self.caller(&req, peer, cert_cn).await {
                Ok(id) => id,
                Err(reply) => return *reply,
            },
        };
        let slot = match self.ws_slots().admit(id.name.clone()) {
            Ok(slot) => slot,
            Err(cap) => {
                metrics::counter!("fogchain_proxy_rate_limited_total", "source" => "ws").increment(1);
                return crate::gateway::error_reply(
                    StatusCode::TOO_MANY_REQUESTS,
                    Value::Null,
                    -32005,
                    &format!("too many WebSocket connections ({cap})"),
                );
            }
        };
        let mut handshake = soketto::handshake::http::Server::new();
        let response = match handshake.receive_request(&req) {
            Ok(r) => r,
            Err(e) => {
                return crate::gateway::error_reply(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    -32600,
                    &format!("bad WebSocket upgrade: {e}"),
                )
            }
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            metrics::gauge!("fogchain_proxy_ws_connections").increment(1.0);
            if let Err(e) = this.relay(req, handshake, &id).await {
                tracing::debug!(%peer, caller = %id.name, error = %e, "JSON-RPC WebSocket ended");
            }
            metrics::gauge!("fogchain_proxy_ws_connections").decrement(1.0);
        });
        let (parts, ()) = response.into_parts();
        Response::from_parts(parts, Full::default())
    }

    async fn relay(
        &self,
        req: Request<Incoming>,
        handshake: soketto::handshake::http::Server,
        id: &Identity,
    ) -> Result<(), RelayError> {
        let admin = self.auth().role(&id.role).is_some_and(|r| r.methods.iter().any(|m| m == "*"));
        let (mut node_tx, mut node_rx) = self.node_socket(admin).await?;
        let upgraded = hyper::upgrade::on(req).await?;
        let mut builder = handshake.into_builder(TokioIo::new(upgraded).compat());
        builder.set_max_message_size(self.max_body());
        let (mut client_tx, mut client_rx) = builder.finish();
        let (to_client, mut to_client_rx) = tokio::sync::mpsc::channel::<String>(64);
        let writer = async {
            while let Some(text) = to_client_rx.recv().await {
                client_tx.send_text(&text).await?;
                client_tx.flush().await?;
            }
            Ok::<_, soketto::connection::Error>(())
        };
        let from_node = async {
            let mut message = Vec::new();
            loop {
                message.clear();
                node_rx.receive_data(&mut message).await?;
                let text = String::from_utf8_lossy(&message).into_owned();
                if to_client.send(text).await.is_err() {
                    return Ok::<_, soketto::connection::Error>(());
                }
            }
        };
        let from_client = async {
            let mut message = Vec::new();
            loop {
                message.clear();
                client_rx.receive_data(&mut message).await?;
                match self.admit_message(id, &message) {
                    Ok(()) => {
                        node_tx.send_text(String::from_utf8_lossy(&message)).await?;
                        node_tx.flush().await?;
                    }
                    Err(refusal) => {
                        if to_client.send(refusal.to_string()).await.is_err() {
                            return Ok::<_, soketto::connection::Error>(());
                        }
                    }
                }
            }
        };
        tokio::select! {
            r = writer => r?,
            r = from_node => r?,
            r = from_client => r?,
        }
        Ok(())
    }

    /// Checks one message from the caller: JSON, every method in the role, the rate limit.
    /// The refusal is the JSON-RPC error answer to send back instead of forwarding.
    fn admit_message(&self, id: &Identity, message: &[u8]) -> Result<(), Value> {
        let parsed: Value = serde_json::from_slice(message).map_err(|e| {
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}})
        })?;
        if let Some((rid, why)) = self.refused_call(id, &parsed) {
            return Err(json!({"jsonrpc": "2.0", "id": rid, "error": {"code": -32004, "message": why}}));
        }
        if self.over_rate(id).is_some() {
            metrics::counter!("fogchain_proxy_rate_limited_total", "source" => "ws").increment(1);
            let rid = if parsed.is_array() {
                Value::Null
            } else {
                parsed.get("id").cloned().unwrap_or(Value::Null)
            };
            let why = format!("rate limit of {} exceeded", id.name);
            return Err(json!({"jsonrpc": "2.0", "id": rid, "error": {"code": -32005, "message": why}}));
        }
        Ok(())
    }

    /// A WebSocket to the first node (in the upstream's order) that accepts one.
    async fn node_socket(
        &self,
        admin: bool,
    ) -> Result<
        (
            soketto::Sender<tokio_util::compat::Compat<tokio::net::TcpStream>>,
            soketto::Receiver<tokio_util::compat::Compat<tokio::net::TcpStream>>,
        ),
        RelayError,
    > {
        let mut last = String::from("no node configured");
        for url in self.upstream().ws_urls_in_order() {
            let Some(rest) = url.strip_prefix("ws://") else {
                last = format!("{url}: only ws:// nodes can be relayed");
                continue;
            };
            let (host, path) =
                rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
            let attempt = async {
                let stream = tokio::net::TcpStream::connect(host).await?;
                let _ = stream.set_nodelay(true);
                let mut client = soketto::handshake::Client::new(stream.compat(), host, &path);
                let bearer = self.upstream().admin_token().filter(|_| admin).map(|t| format!("Bearer {t}"));
                let headers: Vec<soketto::handshake::client::Header<'_>> = bearer
                    .as_deref()
                    .map(|v| soketto::handshake::client::Header {
                        name: "Authorization",
                        value: v.as_bytes(),
                    })
                    .into_iter()
                    .collect();
                client.set_headers(&headers);
                match client.handshake().await? {
                    soketto::handshake::ServerResponse::Accepted { .. } => {
                        let mut builder = client.into_builder();
                        builder.set_max_message_size(NODE_MESSAGE_MAX);
                        Ok(builder.finish())
                    }
                    other => Err(soketto::handshake::Error::Io(std::io::Error::other(format!("{other:?}")))),
                }
            };
            match tokio::time::timeout(NODE_CONNECT_TIMEOUT, attempt).await {
                Ok(Ok(pair)) => return Ok(pair),
                Ok(Err(e)) => last = format!("{url}: {e}"),
                Err(_) => last = format!("{url}: timed out"),
            }
        }
        Err(RelayError::NoNode(last))
    }
}
