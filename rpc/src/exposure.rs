//! Which JSON-RPC namespaces a caller may use, as geth's `--http.api` / `--ws.api`: a jsonrpsee
//! RPC middleware that answers a call outside them as geth answers an unknown method (-32601,
//! "the method X does not exist/is not available"), and geth's `rpc_modules`.
//!
//! `[rpc] api` (default `eth`, `net`, `web3`) is served to everyone; `[rpc] admin-api` (default
//! `admin`, `debug`, `txpool`, `raft`) to callers that present the admin token, and to everyone
//! when the server listens on a loopback address (every caller is then on the node's host).
//! HTTP and WebSocket share the port and so the lists. `admin_` and the `raft_` membership
//! methods also check the token themselves.

use crate::{metrics::KnownMethods, AdminAuthorized};
use jsonrpsee::{
    core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT},
    types::{ErrorObject, ErrorObjectOwned, Request},
    Extensions, MethodResponse,
};
use std::{collections::BTreeMap, future::Future, sync::Arc};

/// geth's code for an unknown (or switched-off) method (`fogchain_client::codes`).
pub const METHOD_NOT_FOUND_CODE: i32 = fogchain_client::codes::METHOD_NOT_FOUND as i32;

/// A JSON-RPC namespace: the part of a method name before the first `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// `eth_`: chain, state, transactions, filters, subscriptions.
    Eth,
    /// `net_`: network id, peers.
    Net,
    /// `web3_`: client version, sha3.
    Web3,
    /// `txpool_`: pool contents.
    Txpool,
    /// `debug_`: raw chain data and tracers.
    Debug,
    /// `raft_`: the node's Raft cluster and membership changes.
    Raft,
    /// `admin_`: node administration.
    Admin,
}

impl Namespace {
    /// Every namespace the node serves.
    pub const ALL: [Namespace; 7] = [
        Namespace::Eth,
        Namespace::Net,
        Namespace::Web3,
        Namespace::Txpool,
        Namespace::Debug,
        Namespace::Raft,
        Namespace::Admin,
    ];
    /// Served to everyone by default.
    pub const PUBLIC: [Namespace; 3] = [Namespace::Eth, Namespace::Net, Namespace::Web3];
    /// Served with the admin token (or on a loopback listener) by default.
    pub const PRIVILEGED: [Namespace; 4] =
        [Namespace::Admin, Namespace::Debug, Namespace::Txpool, Namespace::Raft];

    /// The method-name prefix (`eth`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Eth => "eth",
            Namespace::Net => "net",
            Namespace::Web3 => "web3",
            Namespace::Txpool => "txpool",
            Namespace::Debug => "debug",
            Namespace::Raft => "raft",
            Namespace::Admin => "admin",
        }
    }

    /// The namespace of `method`, if it is one of [`Namespace::ALL`].
    pub fn of(method: &str) -> Option<Namespace> {
        let prefix = method.split_once('_')?.0;
        Namespace::ALL.into_iter().find(|n| n.as_str() == prefix)
    }
}

/// The namespaces a server serves, to whom.
#[derive(Debug, Clone)]
pub struct Exposure {
    /// Served to every caller.
    pub public: Vec<Namespace>,
    /// Served to callers with the admin token, or to all on a loopback listener.
    pub privileged: Vec<Namespace>,
    /// The listener is on a loopback address.
    pub loopback: bool,
}

impl Default for Exposure {
    fn default() -> Self {
        Self {
            public: Namespace::PUBLIC.to_vec(),
            privileged: Namespace::PRIVILEGED.to_vec(),
            loopback: true,
        }
    }
}

impl Exposure {
    /// Whether a caller with these request extensions may call into `namespace`.
    fn allows(&self, namespace: Namespace, ext: &Extensions) -> bool {
        self.public.contains(&namespace)
            || (self.privileged.contains(&namespace)
                && (self.loopback || ext.get::<AdminAuthorized>().is_some()))
    }

    /// Whether the caller may call `method`: its namespace is served to it, or it is
    /// `rpc_modules`. Methods of no known namespace pass (the server answers them itself).
    fn allows_method(&self, method: &str, ext: &Extensions) -> bool {
        Namespace::of(method).is_none_or(|n| self.allows(n, ext))
    }

    /// geth's `rpc_modules` for this caller: `{"eth": "1.0", ...}`.
    fn modules(&self, ext: &Extensions) -> BTreeMap<&'static str, &'static str> {
        Namespace::ALL
            .into_iter()
            .filter(|n| self.allows(*n, ext))
            .map(|n| (n.as_str(), "1.0"))
            .chain([("rpc", "1.0")])
            .collect()
    }
}

/// geth's answer to a method that is unknown or switched off.
pub fn method_not_available(method: &str) -> ErrorObjectOwned {
    ErrorObject::owned(
        METHOD_NOT_FOUND_CODE,
        format!("the method {method} does not exist/is not available"),
        None::<()>,
    )
}

/// `rpc_modules`, answering with what [`Exposure`] gives the caller.
pub(crate) fn modules_method(
    exposure: Exposure,
) -> Result<jsonrpsee::RpcModule<Exposure>, jsonrpsee::core::RegisterMethodError> {
    let mut module = jsonrpsee::RpcModule::new(exposure);
    module.register_method("rpc_modules", |_, exposure, ext| {
        Ok::<_, ErrorObjectOwned>(exposure.modules(ext))
    })?;
    Ok(module)
}

/// The layer that adds [`ExposureService`].
#[derive(Debug, Clone)]
pub(crate) struct ExposureLayer {
    exposure: Arc<Exposure>,
    /// The methods the server has: others get geth's "does not exist" too.
    known: KnownMethods,
}

impl ExposureLayer {
    pub(crate) fn new(exposure: Exposure, known: KnownMethods) -> Self {
        Self { exposure: Arc::new(exposure), known }
    }

    fn refusal(&self, method: &str, ext: &Extensions) -> Option<ErrorObjectOwned> {
        (!self.known.contains(method) || !self.exposure.allows_method(method, ext))
            .then(|| method_not_available(method))
    }
}

impl<S> tower::Layer<S> for ExposureLayer {
    type Service = ExposureService<S>;
    fn layer(&self, service: S) -> Self::Service {
        ExposureService { service, layer: self.clone() }
    }
}

/// Refuses calls outside the caller's namespaces before they reach a method.
#[derive(Debug, Clone)]
pub(crate) struct ExposureService<S> {
    service: S,
    layer: ExposureLayer,
}

impl<S> RpcServiceT for ExposureService<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let refusal = self.layer.refusal(request.method_name(), request.extensions());
        let service = self.service.clone();
        async move {
            match refusal {
                Some(err) => MethodResponse::error(request.id, err),
                None => service.call(request).await,
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let Ok(BatchEntry::Call(request)) = entry else { continue };
            if let Some(err) = self.layer.refusal(request.method_name(), request.extensions()) {
                *entry = Err(BatchEntryErr::new(request.id.clone().into_owned(), err));
            }
        }
        self.service.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_the_token_and_the_listener() {
        let remote = Exposure { loopback: false, ..Default::default() };
        let anonymous = Extensions::new();
        let mut admin = Extensions::new();
        admin.insert(AdminAuthorized);
        assert!(remote.allows_method("eth_call", &anonymous));
        assert!(!remote.allows_method("debug_traceTransaction", &anonymous));
        assert!(remote.allows_method("debug_traceTransaction", &admin));
        assert!(Exposure::default().allows_method("txpool_status", &anonymous), "loopback serves all");
        let off = Exposure { public: vec![Namespace::Eth], privileged: vec![], loopback: true };
        assert!(!off.allows_method("web3_clientVersion", &admin));
        assert!(off.allows_method("rpc_modules", &anonymous));
        assert_eq!(
            remote.modules(&anonymous).keys().copied().collect::<Vec<_>>(),
            ["eth", "net", "rpc", "web3"]
        );
        assert_eq!(Namespace::of("eth_subscribe"), Some(Namespace::Eth));
        assert_eq!(Namespace::of("eth"), None);
        assert_eq!(
            method_not_available("debug_x").message(),
            "the method debug_x does not exist/is not available"
        );
    }
}
