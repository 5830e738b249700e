//! A blocking MQTT 3.1.1 test client (rumqttc) and the proxy's process helpers.

use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// What the connection saw.
#[derive(Debug, Clone)]
pub enum MqttEvent {
    /// A message.
    Publish {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
    },
    /// SUBACK return codes (true = granted).
    SubAck(Vec<bool>),
    /// CONNACK success.
    Connected,
    /// The connection ended (refused, closed by the server, ...).
    Closed(String),
}

/// A device's MQTT connection.
pub struct Mqtt {
    /// The client (publish / subscribe).
    pub client: Client,
    rx: mpsc::Receiver<MqttEvent>,
    /// PUBLISH packets sent and PUBACKs received so far (diagnostics).
    pub counters: std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]>,
}

/// `host:port` of a `mqtt://host:port` URL.
pub fn host_port(url: &str) -> (String, u16) {
    let hp = url.trim_start_matches("mqtt://");
    let (h, p) = hp.rsplit_once(':').expect("host:port");
    (h.to_string(), p.parse().expect("port"))
}

impl Mqtt {
    /// Connects (clean session) as `client_id` with optional `(username, password)`; does not wait
    /// for the CONNACK (see [`Self::wait_connected`]).
    pub fn connect(url: &str, client_id: &str, credentials: Option<(&str, &str)>) -> Self {
        Self::connect_with_will(url, client_id, credentials, None)
    }

    /// [`Self::connect`] with a last will `(topic, payload)`.
    pub fn connect_with_will(
        url: &str,
        client_id: &str,
        credentials: Option<(&str, &str)>,
        will: Option<(&str, &str)>,
    ) -> Self {
        let (host, port) = host_port(url);
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(256 * 1024, 256 * 1024);
        if let Some((u, p)) = credentials {
            options.set_credentials(u, p);
        }
        if let Some((topic, payload)) = will {
            options.set_last_will(rumqttc::LastWill::new(
                topic,
                payload.as_bytes().to_vec(),
                QoS::AtLeastOnce,
                false,
            ));
        }
        let (client, mut connection) = Client::new(options, 1000);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        connection.eventloop.set_network_options(network);
        let (tx, rx) = mpsc::channel();
        let counters: std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]> = Default::default();
        let c = counters.clone();
        std::thread::spawn(move || {
            for event in connection.iter() {
                let out = match event {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) => {
                        c[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        c[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        MqttEvent::Publish { topic: p.topic.clone(), payload: p.payload.to_vec() }
                    }
                    Ok(Event::Incoming(Packet::SubAck(s))) => MqttEvent::SubAck(
                        s.return_codes.iter().map(|c| matches!(c, SubscribeReasonCode::Success(_))).collect(),
                    ),
                    Ok(Event::Incoming(Packet::ConnAck(_))) => MqttEvent::Connected,
                    Ok(_) => continue,
                    Err(e) => {
                        let why = match &e {
                            ConnectionError::ConnectionRefused(code) => format!("refused: {code:?}"),
                            other => other.to_string(),
                        };
                        let _ = tx.send(MqttEvent::Closed(why));
                        return;
                    }
                };
                if tx.send(out).is_err() {
                    return;
                }
            }
        });
        Self { client, rx, counters }
    }

    /// Connects and waits for the CONNACK; panics if refused.
    pub fn device(url: &str, client_id: &str, username: &str, password: &str) -> Self {
        let m = Self::connect(url, client_id, Some((username, password)));
        match m.next(Duration::from_secs(60)) {
            Some(MqttEvent::Connected) => m,
            other => panic!("{username} could not connect: {other:?}"),
        }
    }

    /// The next event within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<MqttEvent> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Subscribes (QoS 1) and returns the SUBACK codes.
    pub fn subscribe(&self, filter: &str) -> Vec<bool> {
        self.client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        loop {
            match self.next(Duration::from_secs(60)) {
                Some(MqttEvent::SubAck(codes)) => return codes,
                Some(MqttEvent::Closed(why)) => panic!("closed while subscribing: {why}"),
                None => panic!("no SUBACK for {filter}"),
                _ => {}
            }
        }
    }

    /// Publishes `payload` with QoS 1.
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).unwrap();
    }

    /// Waits for a JSON message on `topic` for which `pred` holds (others are skipped).
    pub fn wait_json(&self, topic: &str, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(MqttEvent::Publish { topic: t, payload }) if t == topic => {
                    let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                    if pred(&v) {
                        return v;
                    }
                }
                Some(MqttEvent::Closed(why)) => panic!("connection closed while waiting on {topic}: {why}"),
                Some(_) => {}
                None => panic!("nothing matching on {topic} within {timeout:?}"),
            }
        }
    }

    /// Waits until the server closes the connection; returns why.
    pub fn wait_closed(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Some(MqttEvent::Closed(why)) => return why,
                Some(_) => {}
                None => panic!("the connection stayed open for {timeout:?}"),
            }
        }
    }
}

/// A `fogchain proxy` process started by a test; SIGKILLed when dropped.
pub struct ProxyProcess {
    /// The process.
    pub child: Child,
}

impl ProxyProcess {
    /// Runs `fogchain proxy --config CONFIG` (appending to proxy.log beside it) and waits until
    /// it listens.
    pub fn start(config: &Path) -> Self {
        let dir = config.parent().unwrap().to_path_buf();
        let addr = dir.join("data/proxy.addr.json");
        let _ = std::fs::remove_file(&addr);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("proxy.log")).unwrap();
        let mut child = Command::new(crate::fogchain_bin())
            .args(["proxy", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start fogchain proxy");
        crate::wait_for("proxy listening", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("proxy exited with {status}: {}", tail(&dir.join("proxy.log")));
            }
            addr.exists().then_some(())
        });
        Self { child }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last 30 lines of a log file.
pub fn tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Hand-built MQTT 3.1.1 packets, for tests that must control every byte (DUP re-sends,
/// floods of CONNECTs).
pub mod raw {
    /// Appends MQTT's variable-length "remaining length" of `len`.
    pub fn remaining_length(mut len: usize, out: &mut Vec<u8>) {
        loop {
            let mut byte = (len % 128) as u8;
            len /= 128;
            if len > 0 {
                byte |= 0x80;
            }
            out.push(byte);
            if len == 0 {
                break;
            }
        }
    }

    /// Appends a length-prefixed MQTT string.
    pub fn string(s: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    /// A CONNECT with a clean session and keep-alive 60 s.
    pub fn connect(client_id: &str, user: &str, password: &str) -> Vec<u8> {
        let mut body = b"\0\x04MQTT\x04\xc2\x00\x3c".to_vec();
        for f in [client_id, user, password] {
            string(f, &mut body);
        }
        let mut packet = vec![0x10];
        remaining_length(body.len(), &mut packet);
        packet.extend(body);
        packet
    }
}
