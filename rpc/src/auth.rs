//! Authentication of the admin methods: a bearer token checked in HTTP middleware.
//!
//! Membership changes (`raft_addPeer`, `raft_addLearner`, `raft_promoteToPeer`,
//! `raft_removePeer`) and every `admin_` method need `Authorization: Bearer <token>` with the
//! node's `[rpc] admin-token`; without a configured token they are disabled.

use crate::RpcError;
use jsonrpsee::{
    server::{HttpRequest, HttpResponse},
    types::ErrorObjectOwned,
    Extensions,
};
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

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

pub(crate) fn require_admin(ext: &Extensions) -> Result<(), ErrorObjectOwned> {
    if ext.get::<AdminAuthorized>().is_some() {
        Ok(())
    } else {
        Err(RpcError::Unauthorized.into())
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
