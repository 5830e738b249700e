//! Prometheus metrics (and log output, [`logs`]) of a Fogchain node or proxy.
//!
//! Code records with the [`metrics`] facade (`metrics::counter!`, `gauge!`, `histogram!`), which
//! costs an atomic add once a recorder is installed and nothing before. A binary calls
//! [`install`] once: it sets `metrics-exporter-prometheus`'s recorder as the process's global
//! recorder with histogram buckets fitted to what Fogchain measures ([`buckets`]), and returns
//! a [`Registry`]. [`serve`] answers `GET /metrics` on its own listener (the `[metrics] addr`
//! key) in the Prometheus text format; each scrape first runs the registered scrape hooks
//! ([`Registry::on_scrape`], gauges read from state such as the head or the pool size, so the
//! hot path keeps no gauge up to date) and the process collector (`process_*`: RSS, CPU,
//! open file descriptors, from `metrics-process`).
//!
//! Names follow Prometheus conventions: a `fogchain_` prefix, the unit in the name
//! (`_seconds`, `_bytes`, `_gas`), `_total` on counters. docs/operations.md lists them all.

pub mod buckets;
pub mod catalog;
pub mod logs;
mod server;

pub use server::{serve, MAX_CONNECTIONS};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, Mutex};

/// Errors of the metrics subsystem.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The recorder could not be built or installed (a second `install` in one process).
    #[error("installing the metrics recorder: {0}")]
    Install(String),
    /// The listener could not bind.
    #[error("metrics listener on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
}

/// Counts one open thing (a connection, a session, a subscription) in a gauge while it lives:
/// the gauge goes up on [`Open::new`] and down on drop.
#[derive(Debug)]
pub struct Open(metrics::Gauge);

impl Open {
    /// Counts one more in `gauge` (from `metrics::gauge!`).
    pub fn new(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// A hook run before each scrape.
type ScrapeHook = Box<dyn Fn() + Send + Sync>;

/// The installed recorder, its scrape hooks and the process collector.
pub struct Registry {
    handle: PrometheusHandle,
    hooks: Mutex<Vec<ScrapeHook>>,
    process: metrics_process::Collector,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// Installs the Prometheus recorder as this process's global recorder.
///
/// # Errors
/// [`MetricsError::Install`] when a recorder is already installed.
pub fn install() -> Result<Arc<Registry>, MetricsError> {
    let mut builder = PrometheusBuilder::new();
    for (suffix, values) in buckets::BY_SUFFIX {
        builder = builder
            .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix((*suffix).into()), values)
            .map_err(|e| MetricsError::Install(e.to_string()))?;
    }
    let handle = builder.install_recorder().map_err(|e| MetricsError::Install(e.to_string()))?;
    let process = metrics_process::Collector::default();
    process.describe();
    Ok(Arc::new(Registry { handle, hooks: Mutex::new(Vec::new()), process }))
}

impl Registry {
    /// Runs `hook` before every scrape (to set gauges from current state).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(hook));
    }

    /// The current metrics in the Prometheus text format (version 0.0.4), after running the
    /// scrape hooks.
    pub fn render(&self) -> String {
        self.process.collect();
        for hook in self.hooks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            hook();
        }
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Folds the histogram samples recorded since the last upkeep into their buckets (bounded
    /// memory between scrapes; [`serve`] runs it every 5 s).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}
