//! `fogchain devnet --prometheus-config FILE`: a Prometheus scrape config for the devnet's
//! nodes and proxy, and next to it `fogchain-alerts.yml` (docs/alerts.yml, built in), which the
//! config loads as its rule file.

use fogchain_devnet::NetworkFile;
use std::path::Path;

/// The alert rules (docs/alerts.yml).
pub(crate) const ALERT_RULES: &str = include_str!("../../../docs/alerts.yml");

/// Writes the scrape config to `path` and the alert rules next to it.
pub(crate) fn write(path: &Path, network: &NetworkFile) -> std::io::Result<()> {
    let rules = path.with_file_name("fogchain-alerts.yml");
    std::fs::write(&rules, ALERT_RULES)?;
    std::fs::write(path, scrape_config(network, &rules))
}

/// Scrape interval of the generated config, seconds.
const SCRAPE_INTERVAL_SECS: u64 = 5;

/// The `host:port` of a `http://host:port/metrics` URL.
fn target(url: &str) -> Option<&str> {
    url.strip_prefix("http://")?.strip_suffix("/metrics")
}

/// prometheus.yml text: job `fogchain-node` (label `node` = node0, node1, …) and job
/// `fogchain-proxy`.
fn scrape_config(network: &NetworkFile, rules: &Path) -> String {
    let mut out = format!(
        "# Written by `fogchain devnet --prometheus-config`.\n\
         global:\n  scrape_interval: {SCRAPE_INTERVAL_SECS}s\n  evaluation_interval: {SCRAPE_INTERVAL_SECS}s\n"
    );
    out.push_str(&format!("rule_files:\n  - {:?}\n", rules.display().to_string()));
    out.push_str("scrape_configs:\n  - job_name: fogchain-node\n    static_configs:\n");
    for node in &network.nodes {
        if let Some(target) = node.metrics.as_deref().and_then(target) {
            out.push_str(&format!(
                "      - targets: [\"{target}\"]\n        labels: {{node: \"{}\"}}\n",
                node.name
            ));
        }
    }
    if let Some(target) = network.proxy.as_ref().and_then(|p| p.metrics.as_deref()).and_then(target) {
        out.push_str(&format!(
            "  - job_name: fogchain-proxy\n    static_configs:\n      - targets: [\"{target}\"]\n        labels: {{node: \"proxy\"}}\n"
        ));
    }
    out
}
