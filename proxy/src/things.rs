//! The HTTP API of the browser apps over things (devices) and login sessions, next to the
//! JSON-RPC gateway and with its authentication:
//!
//! | request | who | answer |
//! |---|---|---|
//! | `POST /session` | any client (not a device) | `{"token", "expiresIn" (s), "name", "role"}`: a bearer token for HTTP and `?token=` on WebSockets ([`crate::session`]) |
//! | `DELETE /session` | the session's bearer | 204 |
//! | `GET /network` | anyone authenticated | `{"chainId", "sensorRegistry", "dangerIndex": [...], "saleFactory", "lockers": [...]}` |
//! | `GET /cluster` | any client | `{"nodes": [{"url", "ready", "raftId", "role", "leader", "term", "commitIndex", "appliedIndex", "head", "peers"}]}`, each node asked directly (2 s) |
//! | `GET /things` | any client | `{"things": [{"id", "role", "commands", "online"}]}`; online = an MQTT session is open |
//! | `GET /things/{id}/shadow` | any client | the shadow document (AWS IoT's HTTP Device Shadow API), 404 when none |
//! | `POST /things/{id}/shadow` | role with `"*"` (admin) | the update's `accepted` document; the device gets `update/delta` over MQTT |
//! | `DELETE /things/{id}/shadow` | admin | `{"version", "timestamp"}` |
//!
//! Errors are AWS IoT's `{"code", "message"}` with the same HTTP status: 400 bad document,
//! 401 no credentials, 403 not allowed, 404, 409 version conflict, 413 too large, 429 rate.

use crate::{auth::Identity, gateway::Gateway, shadow::Rejection};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, Response, StatusCode};
use serde_json::{json, Value};

type Reply = Response<Full<Bytes>>;

/// The chain as the proxy's config names it (`GET /network`).
#[derive(Debug, Clone)]
pub(crate) struct NetworkInfo {
    pub(crate) chain_id: u64,
    pub(crate) sensor_registry: alloy_primitives::Address,
    pub(crate) danger_index: Vec<alloy_primitives::Address>,
    pub(crate) sale_factory: Option<alloy_primitives::Address>,
}

impl NetworkInfo {
    pub(crate) fn of(config: &crate::config::ProxyConfig) -> Self {
        Self {
            chain_id: config.chain.chain_id,
            sensor_registry: config.chain.sensor_registry,
            danger_index: config.chain.danger_index.clone(),
            sale_factory: config.warehouse.sale_factory,
        }
    }
}

/// A `{"code", "message"}` answer.
pub(crate) fn refusal(code: u16, message: &str) -> Reply {
    reply(
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        &json!({"code": code, "message": message}),
    )
}

fn reply(status: StatusCode, body: &Value) -> Reply {
    crate::gateway::cors(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::default()))
}

impl Gateway {
    /// `/session`: `POST` starts one for `id`, `DELETE` ends the one named by `bearer`.
    pub(crate) fn session(&self, method: &Method, id: &Identity, bearer: Option<&str>) -> Reply {
        if id.device {
            return refusal(403, "devices use MQTT or their own credentials, not sessions");
        }
        match *method {
            Method::POST => match self.auth().sessions.issue(id) {
                Ok((token, ttl)) => reply(
                    StatusCode::OK,
                    &json!({"token": token, "expiresIn": ttl.as_secs(), "name": id.name, "role": id.role}),
                ),
                Err(e) => refusal(429, &e.to_string()),
            },
            Method::DELETE => match bearer {
                Some(t) if self.auth().sessions.end(t) => {
                    crate::gateway::cors(Response::builder().status(204))
                        .body(Full::default())
                        .unwrap_or_else(|_| Response::new(Full::default()))
                }
                _ => refusal(404, "no such session"),
            },
            _ => refusal(405, "use POST or DELETE"),
        }
    }

    /// `GET /network`: what the apps need to know of the chain.
    pub(crate) fn network(&self) -> Reply {
        let n = self.network_info();
        reply(
            StatusCode::OK,
            &json!({"chainId": n.chain_id, "sensorRegistry": n.sensor_registry, "dangerIndex": n.danger_index,
                    "saleFactory": n.sale_factory,
                    "lockers": self.devices().iter().filter(|d| d.role == "locker").map(|d| &d.id).collect::<Vec<_>>()}),
        )
    }

    /// `GET /cluster`: every upstream node's readiness and Raft state, asked at once.
    pub(crate) async fn cluster(&self, id: &Identity) -> Reply {
        if id.device {
            return refusal(403, "not for devices");
        }
        let status = self.upstream().status();
        let asks = (0..status.len()).map(|i| async move {
            tokio::time::timeout(std::time::Duration::from_secs(2), self.upstream().node_status(i)).await
        });
        let answers = futures::future::join_all(asks).await;
        let nodes: Vec<Value> = status
            .into_iter()
            .zip(answers)
            .map(|((url, ready), answer)| match answer {
                Ok(Ok((info, peers))) => {
                    let raft = &info["protocols"]["raft"];
                    json!({"url": url, "ready": ready, "raftId": raft["raftId"], "role": raft["role"],
                           "leader": raft["leader"], "term": raft["term"], "commitIndex": raft["commitIndex"],
                           "appliedIndex": raft["appliedIndex"], "head": info["protocols"]["eth"]["number"],
                           "peers": peers})
                }
                Ok(Err(e)) => json!({"url": url, "ready": ready, "error": e.to_string()}),
                Err(_) => json!({"url": url, "ready": ready, "error": "no answer within 2 s"}),
            })
            .collect();
        reply(StatusCode::OK, &json!({ "nodes": nodes }))
    }

    /// `/things` and `/things/{id}/shadow` (`rest` is the path after `/things`).
    pub(crate) async fn things(&self, method: &Method, rest: &str, id: &Identity, body: &[u8]) -> Reply {
        if rest.is_empty() || rest == "/" {
            if id.device {
                return refusal(403, "devices may read only their own shadow");
            }
            if *method != Method::GET {
                return refusal(405, "use GET");
            }
            let things: Vec<Value> = self
                .devices()
                .iter()
                .map(|d| {
                    json!({"id": d.id, "role": d.role, "commands": d.commands,
                           "online": self.device_sessions().held(&d.id) > 0})
                })
                .collect();
            return reply(StatusCode::OK, &json!({ "things": things }));
        }
        let Some(thing) = rest.strip_prefix('/').and_then(|r| r.strip_suffix("/shadow")) else {
            return refusal(404, "no such resource (GET /things, /things/{id}/shadow)");
        };
        let op = match *method {
            Method::GET => "get",
            Method::POST => "update",
            Method::DELETE => "delete",
            _ => return refusal(405, "use GET, POST or DELETE"),
        };
        let admin = self.auth().role(&id.role).is_some_and(|r| r.methods.iter().any(|m| m == "*"));
        if id.device && (thing != id.name || op != "get") {
            return refusal(403, "a device may only read its own shadow over HTTP (it updates it over MQTT)");
        }
        if op != "get" && !admin {
            return refusal(403, &format!("changing a shadow needs the admin role, not {:?}", id.role));
        }
        let Some(bridge) = self.bridge() else {
            return refusal(404, "this proxy keeps no shadows (no [mqtt] section)");
        };
        match bridge.shadow_http(thing, op, body).await {
            Ok(doc) => reply(StatusCode::OK, &doc),
            Err(Rejection { code, message }) => refusal(code, &message),
        }
    }
}
