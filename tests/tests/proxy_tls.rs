//! HTTPS and MQTT over TLS with X.509 client certificates from `fogchain proxy certs`, driven
//! by curl and Debian's mosquitto clients: the certificate's CN identifies the device (no
//! password), its role still applies, and a client without a certificate or credentials is
//! refused.

use fogchain_e2e::{fogchain_bin, Devnet};
use std::process::Command;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run a client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let certs = dir.path().join("certs");
    let (ok, text) = run(Command::new(fogchain_bin()).args(["proxy", "certs", "--out"]).arg(&certs).args([
        "--hosts",
        "localhost,127.0.0.1",
        "--devices",
        "sensor-1",
    ]));
    assert!(ok, "{text}");
    let pem = |name: &str| certs.join(name).display().to_string();

    // The devnet's proxy again, now with TLS on both listeners and client certificates.
    let tls = format!(
        "cert = \"{}\"\nkey = \"{}\"\nclient-ca = \"{}\"\n",
        pem("server.pem"),
        pem("server.key"),
        pem("ca.pem")
    );
    let _proxy = net.rerun_proxy("proxy-tls", |text| {
        text + &format!("\n[http.tls]\n{tls}\n[mqtt.tls]\n{tls}\n[limits]\ntls-handshake-timeout-ms = 1000\n")
    });
    let http_port = net.proxy_http().rsplit(':').next().unwrap().to_string();
    let mqtt_port = net.proxy_mqtt().rsplit(':').next().unwrap().to_string();
    let https = format!("https://localhost:{http_port}/");

    let curl = |cert: bool, method: &str| {
        let mut c = Command::new("curl");
        c.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert", &pem("ca.pem")]);
        if cert {
            c.args(["--cert", &pem("sensor-1.pem"), "--key", &pem("sensor-1.key")]);
        }
        c.args(["-H", "content-type: application/json", "-d"])
            .arg(format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":[]}}"#))
            .arg(&https);
        let (ok, text) = run(&mut c);
        assert!(ok, "curl failed: {text}");
        let (body, status) = text.trim_end().rsplit_once('\n').unwrap();
        (status.to_string(), body.to_string())
    };
    // The certificate authenticates sensor-1 ...
    let (status, body) = curl(true, "eth_chainId");
    assert_eq!(status, "200", "{body}");
    assert!(body.contains("\"0x539\""), "{body}");
    // ... with the device role's allowlist.
    assert_eq!(curl(true, "txpool_content").0, "403");
    // Without a certificate or credentials: 401.
    assert_eq!(curl(false, "eth_chainId").0, "401");

    // MQTT over TLS: the certificate alone authenticates the device.
    let tls_args = |c: &mut Command, cert: bool| {
        c.args(["-h", "localhost", "-p", &mqtt_port, "--cafile", &pem("ca.pem"), "-q", "1"]);
        if cert {
            c.args(["--cert", &pem("sensor-1.pem"), "--key", &pem("sensor-1.key")]);
        }
    };
    let mut sub = Command::new("mosquitto_sub");
    tls_args(&mut sub, true);
    sub.args(["-i", "tls-sub", "-t", "devices/sensor-1/acks", "-C", "2", "-W", "120"]);
    let subscriber = sub.stdout(std::process::Stdio::piped()).spawn().expect("mosquitto_sub");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let mut publish = Command::new("mosquitto_pub");
    tls_args(&mut publish, true);
    publish.args([
        "-i",
        "tls-pub",
        "-t",
        "devices/sensor-1/messages",
        "-m",
        r#"{"Payload": "tls", "Topic": "sensors/tls", "Seq": 1}"#,
    ]);
    let (ok, text) = run(&mut publish);
    assert!(ok, "{text}");
    let out = subscriber.wait_with_output().unwrap();
    let acks = String::from_utf8_lossy(&out.stdout);
    assert!(acks.contains(r#""status":"recorded""#), "acks: {acks}");
    // Without a certificate or password: refused.
    let mut anonymous = Command::new("mosquitto_pub");
    tls_args(&mut anonymous, false);
    anonymous.args(["-i", "tls-anon", "-t", "devices/sensor-1/messages", "-m", "{}"]);
    let (ok, text) = run(&mut anonymous);
    assert!(!ok && text.to_lowercase().contains("not authori"), "{text}");
    // A connection that never completes its TLS handshake is closed after
    // tls-handshake-timeout-ms (1 s here), on both listeners.
    for port in [&mqtt_port, &http_port] {
        let mut silent = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        silent.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        let started = std::time::Instant::now();
        let mut byte = [0u8; 1];
        let closed = matches!(std::io::Read::read(&mut silent, &mut byte), Ok(0) | Err(_));
        let waited = started.elapsed();
        assert!(
            closed && waited < std::time::Duration::from_secs(10),
            "port {port}: closed {closed} after {waited:?}"
        );
    }
}
