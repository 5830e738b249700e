//! The `/metrics` listener: HTTP/1.1, `GET /metrics` only, a bounded number of connections
//! (`[metrics] max-connections`, default [`MAX_CONNECTIONS`]; the rest are closed at once), a
//! 10 s limit on reading a request's headers.

use crate::{MetricsError, Registry};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

/// Default of the most connections served at once (Prometheus servers and operators; more are
/// closed).
pub const MAX_CONNECTIONS: usize = 16;

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` and serves `GET /metrics` from `registry`, at most `max_connections` at once,
/// until `cancel` fires; returns the bound address (port 0 picks a free port).
///
/// # Errors
/// [`MetricsError::Bind`] when the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    max_connections: usize,
    registry: Arc<Registry>,
    cancel: CancellationToken,
) -> Result<SocketAddr, MetricsError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| MetricsError::Bind { addr, source })?;
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    // Histogram samples wait in per-histogram buffers until upkeep folds them into buckets:
    // without scrapes they would grow with every sample.
    tokio::spawn({
        let (registry, cancel) = (registry.clone(), cancel.clone());
        async move {
            let mut every = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = every.tick() => registry.upkeep(),
                    () = cancel.cancelled() => break,
                }
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let socket = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(error) => {
                        tracing::debug!(%error, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = cancel.cancelled() => break,
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else { continue };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| answer(registry.clone(), request));
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(socket), service);
                if let Err(error) = connection.await {
                    tracing::trace!(%error, "metrics connection ended");
                }
                drop(permit);
            });
        }
    });
    Ok(bound)
}

async fn answer(
    registry: Arc<Registry>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let response = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(response(StatusCode::NOT_FOUND, "metrics are at /metrics\n".into()));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(response(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n".into()));
    }
    // Scrape hooks read storage: off the async workers.
    let text = match tokio::task::spawn_blocking(move || registry.render()).await {
        Ok(text) => text,
        Err(error) => return Ok(response(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n"))),
    };
    let mut ok = response(StatusCode::OK, text);
    ok.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(CONTENT_TYPE));
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scrapes_run_the_hooks_and_answer_in_the_text_format() {
        let registry = crate::install().unwrap();
        let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        registry.on_scrape({
            let scrapes = scrapes.clone();
            move || {
                let n = scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                metrics::gauge!("fogchain_test_scrapes").set(n as f64);
            }
        });
        metrics::histogram!("fogchain_test_latency_seconds").record(0.003);
        metrics::counter!("fogchain_test_events_total", "kind" => "a").increment(2);
        let cancel = CancellationToken::new();
        let addr = serve(([127, 0, 0, 1], 0).into(), MAX_CONNECTIONS, registry.clone(), cancel.clone())
            .await
            .unwrap();
        // A listener allowing one connection: a second one, while the first is open, is closed.
        let capped = serve(([127, 0, 0, 1], 0).into(), 1, registry.clone(), cancel.clone()).await.unwrap();
        let held = tokio::net::TcpStream::connect(capped).await.unwrap();
        let mut extra = tokio::net::TcpStream::connect(capped).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::io::AsyncReadExt::read(&mut extra, &mut byte),
        );
        assert!(matches!(read.await, Ok(Ok(0)) | Ok(Err(_))), "a connection over the cap was served");
        drop(held);
        let url = format!("http://{addr}/metrics");
        let first = reqwest::get(&url).await.unwrap();
        assert_eq!(first.headers()["content-type"], CONTENT_TYPE);
        let text = first.text().await.unwrap();
        assert!(text.contains("fogchain_test_scrapes 1"), "{text}");
        assert!(text.contains("fogchain_test_latency_seconds_bucket{le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("fogchain_test_events_total{kind=\"a\"} 2"), "{text}");
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        let second = reqwest::get(&url).await.unwrap().text().await.unwrap();
        assert!(second.contains("fogchain_test_scrapes 2"), "{second}");
        let other = reqwest::get(format!("http://{addr}/")).await.unwrap();
        assert_eq!(other.status(), 404);
        assert!(crate::install().is_err(), "one recorder per process");
        cancel.cancel();
    }
}
