//! `raft_` and `admin_` namespaces (GoQuorum's method names and shapes) and their
//! authentication.
//!
//! Reading the Raft state (`raft_leader`, `raft_role`, `raft_cluster`) is open. Membership
//! changes (`raft_addPeer`, `raft_addLearner`, `raft_promoteToPeer`, `raft_removePeer`) and every
//! `admin_` method need `Authorization: Bearer <token>` with the node's `[rpc] admin-token`;
//! without a configured token they are disabled.

use crate::RpcError;
use jsonrpsee::{
    core::{async_trait, RpcResult},
    proc_macros::rpc,
    server::{HttpRequest, HttpResponse},
    types::ErrorObjectOwned,
    Extensions,
};
use serde_json::Value;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

/// What the RPC layer needs from the node's consensus.
#[async_trait]
pub trait ClusterApi: Send + Sync + 'static {
    /// PeerId of the current leader, or the error "no leader is currently elected".
    fn leader(&self) -> Result<String, String>;
    /// GoQuorum role: "minter" (leader), "verifier" (voter), "learner", or "" (none yet).
    fn role(&self) -> String;
    /// Members: `[{raftId, nodeId, p2p, address, role, nodeActive}]`.
    fn cluster(&self) -> Value;
    /// Adds a voter (`learner`: a learner) at `addr` (`/ip4/HOST/tcp/PORT/p2p/PEERID`); returns
    /// its Raft id.
    async fn add_peer(&self, addr: String, learner: bool) -> Result<u64, String>;
    /// Promotes a learner to a voter.
    async fn promote(&self, raft_id: u64) -> Result<(), String>;
    /// Removes a member.
    async fn remove_peer(&self, raft_id: u64) -> Result<(), String>;
    /// `admin_nodeInfo`.
    fn node_info(&self) -> Value;
    /// `admin_peers`.
    fn peers(&self) -> Value;
    /// Connected members.
    fn peer_count(&self) -> usize;
}

/// Marker put in a request's extensions when it carried the admin bearer token.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuthorized;

/// HTTP middleware: marks requests that carry the admin bearer token.
#[derive(Debug, Clone)]
pub struct AdminAuthLayer {
    token: Option<Arc<str>>,
}

impl AdminAuthLayer {
    /// With the node's admin token (`None`: admin methods disabled).
    pub fn new(token: Option<String>) -> Self {
        Self { token: token.filter(|t| !t.is_empty()).map(Into::into) }
    }
}

impl<S> tower::Layer<S> for AdminAuthLayer {
    type Service = AdminAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AdminAuth { inner, token: self.token.clone() }
    }
}

/// The service of [`AdminAuthLayer`].
#[derive(Debug, Clone)]
pub struct AdminAuth<S> {
    inner: S,
    token: Option<Arc<str>>,
}

/// Compares in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S> tower::Service<HttpRequest> for AdminAuth<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest) -> Self::Future {
        if let Some(token) = &self.token {
            let presented = request
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
                request.extensions_mut().insert(AdminAuthorized);
            }
        }
        Box::pin(self.inner.call(request))
    }
}

fn require_admin(ext: &Extensions) -> Result<(), ErrorObjectOwned> {
    if ext.get::<AdminAuthorized>().is_some() {
        Ok(())
    } else {
        Err(RpcError::Unauthorized.into())
    }
}

fn failed(message: String) -> ErrorObjectOwned {
    RpcError::Server(message).into()
}

/// `raft_` namespace (GoQuorum).
#[rpc(server, namespace = "raft")]
pub trait RaftApi {
    /// PeerId of the leader.
    #[method(name = "leader")]
    fn leader(&self) -> RpcResult<String>;
    /// "minter", "verifier", "learner" or "".
    #[method(name = "role")]
    fn role(&self) -> RpcResult<String>;
    /// The members.
    #[method(name = "cluster")]
    fn cluster(&self) -> RpcResult<Value>;
    /// Adds a voter; returns its Raft id. Needs the admin token.
    #[method(name = "addPeer", with_extensions)]
    async fn add_peer(&self, addr: String) -> RpcResult<u64>;
    /// Adds a learner; returns its Raft id. Needs the admin token.
    #[method(name = "addLearner", with_extensions)]
    async fn add_learner(&self, addr: String) -> RpcResult<u64>;
    /// Promotes a learner. Needs the admin token.
    #[method(name = "promoteToPeer", with_extensions)]
    async fn promote_to_peer(&self, raft_id: u64) -> RpcResult<bool>;
    /// Removes a member. Needs the admin token.
    #[method(name = "removePeer", with_extensions)]
    async fn remove_peer(&self, raft_id: u64) -> RpcResult<()>;
}

/// `admin_` namespace (geth shapes). Needs the admin token.
#[rpc(server, namespace = "admin")]
pub trait AdminApi {
    /// This node: id, name, enode-like p2p address, listen address, protocols.
    #[method(name = "nodeInfo", with_extensions)]
    fn node_info(&self) -> RpcResult<Value>;
    /// Connected members.
    #[method(name = "peers", with_extensions)]
    fn peers(&self) -> RpcResult<Value>;
}

/// Implementation of `raft_` and `admin_` over a [`ClusterApi`].
#[derive(Clone)]
pub struct ClusterRpc {
    cluster: Arc<dyn ClusterApi>,
}

impl std::fmt::Debug for ClusterRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRpc").finish()
    }
}

impl ClusterRpc {
    /// Over the node's consensus.
    pub fn new(cluster: Arc<dyn ClusterApi>) -> Self {
        Self { cluster }
    }
}

#[async_trait]
impl RaftApiServer for ClusterRpc {
    fn leader(&self) -> RpcResult<String> {
        self.cluster.leader().map_err(failed)
    }
    fn role(&self) -> RpcResult<String> {
        Ok(self.cluster.role())
    }
    fn cluster(&self) -> RpcResult<Value> {
        Ok(self.cluster.cluster())
    }
    async fn add_peer(&self, ext: &Extensions, addr: String) -> RpcResult<u64> {
        require_admin(ext)?;
        self.cluster.add_peer(addr, false).await.map_err(failed)
    }
    async fn add_learner(&self, ext: &Extensions, addr: String) -> RpcResult<u64> {
        require_admin(ext)?;
        self.cluster.add_peer(addr, true).await.map_err(failed)
    }
    async fn promote_to_peer(&self, ext: &Extensions, raft_id: u64) -> RpcResult<bool> {
        require_admin(ext)?;
        self.cluster.promote(raft_id).await.map_err(failed)?;
        Ok(true)
    }
    async fn remove_peer(&self, ext: &Extensions, raft_id: u64) -> RpcResult<()> {
        require_admin(ext)?;
        self.cluster.remove_peer(raft_id).await.map_err(failed)
    }
}

impl AdminApiServer for ClusterRpc {
    fn node_info(&self, ext: &Extensions) -> RpcResult<Value> {
        require_admin(ext)?;
        Ok(self.cluster.node_info())
    }
    fn peers(&self, ext: &Extensions) -> RpcResult<Value> {
        require_admin(ext)?;
        Ok(self.cluster.peers())
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
