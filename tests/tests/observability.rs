//! Observability on a 3-node devnet with the proxy: every `/metrics` output passes
//! `promtool check metrics`, the alert rules pass `promtool check rules`, and Debian's
//! `prometheus`, started with the scrape config `fogchain devnet --prometheus-config` writes,
//! sees under load the head rising on every node, one leader, RPC latency histograms and the
//! proxy's message counters moving. `--log-format json` gives one JSON object per line.

use fogchain_e2e::{
    free_port, repo_root,
    tx::{key, sign, transfer},
    wait_for, Devnet,
};
use serde_json::{json, Value};
use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

/// `promtool check metrics` on `text` (read from stdin); panics with its findings.
fn promtool_check_metrics(what: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on {what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the Prometheus server when the test ends, however it ends.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The result vector of an instant query.
fn query(api: &str, promql: &str) -> Vec<Value> {
    let answer: Value = reqwest::blocking::Client::new()
        .get(format!("{api}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .and_then(|r| r.json())
        .unwrap_or(Value::Null);
    answer["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn sample(v: &Value) -> f64 {
    v["value"][1].as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}

#[test]
fn prometheus_scrapes_a_devnet_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let scrape_config = dir.path().join("prometheus.yml");
    let devnet = Devnet::start_with(
        dir.path(),
        &["--prometheus-config", scrape_config.to_str().unwrap(), "--log-format", "json"],
    );
    let nodes: Vec<String> =
        devnet.network.nodes.iter().map(|n| n.metrics.clone().expect("node metrics url")).collect();
    let proxy = devnet.network.proxy.as_ref().and_then(|p| p.metrics.clone()).expect("proxy metrics url");

    // Load: transfers through every node, one registry message through the proxy.
    let sender = key(&devnet.account_key(0));
    let chain_id = devnet.network.chain_id;
    let mut hashes = Vec::new();
    for nonce in 0..6u64 {
        let rpc = devnet.rpc(nonce as usize % 3);
        let (raw, hash) =
            sign(&sender, transfer(chain_id, nonce, alloy_primitives::Address::repeat_byte(5), 1));
        rpc.call("eth_sendRawTransaction", json!([raw]));
        hashes.push(hash);
    }
    for hash in &hashes {
        devnet.rpc(0).wait_receipt(hash);
    }
    let sensor = devnet.mqtt_device(0);
    let id = devnet.device(0).id.clone();
    assert_eq!(sensor.subscribe(&format!("devices/{id}/acks")), vec![true]);
    let reading =
        json!({"Payload": {"CS": 640}, "Topic": "sensors/solar", "MessageContent": "reading", "Seq": 1});
    sensor.publish(&format!("devices/{id}/messages"), reading.to_string());
    sensor.wait_json(&format!("devices/{id}/acks"), Duration::from_secs(60), |a| a["status"] == "recorded");

    // Every exposition passes promtool and names what the issue lists.
    for (what, url) in nodes.iter().map(|u| ("a node", u)).chain([("the proxy", &proxy)]) {
        let text = reqwest::blocking::get(url.as_str()).unwrap().text().unwrap();
        promtool_check_metrics(what, &text);
        assert!(text.contains("process_resident_memory_bytes"), "{what}: {text}");
    }
    let node_text = reqwest::blocking::get(nodes[0].as_str()).unwrap().text().unwrap();
    for name in [
        "fogchain_chain_head_block",
        "fogchain_block_apply_seconds_bucket",
        "fogchain_raft_term",
        "fogchain_raft_commit_index",
        "fogchain_p2p_connected_members",
        "fogchain_txpool_admitted_total",
        "fogchain_rpc_request_duration_seconds_bucket",
        "fogchain_rocksdb_sst_bytes",
        "fogchain_datadir_free_bytes",
    ] {
        assert!(node_text.contains(name), "{name} missing from a node's /metrics");
    }
    let rules = repo_root().join("docs/alerts.yml");
    let out = Command::new("promtool").arg("check").arg("rules").arg(&rules).output().unwrap();
    assert!(out.status.success(), "promtool check rules: {}", String::from_utf8_lossy(&out.stdout));

    // Debian's Prometheus with the generated scrape config.
    let port = free_port();
    let server = Command::new("prometheus")
        .arg(format!("--config.file={}", scrape_config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (apt-get install prometheus)");
    let _server = Prometheus(server);
    let api = format!("http://127.0.0.1:{port}");
    let heads =
        |api: &str| -> Vec<f64> { query(api, "fogchain_chain_head_block").iter().map(sample).collect() };
    let first = wait_for("Prometheus to scrape the head of all three nodes", || {
        let h = heads(&api);
        (h.len() == 3).then_some(h)
    });
    // More load: the heads must rise in Prometheus.
    for nonce in 6..9u64 {
        let (raw, hash) =
            sign(&sender, transfer(chain_id, nonce, alloy_primitives::Address::repeat_byte(5), 1));
        devnet.rpc(1).call("eth_sendRawTransaction", json!([raw]));
        devnet.rpc(1).wait_receipt(&hash);
    }
    let low = first.iter().cloned().fold(f64::INFINITY, f64::min);
    wait_for("every node's head to rise in Prometheus", || {
        let h = heads(&api);
        (h.len() == 3 && h.iter().all(|x| *x > low)).then_some(())
    });
    wait_for("exactly one leader", || {
        let leaders = query(&api, "sum(fogchain_raft_role{role=\"leader\"})");
        (leaders.len() == 1 && sample(&leaders[0]) == 1.0).then_some(())
    });
    wait_for("RPC latency histograms", || {
        let buckets =
            query(&api, "fogchain_rpc_request_duration_seconds_bucket{method=\"eth_sendRawTransaction\"}");
        (!buckets.is_empty()).then_some(())
    });
    wait_for("the proxy's message counters", || {
        let recorded = query(&api, "fogchain_proxy_messages_total{status=\"recorded\"}");
        (recorded.len() == 1 && sample(&recorded[0]) >= 1.0).then_some(())
    });
    let up = query(&api, "up");
    assert_eq!(up.len(), 4, "{up:?}");
    assert!(up.iter().all(|u| sample(u) == 1.0), "{up:?}");

    // Health and readiness on the proxy's gateway port.
    let gateway = devnet.proxy_http();
    for path in ["/health", "/ready"] {
        let answer = reqwest::blocking::get(format!("{gateway}{path}")).unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.json::<Value>().unwrap()["status"], "ok", "{path}");
    }

    // --log-format json reached the nodes: their log lines are JSON objects.
    let log = std::fs::read_to_string(dir.path().join("node0/node.log")).unwrap();
    let committed = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "block committed")
        .expect("a JSON 'block committed' line");
    assert!(committed["number"].is_u64() && committed["hash"].is_string(), "{committed}");
    devnet.stop();
}
