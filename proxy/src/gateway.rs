//! The JSON-RPC gateway: HTTP / HTTPS in front of the nodes.
//!
//! Each request is authenticated (client certificate, `Authorization: Bearer`, or Basic),
//! rate limited (global, then per caller), size limited, and every method in it (single call or
//! batch) is checked against the caller's role before it is forwarded to a healthy node.
//! Refusals are JSON-RPC error objects with a matching HTTP status:
//!
//! | HTTP | code   | when |
//! |------|--------|------|
//! | 401  | -32001 | no or wrong credentials (`WWW-Authenticate: Basic`) |
//! | 403  | -32004 | a method the role does not allow (EIP-1474 "method not supported") |
//! | 413  | -32600 | body larger than `http.max-body-bytes` |
//! | 429  | -32005 | over a rate limit (EIP-1474 "limit exceeded"; `Retry-After` in seconds) |
//! | 503  | -32603 | no node reachable |
//!
//! `GET /health` (liveness) and `GET /ready` (at least one node ready, else 503 with the
//! reason) report the nodes' readiness without credentials. `/warehouse/*` is the locker
//! API (see [`crate::warehouse`]), `/session` and `/things` the browser apps' API (see
//! [`crate::things`]), `GET /app/` the apps themselves ([`crate::app`]).

use crate::{
    auth::{Authenticator, Identity},
    bridge::Bridge,
    config::{DeviceConfig, ProxyConfig},
    guard::{Caps, LoginRefusal},
    tls,
    upstream::Upstream,
    warehouse::Warehouse,
};
use base64::Engine;
use bytes::Bytes;
use governor::{clock::Clock, DefaultDirectRateLimiter, DefaultKeyedRateLimiter, RateLimiter};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::{net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;

/// Shared state of the gateway.
pub struct Gateway {
    auth: Arc<Authenticator>,
    upstream: Arc<Upstream>,
    global: DefaultDirectRateLimiter,
    per_client: DefaultKeyedRateLimiter<String>,
    max_body: usize,
    limits: crate::config::LimitsConfig,
    /// Relayed JSON-RPC WebSockets (`ws-total`, `ws-per-caller`).
    ws_slots: Arc<Caps<String>>,
    warehouse: Option<Arc<Warehouse>>,
    /// The bridge (device shadows), when the proxy has `[mqtt]`.
    bridge: Option<Arc<Bridge>>,
    devices: Vec<DeviceConfig>,
    network: crate::things::NetworkInfo,
    /// MQTT sessions per device (a device holding one is online).
    device_sessions: Arc<Caps<String>>,
}

type Reply = Response<Full<Bytes>>;

impl Gateway {
    /// The gateway over `upstream` with the limits of `config`; `bridge` and `device_sessions`
    /// (the MQTT front's sessions per device) answer the things API ([`crate::things`]).
    pub fn new(
        config: &ProxyConfig,
        auth: Arc<Authenticator>,
        upstream: Arc<Upstream>,
        warehouse: Option<Arc<Warehouse>>,
        (bridge, device_sessions): (Option<Arc<Bridge>>, Arc<Caps<String>>),
    ) -> Arc<Self> {
        let l = &config.limits;
        Arc::new(Self {
            auth,
            upstream,
            global: RateLimiter::direct(crate::config::quota(l.global_rps, l.global_rps)),
            per_client: RateLimiter::keyed(crate::config::quota(l.client_rps, l.client_burst)),
            max_body: config.http.max_body_bytes,
            limits: l.clone(),
            ws_slots: Caps::new(l.ws_total, l.ws_per_caller, ("ws-total", "ws-per-caller")),
            warehouse,
            bridge,
            devices: config.devices.clone(),
            network: crate::things::NetworkInfo::of(config),
            device_sessions,
        })
    }

    /// Serves on `listener` (HTTPS when `tls` is given) until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
        let limits = self.limits.clone();
        tls::serve(listener, tls, "HTTP", &limits, move |stream, peer, cn| {
            self.clone().serve_connection(TokioIo::new(stream), peer, cn)
        })
        .await
    }

    async fn serve_connection<I>(self: Arc<Self>, io: I, peer: SocketAddr, cert_cn: Option<String>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let cert_cn = Arc::new(cert_cn);
        let service = hyper::service::service_fn(move |req| {
            let this = self.clone();
            let cn = cert_cn.clone();
            async move {
                let reply = if soketto::handshake::http::is_upgrade_request(&req) {
                    this.websocket(req, peer, cn.as_deref()).await
                } else {
                    this.handle(req, peer, cn.as_deref()).await
                };
                Ok::<_, std::convert::Infallible>(reply)
            }
        });
        // A client gets 30 s to send its request headers (slowloris).
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(30));
        if let Err(e) = builder.serve_connection(io, service).with_upgrades().await {
            tracing::debug!(%peer, error = %e, "HTTP connection ended");
        }
    }

    async fn identify(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
        cert_cn: Option<&str>,
    ) -> Result<Identity, Unidentified> {
        if let Some(id) = cert_cn.and_then(|cn| self.auth.by_cert(cn)) {
            return Ok(id);
        }
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Err("credentials required (Bearer token, Basic auth or a client certificate)".into());
        };
        let value = value.to_str().map_err(|_| "malformed Authorization header")?;
        if let Some(token) = value.strip_prefix("Bearer ") {
            return self.auth.by_token(token.trim()).ok_or("invalid bearer token".into());
        }
        if let Some(b64) = value.strip_prefix("Basic ") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| "malformed Basic credentials")?;
            let raw = String::from_utf8(raw).map_err(|_| "malformed Basic credentials")?;
            let (user, pass) = raw.split_once(':').ok_or("malformed Basic credentials")?;
            return self
                .auth
                .login(user, user.to_string(), pass.to_string(), peer.ip())
                .await
                .map_err(Unidentified::Refused)?
                .ok_or("invalid username or password".into());
        }
        Err("unsupported Authorization scheme (use Bearer or Basic)".into())
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr, cert_cn: Option<&str>) -> Reply {
        let path = req.uri().path().to_string();
        if req.method() == Method::GET && (path == "/health" || path == "/ready") {
            return self.health(path == "/ready");
        }
        if path == "/app" || path.starts_with("/app/") {
            if self.global.check().is_err() {
                return too_many(Value::Null, "the proxy is over its global request rate", 1);
            }
            return match *req.method() {
                Method::GET | Method::HEAD => crate::app::serve(&path[4..]),
                _ => crate::things::refusal(405, "use GET"),
            };
        }
        if req.method() == Method::OPTIONS {
            return cors(Response::builder().status(StatusCode::NO_CONTENT))
                .body(Full::default())
                .expect("static");
        }
        let things = path.strip_prefix("/things").filter(|r| r.is_empty() || r.starts_with('/'));
        let session = path == "/session";
        let api = session || things.is_some() || path == "/network" || path == "/cluster";
        if req.method() != Method::POST && !api {
            return error_reply(StatusCode::METHOD_NOT_ALLOWED, Value::Null, -32600, "use POST for JSON-RPC");
        }
        let method = req.method().clone();
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let id = match self.caller(&req, peer, cert_cn).await {
            Ok(id) => id,
            Err(reply) => return *reply,
        };
        if let Some(wait) = self.over_rate(&id) {
            return too_many(
                Value::Null,
                &format!("rate limit of {} exceeded", id.name),
                wait.as_secs().max(1),
            );
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            // Read and drop what the client is still sending (up to 4 x the limit, 10 s), so that
            // it reads the 413 instead of a reset in the middle of its upload.
            let mut body = req.into_body();
            let mut drained = 0usize;
            let drain = async {
                while let Some(Ok(frame)) = body.frame().await {
                    drained += frame.data_ref().map_or(0, |d| d.len());
                    if drained > 4 * self.max_body {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
            return self.too_large();
        }
        let body = match Limited::new(req.into_body(), self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return self.too_large(),
        };
        if let Some(rest) = path.strip_prefix("/warehouse/") {
            return self.warehouse(rest, &id, &body).await;
        }
        if session {
            return self.session(&method, &id, bearer.as_deref());
        }
        match (path.as_str(), &method) {
            ("/network", &Method::GET) => return self.network(),
            ("/cluster", &Method::GET) => return self.cluster(&id).await,
            ("/network" | "/cluster", _) => return crate::things::refusal(405, "use GET"),
            _ => {}
        }
        if let Some(rest) = things {
            return self.things(&method, rest, &id, &body).await;
        }
        if path != "/" {
            return error_reply(
                StatusCode::NOT_FOUND,
                Value::Null,
                -32600,
                &format!("no such endpoint {path}"),
            );
        }
        let parsed = match parse_json(&body) {
            Ok(v) => v,
            Err(reply) => return *reply,
        };
        if let Some((rid, why)) = self.refused_call(&id, &parsed) {
            return error_reply(StatusCode::FORBIDDEN, rid, -32004, &why);
        }
        let admin = self.auth.role(&id.role).is_some_and(|r| r.methods.iter().any(|m| m == "*"));
        match self.upstream.forward_as(body, admin).await {
            Ok((status, bytes)) => cors(Response::builder().status(status))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(bytes))
                .unwrap_or_else(|_| {
                    error_reply(StatusCode::BAD_GATEWAY, Value::Null, -32603, "bad node status")
                }),
            Err(e) => error_reply(StatusCode::SERVICE_UNAVAILABLE, Value::Null, -32603, &e.to_string()),
        }
    }

    /// The caller of a request (the global rate limit first), or the reply refusing it: 401,
    /// 429 (global rate, login throttled), 503 (password checks busy).
    pub(crate) async fn caller(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
        cert_cn: Option<&str>,
    ) -> Result<Identity, Box<Reply>> {
        if self.global.check().is_err() {
            return Err(Box::new(too_many(Value::Null, "the proxy is over its global request rate", 1)));
        }
        match self.identify(req, peer, cert_cn).await {
            Ok(id) => Ok(id),
            Err(Unidentified::Refused(LoginRefusal::Throttled { retry_after })) => {
                let message = LoginRefusal::Throttled { retry_after }.to_string();
                Err(Box::new(too_many(Value::Null, &message, retry_after.as_secs().max(1))))
            }
            Err(Unidentified::Refused(LoginRefusal::Busy)) => Err(Box::new(error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                Value::Null,
                -32603,
                &LoginRefusal::Busy.to_string(),
            ))),
            Err(Unidentified::Invalid(why)) => Err(Box::new(self.unauthorized(why))),
        }
    }

    /// 401 with `WWW-Authenticate: Basic`.
    pub(crate) fn unauthorized(&self, why: &str) -> Reply {
        let mut reply =
            error_reply(StatusCode::UNAUTHORIZED, Value::Null, -32001, &format!("unauthorized: {why}"));
        reply
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"fogchain\""));
        reply
    }

    /// Counts one request of `id` against its rate (`client-rps`, `client-burst`): `None`
    /// when within it, else how long until the next one may go.
    pub(crate) fn over_rate(&self, id: &Identity) -> Option<std::time::Duration> {
        let not_until = self.per_client.check_key(&id.name).err()?;
        Some(not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }

    /// The first method of a call or batch that `id`'s role does not allow: the id to answer
    /// with (null for a batch) and the message (`-32004`).
    pub(crate) fn refused_call(&self, id: &Identity, parsed: &Value) -> Option<(Value, String)> {
        let calls: Vec<&Value> = match parsed {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        calls.into_iter().find_map(|call| {
            let method = call.get("method").and_then(Value::as_str).unwrap_or("");
            if self.auth.may_call(id, method) {
                return None;
            }
            let rid =
                if parsed.is_array() { Value::Null } else { call.get("id").cloned().unwrap_or(Value::Null) };
            Some((rid, format!("method {method:?} is not allowed for role {:?}", id.role)))
        })
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.auth
    }

    pub(crate) fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub(crate) fn ws_slots(&self) -> &Arc<Caps<String>> {
        &self.ws_slots
    }

    pub(crate) fn max_body(&self) -> usize {
        self.max_body
    }

    pub(crate) fn bridge(&self) -> Option<&Arc<Bridge>> {
        self.bridge.as_ref()
    }

    pub(crate) fn network_info(&self) -> &crate::things::NetworkInfo {
        &self.network
    }

    pub(crate) fn devices(&self) -> &[DeviceConfig] {
        &self.devices
    }

    pub(crate) fn device_sessions(&self) -> &Arc<Caps<String>> {
        &self.device_sessions
    }

    async fn warehouse(&self, action: &str, id: &Identity, body: &[u8]) -> Reply {
        let Some(warehouse) = &self.warehouse else {
            return error_reply(
                StatusCode::NOT_FOUND,
                Value::Null,
                -32600,
                "warehouse release is not configured",
            );
        };
        if !self.auth.role(&id.role).is_some_and(|r| r.warehouse) {
            return error_reply(
                StatusCode::FORBIDDEN,
                Value::Null,
                -32004,
                &format!("role {:?} may not use the warehouse API", id.role),
            );
        }
        let request = match parse_json(body) {
            Ok(v) => v,
            Err(reply) => return *reply,
        };
        match warehouse.handle(action, id, request).await {
            Ok(v) => json_reply(StatusCode::OK, &v),
            Err(e) => json_reply(e.status(), &json!({"error": e.to_string()})),
        }
    }

    /// `GET /health` (liveness: 200 while the proxy serves) and `GET /ready` (readiness: 200
    /// when at least one node is ready, else 503 with the reason); both list the nodes'
    /// readiness as the proxy last checked it.
    fn health(&self, readiness: bool) -> Reply {
        let nodes: Vec<Value> = self
            .upstream
            .status()
            .into_iter()
            .map(|(url, healthy)| json!({"url": url, "healthy": healthy}))
            .collect();
        let ok = nodes.iter().any(|n| n["healthy"] == true);
        let mut body = json!({"ok": ok, "status": if ok { "ok" } else { "unavailable" }, "nodes": nodes});
        if !ok {
            body["reason"] = json!("no node is ready (GET /ready on every upstream node fails)");
        }
        let status = if ok || !readiness { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        json_reply(status, &body)
    }

    fn too_large(&self) -> Reply {
        error_reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            Value::Null,
            -32600,
            &format!("request body exceeds {} bytes", self.max_body),
        )
    }
}

pub(crate) fn cors(builder: hyper::http::response::Builder) -> hyper::http::response::Builder {
    builder
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "POST, GET, DELETE, OPTIONS")
}

/// The body as JSON, or a 400 with a JSON-RPC parse error (-32700).
fn parse_json(body: &[u8]) -> Result<Value, Box<Reply>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error_reply(StatusCode::BAD_REQUEST, Value::Null, -32700, &format!("parse error: {e}")))
    })
}

fn json_reply(status: StatusCode, v: &Value) -> Reply {
    cors(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("static headers")
}

pub(crate) fn error_reply(status: StatusCode, id: Value, code: i64, message: &str) -> Reply {
    json_reply(status, &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
}

/// Why a request has no identity: bad or missing credentials (401), or a login that was not
/// even checked (429 / 503, see [`crate::guard`]).
#[derive(Debug)]
enum Unidentified {
    Invalid(&'static str),
    Refused(LoginRefusal),
}

impl From<&'static str> for Unidentified {
    fn from(why: &'static str) -> Self {
        Self::Invalid(why)
    }
}

fn too_many(id: Value, message: &str, retry_after_secs: u64) -> Reply {
    metrics::counter!("fogchain_proxy_rate_limited_total", "source" => "http").increment(1);
    let mut r = error_reply(StatusCode::TOO_MANY_REQUESTS, id, -32005, message);
    if let Ok(v) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
