//! RPC metrics, as a jsonrpsee RPC middleware: `fogchain_rpc_requests_total{method}`,
//! `fogchain_rpc_errors_total{method}` and `fogchain_rpc_request_duration_seconds{method}` for
//! every call (calls inside a batch are counted one by one; the batch's duration goes to
//! `fogchain_rpc_batch_duration_seconds`). The `method` label is one of the methods the server
//! serves or `unknown`, so a client sending made-up names cannot grow the label set.

use jsonrpsee::{
    core::middleware::{Batch, Notification, RpcServiceT},
    types::Request,
    MethodResponse,
};
use std::{collections::HashSet, future::Future, sync::Arc, time::Instant};

/// The method names a server serves (the only `method` label values besides `unknown`).
#[derive(Debug, Clone)]
pub(crate) struct KnownMethods(Arc<HashSet<&'static str>>);

impl KnownMethods {
    pub(crate) fn new(methods: &jsonrpsee::Methods) -> Self {
        Self(Arc::new(methods.method_names().collect()))
    }

    /// Whether the server has `method`.
    pub(crate) fn contains(&self, method: &str) -> bool {
        self.0.contains(method)
    }

    fn label(&self, method: &str) -> &'static str {
        self.0.get(method).copied().unwrap_or("unknown")
    }
}

/// The layer that adds [`RpcMetrics`].
#[derive(Debug, Clone)]
pub(crate) struct RpcMetricsLayer(pub(crate) KnownMethods);

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, service: S) -> Self::Service {
        RpcMetrics { service, known: self.0.clone() }
    }
}

/// Counts and times every call it passes on.
#[derive(Debug, Clone)]
pub(crate) struct RpcMetrics<S> {
    service: S,
    known: KnownMethods,
}

impl<S> RpcServiceT for RpcMetrics<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let method = self.known.label(request.method_name());
        let service = self.service.clone();
        async move {
            let started = Instant::now();
            let response = service.call(request).await;
            metrics::counter!("fogchain_rpc_requests_total", "method" => method).increment(1);
            if response.is_error() {
                metrics::counter!("fogchain_rpc_errors_total", "method" => method).increment(1);
            }
            metrics::histogram!("fogchain_rpc_request_duration_seconds", "method" => method)
                .record(started.elapsed().as_secs_f64());
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter().flatten() {
            let method = self.known.label(entry.method_name());
            metrics::counter!("fogchain_rpc_requests_total", "method" => method).increment(1);
        }
        let service = self.service.clone();
        async move {
            let started = Instant::now();
            let response = service.batch(batch).await;
            metrics::histogram!("fogchain_rpc_batch_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            response
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}
