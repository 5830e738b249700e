//! `seed-iot`: the forest-fire paper's experiment through a real Fogchain proxy.
//!
//! The bench starts its own proxy (`fogchain proxy`) next to a running devnet, with `--devices`
//! MQTT devices and a fresh gateway account that the devnet's operator (test account 0) adds to
//! SensorRegistry and DangerIndex. Devices (rumqttc, one connection each) publish, in turn,
//! registry messages (RM, the paper's format with a `Timestamp`) at each `--rm-rates` rate, then
//! action messages (AM) at `--am-rate`. Latencies are measured on the bench's monotonic clock
//! from the device's publish to: the `accepted` ack (journaled by the proxy), the `recorded` ack
//! (in a block), and for AMs the decision on the device's `Publish_Topic`.

use crate::chain::Target;
use crate::load::{slug, unix_now};
use crate::report::{cdf, line_chart, ms, timeline, Latency, RunResult, Table};
use alloy_primitives::{Address, U256};
use alloy_sol_types::SolCall;
use argon2::{password_hash::SaltString, Argon2, Params, PasswordHasher};
use clap::Args;
use eyre::{bail, eyre, WrapErr};
use fogchain_contracts::{DangerIndex, SensorRegistry};
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

/// Options of every bench that starts its own proxy ([`rig`]).
#[derive(Debug, Clone, Args)]
pub(crate) struct RigArgs {
    /// The devnet's network.json (nodes, contracts, chain id).
    #[arg(long, default_value = "devnet-data/network.json")]
    pub(crate) network: PathBuf,
    /// MQTT devices (one connection each).
    #[arg(long, default_value_t = 1000)]
    pub(crate) devices: usize,
    /// The `fogchain` binary that runs the proxy (default: next to this binary, else PATH).
    #[arg(long)]
    pub(crate) fogchain_bin: Option<PathBuf>,
    /// Name of the target in results.
    #[arg(long, default_value = "fogchain")]
    pub(crate) label: String,
    /// Directory for results, plots and report.md (the proxy's files go to `<out>/<bench>-proxy`).
    #[arg(long, default_value = "bench-results")]
    pub(crate) out: PathBuf,
}

/// Options of `seed-iot`.
#[derive(Debug, Clone, Args)]
pub(crate) struct IotArgs {
    #[command(flatten)]
    pub(crate) rig: RigArgs,
    /// Registry-message rates to test, messages/s.
    #[arg(long, value_delimiter = ',', default_value = "5,10,12.5")]
    rm_rates: Vec<f64>,
    /// Action-message rate, messages/s (0 skips the AM test).
    #[arg(long, default_value_t = 4.0)]
    am_rate: f64,
    /// Messages per rate (the paper: 1000 threads, one message each).
    #[arg(long, default_value_t = 1000)]
    messages: usize,
}

/// The forest-fire paper's figures (Table 2) for comparison: (type, rate, avg latency ms).
const PAPER: [(&str, f64, f64); 2] = [("RM", 12.5, 19.6), ("AM", 4.0, 53.1)];

/// Times of one message.
#[derive(Default, Clone, Copy)]
pub(crate) struct Times {
    pub(crate) sent: Option<Instant>,
    pub(crate) accepted: Option<Instant>,
    pub(crate) done: Option<Instant>,
    pub(crate) failed: bool,
}

/// What the devices saw, by message.
#[derive(Default)]
pub(crate) struct Shared {
    /// (device index, seq) -> times.
    pub(crate) messages: HashMap<(usize, u64), Times>,
    /// Device index -> seq of its outstanding AM (decisions carry no seq).
    am_outstanding: HashMap<usize, u64>,
    pub(crate) reasons: Vec<String>,
}

/// A proxy started for a bench next to a running devnet, with its devices connected.
pub(crate) struct Rig {
    pub(crate) target: Target,
    pub(crate) danger: Address,
    pub(crate) ids: Vec<String>,
    pub(crate) clients: Vec<AsyncClient>,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) child: tokio::process::Child,
    /// The proxy's directory, to start it again ([`spawn_proxy`]).
    pub(crate) dir: PathBuf,
}

/// Starts a proxy (files in `<out>/<name>-proxy`) for `args.rig.devices` MQTT devices on the devnet
/// of `args.network` with a fresh gateway account that the operator (test account 0) adds to
/// SensorRegistry and DangerIndex and funds, and connects the devices. `chain` is added to the
/// proxy config's `[chain]` section, `limits` to its `[limits]` section; the proxy's MQTT
/// listener is `mqtt_listen` (`127.0.0.1:0` for any port).
pub(crate) async fn rig(
    args: &RigArgs,
    name: &str,
    (chain, limits): (&str, &str),
    mqtt_listen: &str,
) -> eyre::Result<Rig> {
    let RigArgs { network, devices, fogchain_bin: fogchain, label, out } = args;
    let devices = *devices;
    let target = Target::connect(&[], network, Some(label.to_string()), 500).await?;
    let network = target.network.clone().ok_or_else(|| eyre!("{name} needs a devnet's network.json"))?;
    let registry =
        network.contract("SensorRegistry").ok_or_else(|| eyre!("network.json: no SensorRegistry"))?;
    let danger = network.contract("DangerIndex").ok_or_else(|| eyre!("network.json: no DangerIndex"))?;
    let dir = std::path::absolute(out.join(format!("{name}-proxy")))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let ids: Vec<String> = (0..devices).map(|i| format!("bench-{i:05}")).collect();
    let password = hex::encode(rand::random::<[u8; 16]>());
    // 1. the proxy's gateway account, allowed by the operator and funded
    let gateway = alloy_signer_local::PrivateKeySigner::random();
    std::fs::write(dir.join("gateway.key"), hex::encode(gateway.to_bytes()))?;
    let allow = [
        (
            "SensorRegistry.addGateway",
            registry,
            SensorRegistry::addGatewayCall { gateway: gateway.address() }.abi_encode(),
        ),
        (
            "DangerIndex.addGateway",
            danger,
            DangerIndex::addGatewayCall { gateway: gateway.address() }.abi_encode(),
        ),
    ];
    for (what, contract, input) in allow {
        target.admin_calls(what, contract, vec![input]).await?;
    }
    target.fund(std::slice::from_ref(&gateway), U256::from(100u128 * 10u128.pow(18))).await?;
    // 2. the proxy
    let sections = ProxySections { chain, limits, mqtt_listen };
    write_proxy_config(&dir, &network, &ids, &password, (registry, danger), sections)?;
    let bin = fogchain_bin(fogchain.as_deref())?;
    let mut child = spawn_proxy(&bin, &dir)?;
    let mqtt_addr = wait_proxy(&dir, &mut child).await?;
    eprintln!("proxy up: MQTT {mqtt_addr} ({} devices; log {})", ids.len(), dir.join("proxy.log").display());
    // 3. devices
    let shared = Arc::new(Mutex::new(Shared::default()));
    let clients = connect_devices(&ids, &password, &mqtt_addr, shared.clone()).await?;
    Ok(Rig { target, danger, ids, clients, shared, child, dir })
}

/// Starts `bin proxy --config <dir>/proxy.toml`, appending to `<dir>/proxy.log`; it is killed
/// when the handle drops.
pub(crate) fn spawn_proxy(bin: &Path, dir: &Path) -> eyre::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("proxy.log"))?;
    tokio::process::Command::new(bin)
        .arg("proxy")
        .arg("--config")
        .arg(dir.join("proxy.toml"))
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .wrap_err_with(|| format!("starting {} proxy", bin.display()))
}

/// Runs the test and returns its result.
pub(crate) async fn run(args: &IotArgs, command: String) -> eyre::Result<RunResult> {
    let Rig { target, danger, ids, clients, shared, mut child, .. } =
        rig(&args.rig, "seed-iot", ("", ""), "127.0.0.1:0").await?;
    let started_unix = unix_now();
    // 4. phases
    let mut rows = Vec::new();
    let mut data = Vec::new();
    let mut cdfs = Vec::new();
    let mut tputs = Vec::new();
    let mut seq = 0u64;
    let mut phases: Vec<(&str, f64)> = args.rm_rates.iter().map(|r| ("RM", *r)).collect();
    if args.am_rate > 0.0 {
        phases.push(("AM", args.am_rate));
    }
    for (kind, rate) in phases {
        seq += 1;
        let t0 = Instant::now();
        let bar = ProgressBar::new(args.messages as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg:>16} [{bar:40.cyan/blue}] {pos}/{len} done ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("{kind} @ {rate}/s"));
        for i in 0..args.messages {
            let due = t0 + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let d = i % ids.len();
            let round_seq = seq * 1_000_000 + (i / ids.len()) as u64;
            let body = message(kind, &ids[d], round_seq, danger);
            {
                let mut s = shared.lock();
                s.messages.insert((d, round_seq), Times { sent: Some(Instant::now()), ..Default::default() });
                if kind == "AM" {
                    s.am_outstanding.insert(d, round_seq);
                }
            }
            clients[d]
                .publish(format!("devices/{}/messages", ids[d]), QoS::AtLeastOnce, false, body.to_string())
                .await?;
            bar.set_position(done_count(&shared, seq) as u64);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while done_count(&shared, seq) < args.messages && Instant::now() < deadline {
            bar.set_position(done_count(&shared, seq) as u64);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bar.finish_and_clear();
        let phase: Vec<Times> = {
            let mut s = shared.lock();
            let keys: Vec<_> = s.messages.keys().filter(|(_, q)| q / 1_000_000 == seq).copied().collect();
            keys.iter().filter_map(|k| s.messages.remove(k)).collect()
        };
        let accepted_ms: Vec<f64> =
            phase.iter().filter_map(|t| Some(ms(t.accepted?.duration_since(t.sent?)))).collect();
        let done_ms: Vec<f64> =
            phase.iter().filter_map(|t| Some(ms(t.done?.duration_since(t.sent?)))).collect();
        let failed = phase.iter().filter(|t| t.failed).count();
        let done_at: Vec<Instant> = phase.iter().filter_map(|t| t.done).collect();
        let last = done_at.iter().max().copied().unwrap_or(t0);
        let span = last.duration_since(t0).as_secs_f64();
        let tps = done_at.len() as f64 / span.max(1e-9);
        let (mut a, mut d) = (accepted_ms, done_ms);
        let (la, ld) = (Latency::of(&mut a), Latency::of(&mut d));
        let paper = PAPER.iter().find(|(k, r, _)| *k == kind && (*r - rate).abs() < 1e-9).map(|p| p.2);
        eprintln!(
            "{kind} @ {rate}/s: {} of {} done in {span:.1} s ({tps:.2} TPS), {} to {}: avg {:.1} ms p50 {:.1} p99 {:.1}",
            done_at.len(),
            args.messages,
            if kind == "RM" { "recorded ack" } else { "decision" },
            kind,
            ld.avg,
            ld.p50,
            ld.p99
        );
        let what = if kind == "RM" { "ack `recorded`" } else { "decision on Publish_Topic" };
        rows.push(vec![
            kind.to_string(),
            format!("{rate}"),
            format!("{tps:.2}"),
            format!("{span:.1}"),
            format!("{} / {}", done_at.len(), args.messages),
            failed.to_string(),
            format!("{:.1} / {:.1} / {:.1}", la.avg, la.p50, la.p99),
            format!("{:.1}", ld.avg),
            format!("{:.1}", ld.p50),
            format!("{:.1}", ld.p99),
            format!("{:.1}", ld.max),
            paper.map_or("—".into(), |p| format!("{p}")),
        ]);
        data.push(json!({"type": kind, "rate": rate, "tps": tps, "seconds": span, "done": done_at.len(),
            "messages": args.messages, "failed": failed, "acceptedMs": la, "doneMs": ld, "doneMeans": what,
            "paperAvgMs": paper}));
        cdfs.push((format!("{kind} {rate}/s"), cdf(&d)));
        tputs.push((format!("{kind} {rate}/s"), timeline(&done_at, t0)));
    }
    let reasons = shared.lock().reasons.clone();
    drop(clients);
    let _ = child.kill().await;
    let name = format!("seed-iot-{}", slug(&args.rig.label));
    let cdf_file = format!("{name}-latency-cdf.svg");
    line_chart(
        &args.rig.out.join(&cdf_file),
        "seed-iot: latency CDF (RM: publish -> recorded ack; AM: publish -> decision)",
        "latency, ms",
        "fraction of messages",
        &cdfs,
    )?;
    let tput_file = format!("{name}-throughput.svg");
    line_chart(
        &args.rig.out.join(&tput_file),
        "seed-iot: messages completed per second",
        "seconds since the phase started",
        "messages / s",
        &tputs,
    )?;
    let mut notes = vec![format!(
        "{} devices, each its own MQTT connection (rumqttc, QoS 1) to the proxy's embedded broker; \
         {} messages per rate, sent in turn by the devices at fixed times (open loop). \
         \"accepted\" = the proxy journaled the message (fsync) and acked it; RM latency = publish -> \
         `recorded` ack (its transaction is in a block), AM latency = publish -> decision on the \
         device's Publish_Topic (DangerIndex.submit in a block). Paper: GoQuorum/Raft + Mosca + Kafka + \
         Go IoT server, Table 2.",
        args.rig.devices, args.messages
    )];
    if !reasons.is_empty() {
        notes.push(format!("Refusals / failures: {}", reasons.join("; ")));
    }
    Ok(RunResult {
        name,
        workload: "seed-iot".into(),
        target: args.rig.label.clone(),
        endpoints: target.endpoints(),
        started_unix,
        command,
        summary: vec![
            ("devices".into(), args.rig.devices.to_string()),
            ("messages per rate".into(), args.messages.to_string()),
        ],
        table: Some(Table {
            columns: [
                "type",
                "offered msg/s",
                "speed (TPS)",
                "time for the messages (s)",
                "done",
                "failed",
                "accepted avg / p50 / p99 (ms)",
                "average latency (ms)",
                "p50 (ms)",
                "p99 (ms)",
                "max (ms)",
                "paper avg (ms)",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }),
        data: json!({"phases": data}),
        plots: vec![tput_file, cdf_file],
        notes,
    })
}

pub(crate) fn done_count(shared: &Mutex<Shared>, phase: u64) -> usize {
    shared
        .lock()
        .messages
        .iter()
        .filter(|((_, q), t)| q / 1_000_000 == phase && (t.done.is_some() || t.failed))
        .count()
}

/// The paper's RM / AM message with a device timestamp (ms since the epoch) and a Seq.
pub(crate) fn message(kind: &str, device: &str, seq: u64, danger: Address) -> Value {
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    if kind == "RM" {
        json!({"Payload": {"CS": 812, "P": 1200, "H": [5500, 5100, 4900, 4700, 4600], "Timestamp": now_ms},
               "Topic": "sensors/forest", "MessageContent": "reading", "Seq": seq})
    } else {
        json!({"Payload": {"Timestamp": now_ms}, "Topic": "fire/danger",
               "MessageContent": {"Address": danger, "Values": {"CS": 812, "P": 1200, "H": [5500, 5100, 4900, 4700, 4600]},
                                  "Publish_Topic": format!("devices/{device}/commands")},
               "Seq": seq})
    }
}

/// Lines a bench adds to the proxy config.
struct ProxySections<'a> {
    chain: &'a str,
    limits: &'a str,
    mqtt_listen: &'a str,
}

fn write_proxy_config(
    dir: &Path,
    network: &fogchain_devnet::NetworkFile,
    ids: &[String],
    password: &str,
    (registry, danger): (Address, Address),
    ProxySections { chain, limits, mqtt_listen }: ProxySections<'_>,
) -> eyre::Result<PathBuf> {
    let nodes: Vec<&str> = network.nodes.iter().map(|n| n.rpc.as_str()).collect();
    // Cheap argon2 parameters (8 MiB, 1 pass) for the bench's 1000 throw-away device passwords:
    // provisioning and connecting stay fast; messages are not affected (auth is per connection).
    let params = Params::new(8 * 1024, 1, 1, None).map_err(|e| eyre!("argon2 params: {e}"))?;
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"fogchain-bench-salt").map_err(|e| eyre!("salt: {e}"))?;
    let hash = argon.hash_password(password.as_bytes(), &salt).map_err(|e| eyre!("argon2: {e}"))?.to_string();
    let mut text = format!(
        "# Written by fogchain-bench seed-iot.\ndata-dir = \"data\"\n\n[upstream]\nnodes = {}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [mqtt]\nmode = \"embedded\"\nlisten = \"{mqtt_listen}\"\nqueue-limit = 100000\n\n[chain]\nchain-id = {}\ngateway-key-file = \"gateway.key\"\n\
         sensor-registry = \"{registry}\"\ndanger-index = [\"{danger}\"]\n{chain}\n\n[limits]\nmax-connections-per-ip = 100000\n{limits}\n",
        serde_json::to_string(&nodes)?,
        network.chain_id,
    );
    for id in ids {
        text.push_str(&format!("\n[[devices]]\nid = \"{id}\"\npassword-hash = \"{hash}\"\n"));
    }
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

pub(crate) fn fogchain_bin(given: Option<&Path>) -> eyre::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let sibling = std::env::current_exe()?.with_file_name("fogchain");
    if sibling.exists() {
        return Ok(sibling);
    }
    Ok(PathBuf::from("fogchain"))
}

async fn wait_proxy(dir: &Path, child: &mut tokio::process::Child) -> eyre::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let path = dir.join("data/proxy.addr.json");
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default();
            bail!(
                "the proxy exited with {status}: {}",
                log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        if let Ok(v) = std::fs::read_to_string(&path).map(|t| serde_json::from_str::<Value>(&t)) {
            if let Some(m) = v.ok().and_then(|v| v["mqtt"].as_str().map(str::to_string)) {
                return Ok(m);
            }
        }
        if Instant::now() > deadline {
            bail!("the proxy did not start within 120 s; see {}", dir.join("proxy.log").display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connects every device, subscribes it to its acks and commands, and routes what it receives.
async fn connect_devices(
    ids: &[String],
    password: &str,
    addr: &str,
    shared: Arc<Mutex<Shared>>,
) -> eyre::Result<Vec<AsyncClient>> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| eyre!("bad MQTT address {addr}"))?;
    let port: u16 = port.parse()?;
    let bar = ProgressBar::new(ids.len() as u64);
    bar.set_message("connecting devices");
    let mut clients = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    // Connect in waves: each CONNECT costs the proxy a password hash check.
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    for (d, id) in ids.iter().enumerate() {
        let mut options = MqttOptions::new(id.clone(), host, port);
        options.set_credentials(id.clone(), password);
        options.set_keep_alive(Duration::from_secs(60));
        options.set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        client.subscribe(format!("devices/{id}/acks"), QoS::AtMostOnce).await?;
        client.subscribe(format!("devices/{id}/commands"), QoS::AtLeastOnce).await?;
        let shared = shared.clone();
        let ready = ready_tx.clone();
        let permits = permits.clone();
        let resubscribe = client.clone();
        let topics = [format!("devices/{id}/acks"), format!("devices/{id}/commands")];
        tokio::spawn(async move {
            let mut permit = permits.acquire_owned().await.ok();
            let (mut subacks, mut connacks) = (0, 0);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connacks += 1;
                        // A clean session after a reconnect (the proxy restarted): subscribe again.
                        if connacks > 1 {
                            let _ = resubscribe.try_subscribe(&topics[0], QoS::AtMostOnce);
                            let _ = resubscribe.try_subscribe(&topics[1], QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == 2 {
                            permit.take();
                            let _ = ready.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => on_publish(&shared, d, &p.topic, &p.payload),
                    Ok(_) => {}
                    Err(e) if subacks < 2 => {
                        let _ = ready.send(Err(format!("device {d}: {e}")));
                        return;
                    }
                    // Connected once: keep polling, rumqttc reconnects and re-sends what is in
                    // flight (the proxy may be restarting).
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        clients.push(client);
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut ready = 0;
    while ready < ids.len() {
        match tokio::time::timeout_at(deadline.into(), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => bail!("connecting devices: {e}"),
            _ => bail!("only {ready} of {} devices connected within 180 s", ids.len()),
        }
        bar.set_position(ready as u64);
    }
    bar.finish_and_clear();
    Ok(clients)
}

fn on_publish(shared: &Mutex<Shared>, d: usize, topic: &str, payload: &[u8]) {
    let now = Instant::now();
    let Ok(v) = serde_json::from_slice::<Value>(payload) else { return };
    let mut s = shared.lock();
    if topic.ends_with("/acks") {
        let Some(seq) = v["seq"].as_u64() else { return };
        let status = v["status"].as_str().unwrap_or_default().to_string();
        let Some(t) = s.messages.get_mut(&(d, seq)) else { return };
        match status.as_str() {
            "accepted" => t.accepted = Some(now),
            "recorded" => {
                // AMs complete with their decision, RMs with this ack
                if s.am_outstanding.get(&d) != Some(&seq) {
                    if let Some(t) = s.messages.get_mut(&(d, seq)) {
                        t.done.get_or_insert(now);
                    }
                }
            }
            _ => {
                t.failed = true;
                if s.reasons.len() < 5 {
                    s.reasons.push(format!("{status}: {}", v["reason"]));
                }
            }
        }
    } else if topic.ends_with("/commands") {
        if let Some(seq) = s.am_outstanding.remove(&d) {
            if let Some(t) = s.messages.get_mut(&(d, seq)) {
                t.done.get_or_insert(now);
            }
        }
    }
}
