//! The proxy's JSON-RPC gateway over HTTP against `fogchain devnet`: 401 without credentials,
//! 403 for a method outside the role, 413 over the size limit, bearer and Basic auth, batches,
//! and failover when a node behind the proxy is killed.

use fogchain_e2e::{kill, Devnet};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn post(url: &str, auth: Option<(&str, &str)>, bearer: Option<&str>, body: String) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut req = client.post(url).header("content-type", "application/json").body(body);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn call(method: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": []}).to_string()
}

#[test]
fn gateway_auth_roles_limits_and_failover() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let url = net.proxy_http();
    let token = net.proxy().token.as_str().to_string();
    let device = net.device(0);
    let basic = (device.id.as_str(), device.password.as_str());

    // No credentials, a wrong token, a wrong password: 401 with a JSON-RPC error.
    let (status, body) = post(&url, None, None, call("eth_chainId"));
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert_eq!(post(&url, None, Some("fgc_nope"), call("eth_chainId")).0, 401);
    assert_eq!(post(&url, Some((basic.0, "wrong")), None, call("eth_chainId")).0, 401);

    // A device (Basic auth) may call its allowlist...
    let (status, body) = post(&url, Some(basic), None, call("eth_chainId"));
    assert_eq!((status, body["result"].as_str()), (200, Some("0x539")), "{body}");
    // ...but not other methods: 403, also inside a batch.
    let (status, body) = post(&url, Some(basic), None, call("txpool_content"));
    assert_eq!(status, 403);
    assert_eq!((body["error"]["code"].as_i64(), body["id"].as_i64()), (Some(-32004), Some(7)), "{body}");
    let batch = format!("[{},{}]", call("eth_blockNumber"), call("raft_cluster"));
    assert_eq!(post(&url, Some(basic), None, batch.clone()).0, 403);
    // The admin token may call everything, batches included.
    let (status, body) = post(&url, None, Some(&token), batch);
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");

    // ...including the nodes' admin methods (the proxy holds the nodes' admin token).
    let (status, body) = post(&url, None, Some(&token), call("admin_nodeInfo"));
    assert_eq!(status, 200);
    assert!(body["result"].is_object(), "{body}");

    // Over the size limit (1 MiB): 413.
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"data": format!("0x{}", "00".repeat(600_000))}, "latest"]}).to_string();
    let (status, body) = post(&url, Some(basic), None, big);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], -32600);

    // A node killed behind the proxy is skipped: every request keeps succeeding.
    let pid = net.network.nodes[0].pid.unwrap() as i32;
    kill(pid, libc::SIGKILL);
    let killed = Instant::now();
    for _ in 0..30 {
        let (status, body) = post(&url, None, Some(&token), call("eth_blockNumber"));
        assert_eq!(status, 200, "{body}");
        assert!(body["result"].is_string(), "{body}");
    }
    // and the health report marks it down within a few seconds
    let health_url = format!("{url}/health");
    let node0 = net.rpc_url(0);
    loop {
        let health: Value = reqwest::blocking::get(&health_url).unwrap().json().unwrap();
        let down = health["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["url"] == node0.as_str() && n["healthy"] == false);
        if down {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "node0 still reported healthy: {health}");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("node0 reported down {:?} after the kill", killed.elapsed());

    // Rate limits: the proxy again with 1 request/s per caller (burst 3): 429, -32005, Retry-After.
    let _proxy =
        net.rerun_proxy("proxy-limited", |text| text + "\n[limits]\nclient-rps = 1\nclient-burst = 3\n");
    let client = reqwest::blocking::Client::new();
    let mut limited = None;
    for _ in 0..10 {
        let resp = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(call("eth_chainId"))
            .send()
            .unwrap();
        if resp.status().as_u16() == 429 {
            let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            limited = Some((retry, resp.json::<Value>().unwrap()));
            break;
        }
    }
    let (retry, body) = limited.expect("10 requests at once were never limited at 1/s with burst 3");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], -32005, "{body}");
    // another caller has its own bucket
    assert_eq!(post(&url, Some(basic), None, call("eth_chainId")).0, 200);
}
