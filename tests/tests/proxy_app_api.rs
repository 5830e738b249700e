//! The browser apps' API on the proxy (docs/proxy.md, "Browser apps") against `fogchain devnet`:
//! `/app/` pages without credentials, login sessions (`POST`/`DELETE /session`), `/network`,
//! `/cluster`, `/things`, and shadows over HTTP:
//! an admin's update reaches the device over MQTT as a delta, a viewer's is refused (403), a
//! device reads only its own.

use fogchain_e2e::Devnet;
use serde_json::{json, Value};
use std::time::Duration;

struct Http {
    client: reqwest::blocking::Client,
    base: String,
}

impl Http {
    fn send(&self, method: reqwest::Method, path: &str, auth: &Auth, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        req = match auth {
            Auth::None => req,
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::Bearer(t) => req.bearer_auth(t),
        };
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }
}

enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

#[test]
fn sessions_things_and_shadows_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let http = Http {
        client: reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        base: net.proxy_http(),
    };
    let user = |name: &str| {
        let u = net.proxy().users.iter().find(|u| u.name == name).unwrap();
        Auth::Basic(u.name.clone(), u.password.clone())
    };
    use reqwest::Method;

    // the pages: no credentials, typed, with a content security policy
    let page = http.client.get(format!("{}/app/", http.base)).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    assert!(page.text().unwrap().contains("Dashboard"));
    assert_eq!(http.client.get(format!("{}/app/nope.js", http.base)).send().unwrap().status(), 404);

    // sessions
    assert_eq!(http.send(Method::POST, "/session", &Auth::None, None).0, 401);
    let (status, session) = http.send(Method::POST, "/session", &user("viewer"), None);
    assert_eq!((status, session["role"].as_str()), (200, Some("viewer")), "{session}");
    let viewer = Auth::Bearer(session["token"].as_str().unwrap().to_string());
    let (status, network) = http.send(Method::GET, "/network", &viewer, None);
    assert_eq!((status, network["chainId"].as_u64()), (200, Some(1337)), "{network}");
    assert_eq!(network["lockers"], json!(["locker-1"]));
    // a viewer reads the chain but sends nothing
    let call = |m: &str| json!({"jsonrpc": "2.0", "id": 1, "method": m, "params": []});
    assert_eq!(http.send(Method::POST, "/", &viewer, Some(call("eth_blockNumber"))).0, 200);
    assert_eq!(http.send(Method::POST, "/", &viewer, Some(call("eth_sendRawTransaction"))).0, 403);

    let (status, cluster) = http.send(Method::GET, "/cluster", &viewer, None);
    assert_eq!(status, 200, "{cluster}");
    let nodes = cluster["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["ready"] == true && n["term"].as_u64() >= Some(1)), "{cluster}");
    assert_eq!(nodes.iter().filter(|n| n["role"] == "minter").count(), 1, "one leader: {cluster}");

    // things: a connected device is online
    let sensor = net.device(0).clone();
    let device = net.mqtt_device(0);
    let delta_topic = format!("$fogchain/things/{}/shadow/update/delta", sensor.id);
    device.subscribe(&delta_topic);
    let (_, things) = http.send(Method::GET, "/things", &viewer, None);
    let me =
        things["things"].as_array().unwrap().iter().find(|t| t["id"] == sensor.id.as_str()).unwrap().clone();
    assert_eq!(me["online"], true, "{things}");

    // shadows: the viewer may not change one, an operator may, and the device hears the delta
    let path = format!("/things/{}/shadow", sensor.id);
    let update = json!({"state": {"desired": {"interval": 30}}});
    let (status, refused) = http.send(Method::POST, &path, &viewer, Some(update.clone()));
    assert_eq!(status, 403, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("admin role"), "{refused}");
    let (status, accepted) = http.send(Method::POST, &path, &user("operator"), Some(update));
    assert_eq!(status, 200, "{accepted}");
    device.wait_json(&delta_topic, Duration::from_secs(10), |d| d["state"]["interval"] == 30);
    let (_, doc) = http.send(Method::GET, &path, &viewer, None);
    assert_eq!(doc["state"]["desired"]["interval"], 30, "{doc}");
    assert_eq!(http.send(Method::GET, "/things/nobody/shadow", &viewer, None).0, 404);
    // a device reads its own shadow only
    let own = Auth::Basic(sensor.username.clone(), sensor.password.clone());
    assert_eq!(http.send(Method::GET, &path, &own, None).0, 200);
    assert_eq!(http.send(Method::GET, &format!("/things/{}/shadow", net.device(1).id), &own, None).0, 403);
    assert_eq!(http.send(Method::POST, "/session", &own, None).0, 403, "no sessions for devices");

    // (the session token on the gateway's WebSocket: tests/js/browser-apps.mjs, the dashboard's
    // live blocks)
    // ending the session ends the token
    assert_eq!(http.send(Method::DELETE, "/session", &viewer, None).0, 204);
    assert_eq!(http.send(Method::GET, "/network", &viewer, None).0, 401);
    net.stop();
}
