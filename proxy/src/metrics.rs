//! The proxy's Prometheus metrics (`[metrics] addr`).
//!
//! Counted where they happen: `fogchain_proxy_mqtt_connections` and
//! `fogchain_proxy_mqtt_auth_failures_total{reason}` (mqtt/front.rs),
//! `fogchain_proxy_connections_refused_total{listener,cap}` (tls.rs),
//! `fogchain_proxy_login_refused_total{reason}` (guard.rs), `fogchain_proxy_ws_connections`
//! (gateway_ws.rs), `fogchain_proxy_send_retries_total{reason}` (bridge),
//! `fogchain_proxy_journal_corrupt_records_total` (journal.rs),
//! `fogchain_proxy_messages_total{status}` (every ack a device gets: accepted, duplicate,
//! rejected, recorded, failed), `fogchain_proxy_messages_received_total{kind}` (registry,
//! action), `fogchain_proxy_record_seconds{kind}` and
//! `fogchain_proxy_decision_seconds` (accepted -> recorded / decision published),
//! `fogchain_proxy_rate_limited_total{source}` (HTTP and WebSocket callers, MQTT devices,
//! shadow requests),
//! `fogchain_proxy_upstream_request_seconds{node}`. Read at each scrape (here): the journal's
//! backlog and the age of its oldest unrecorded message, and each node's readiness.

use crate::{bridge::Bridge, tasks::Tasks, upstream::Upstream};
use metrics::gauge;
use std::{net::SocketAddr, sync::Arc};

/// Installs the recorder, registers the scrape-time gauges and serves `/metrics` on `addr`
/// until shutdown; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    max_connections: usize,
    upstream: &Arc<Upstream>,
    bridge: Option<Arc<Bridge>>,
    tasks: &Tasks,
) -> crate::Result<SocketAddr> {
    let registry = fogchain_metrics::install()?;
    fogchain_metrics::catalog::describe(fogchain_metrics::catalog::PROXY);
    let upstream = upstream.clone();
    registry.on_scrape(move || {
        for (url, ready) in upstream.status() {
            gauge!("fogchain_proxy_upstream_ready", "node" => url).set(if ready { 1.0 } else { 0.0 });
        }
        if let Some(bridge) = &bridge {
            let (backlog, oldest) = bridge.backlog();
            gauge!("fogchain_proxy_journal_backlog_messages").set(backlog as f64);
            gauge!("fogchain_proxy_journal_oldest_age_seconds").set(oldest.map_or(0.0, |d| d.as_secs_f64()));
        }
    });
    Ok(fogchain_metrics::serve(addr, max_connections, registry, tasks.token()).await?)
}
