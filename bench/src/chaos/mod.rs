//! `chaos`: a devnet and a proxy under steady load while faults pile up, then a checker over
//! the recorded history (docs/chaos.md). Like a Jepsen test: load ([`load`]), a nemesis
//! ([`faults`]) acting on the processes ([`cluster`]), and the invariants ([`check`]).

mod check;
mod cluster;
mod faults;
mod load;

use crate::{
    iot::{self, Rig, RigArgs},
    load::unix_now,
    report::{line_chart, Latency, RunResult, Table},
};
use alloy_primitives::{Address, U256};
use clap::Args;
use eyre::{bail, eyre};
use faults::Kind;
use load::{Event, History};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use std::{
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

/// Options of `chaos`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChaosArgs {
    /// Nodes of the devnet (3 or 5 in docs/chaos.md).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Length of the faulty period, seconds (then the faults heal and the checker runs).
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Seed of the fault schedule (default: random, printed and in the report).
    #[arg(long)]
    seed: Option<u64>,
    /// Faults start this many seconds apart at least ...
    #[arg(long, default_value_t = 10)]
    fault_min: u64,
    /// ... and at most.
    #[arg(long, default_value_t = 20)]
    fault_max: u64,
    /// Faults to choose from.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "kill,pause,partition,clock,proxy,disk")]
    faults: Vec<Kind>,
    /// Transfer senders, one transaction per second each (open loop; see load::lane).
    #[arg(long, default_value_t = 10)]
    lanes: usize,
    /// MQTT devices.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Device messages per second from all devices together.
    #[arg(long, default_value_t = 20.0)]
    device_rate: f64,
    /// Every N-th device message is an action message (DangerIndex.submit and a decision), the
    /// others registry messages; 0: none.
    #[arg(long, default_value_t = 10)]
    action_every: usize,
    /// The `fogchain` binary (default: next to this binary, else PATH).
    #[arg(long)]
    fogchain_bin: Option<PathBuf>,
    /// Directory for results, plots, report.md and the run's devnet (`chaos-<nodes>-net`).
    #[arg(long, default_value = "bench-results")]
    pub(crate) out: PathBuf,
}

/// A fault as it happened.
struct Record {
    start: f64,
    end: f64,
    applied: faults::Applied,
    /// What the faulted node did meanwhile (a disk-full node should stop).
    note: String,
}

/// Runs the test; the result and the checker's failures (empty: passed).
pub(crate) async fn run(args: &ChaosArgs, command: String) -> eyre::Result<(RunResult, Vec<String>)> {
    if args.nodes < 3 || args.fault_min == 0 || args.fault_max < args.fault_min {
        bail!("chaos needs --nodes >= 3 and 0 < --fault-min <= --fault-max");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let name = format!("chaos-{}", args.nodes);
    eprintln!("{name}: seed {seed} (replay with --seed {seed})");
    let bin = iot::fogchain_bin(args.fogchain_bin.as_deref())?;
    let dir = std::path::absolute(args.out.join(format!("{name}-net")))?;
    let mut cluster =
        cluster::Cluster::create(&bin, &dir, args.nodes, args.faults.contains(&Kind::Disk)).await?;
    let result = exercise(args, &mut cluster, &bin, seed, command).await;
    cluster.stop().await;
    result
}

async fn exercise(
    args: &ChaosArgs,
    cluster: &mut cluster::Cluster,
    bin: &std::path::Path,
    seed: u64,
    command: String,
) -> eyre::Result<(RunResult, Vec<String>)> {
    let name = format!("chaos-{}", args.nodes);
    let started_unix = unix_now();
    let rig_args = RigArgs {
        network: std::path::absolute(args.out.join(format!("{name}-net/network.json")))?,
        devices: args.devices,
        fogchain_bin: Some(bin.to_path_buf()),
        label: "fogchain".into(),
        out: args.out.clone(),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let Rig { target, danger, ids, clients, shared, mut child, dir: proxy_dir } =
        iot::rig(&rig_args, &name, ("", ""), &format!("127.0.0.1:{port}")).await?;
    let registry = target
        .network
        .as_ref()
        .and_then(|n| n.contract("SensorRegistry"))
        .ok_or_else(|| eyre!("no SensorRegistry"))?;
    let mut keys: Vec<_> = (0..=args.lanes).map(|_| alloy_signer_local::PrivateKeySigner::random()).collect();
    target.fund(&keys, U256::from(10u128.pow(20))).await?;
    let probe_key = keys.pop().ok_or_else(|| eyre!("no probe key"))?;
    let target = Arc::new(target);
    let rpcs: Vec<_> = cluster.nodes.iter().map(|n| n.rpc.clone()).collect();
    let history = History::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, rpc) in rpcs.iter().enumerate() {
        tasks.push(tokio::spawn(load::watch(i, rpc.clone(), history.clone(), stop.clone())));
    }
    for (lane, key) in keys.into_iter().enumerate() {
        let run = load::lane(
            lane,
            key,
            target.clone(),
            rpcs.clone(),
            Duration::from_secs(1),
            history.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(run));
    }
    let contracts = check::Contracts { registry, danger, devices: ids.clone() };
    let rates = (args.device_rate, args.action_every, danger);
    let devices = load::devices((ids, clients, shared.clone()), rates, history.clone(), stop.clone());
    tasks.push(tokio::spawn(devices));

    // the nemesis
    let mut rng = StdRng::seed_from_u64(seed);
    let mut records: Vec<Record> = Vec::new();
    let mut unexpected = Vec::new();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(args.duration);
    let mut next = t0 + Duration::from_secs(rng.random_range(args.fault_min..=args.fault_max));
    while next + Duration::from_secs(8) < end {
        tokio::time::sleep_until(next.into()).await;
        restart_exited(cluster, &history, &mut unexpected)?;
        let leader = cluster.leader().await;
        let Some(applied) = faults::apply(cluster, &args.faults, leader, &mut rng).await? else { break };
        if applied.kind == Kind::Proxy {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        let start = history.now();
        eprintln!("{name}: t={start:.1}s {:?} {}", applied.kind, applied.detail);
        history.push(Event::Fault {
            t: start,
            kind: format!("{:?}", applied.kind),
            detail: applied.detail.clone(),
            heal: false,
        });
        let hold = Duration::from_secs_f64(rng.random_range(3.0..8.0));
        let held = Instant::now();
        let note = match applied.heal {
            faults::Heal::Disk(i) => disk_full(cluster, i, hold).await?,
            _ => {
                tokio::time::sleep(hold).await;
                String::new()
            }
        };
        faults::heal(cluster, &applied.heal)?;
        if applied.kind == Kind::Proxy {
            child = iot::spawn_proxy(bin, &proxy_dir)?;
        }
        let end_t = history.now();
        history.push(Event::Fault {
            t: end_t,
            kind: format!("{:?}", applied.kind),
            detail: applied.detail.clone(),
            heal: true,
        });
        records.push(Record { start, end: end_t, applied, note });
        next = held + Duration::from_secs(rng.random_range(args.fault_min..=args.fault_max));
    }
    tokio::time::sleep_until(end.into()).await;
    restart_exited(cluster, &history, &mut unexpected)?;

    // quiet: stop the load, let the proxy drain and the nodes converge
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    // drained: every acknowledged message on chain (a restarted proxy's `recorded` acks can be
    // lost with the connection, so the chain is asked); converged: one head everywhere
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(180) {
        if check::converged(&rpcs).await.is_empty() {
            let mut probe = check::Verdict::default();
            let head = rpcs[0].quantity("eth_blockNumber", json!([])).await.unwrap_or(0) as u64;
            let sent = sent_messages(&shared);
            let read = check::messages(&rpcs[0], &contracts, head, &sent, &mut probe).await;
            if read.is_ok() && probe.messages_lost.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let settle = quiet.elapsed().as_secs_f64();

    // the checker; the devices' acks join the history
    for ((device, seq), times) in sent_messages(&shared) {
        let at = |i: Option<Instant>| i.map(|i| i.saturating_duration_since(history.t0).as_secs_f64());
        for (t, status) in [(at(times.accepted), "accepted"), (at(times.done), "recorded")] {
            if let Some(t) = t {
                history.push(Event::Ack { t, device, seq, status: status.into() });
            }
        }
        if times.failed {
            history.push(Event::Ack { t: history.now(), device, seq, status: "failed".into() });
        }
    }
    let events = history.events();
    let full_disk_running = records
        .iter()
        .filter(|r| r.note.contains("STILL RUNNING"))
        .map(|r| format!("t={:.1}s {}", r.start, r.note))
        .collect();
    let mut verdict = check::Verdict {
        unexpected_exits: unexpected,
        stuck: check::converged(&rpcs).await,
        full_disk_running,
        ..Default::default()
    };
    verdict.stuck.extend(check::live(&target, &probe_key, &rpcs).await);
    check::receipts(&events, &rpcs, &mut verdict).await?;
    let head = check::blocks(&events, &rpcs, &mut verdict).await?;
    check::messages(&rpcs[0], &contracts, head, &sent_messages(&shared), &mut verdict).await?;
    let _ = child.start_kill();
    let losses: Vec<(f64, Address)> = records
        .iter()
        .map(|r| match (r.applied.no_quorum, r.applied.leader_lost) {
            (true, _) => (r.end, Address::ZERO),
            (false, Some(l)) => (r.start, cluster.nodes[l].address),
            (false, None) => (r.start, Address::ZERO),
        })
        .collect();
    let resumed = check::resumptions(&events, &losses);
    std::fs::write(
        args.out.join(format!("{name}-history.jsonl")),
        events.iter().filter_map(|e| serde_json::to_string(e).ok()).collect::<Vec<_>>().join("\n"),
    )?;
    let failures = verdict.failures();
    let report = report(args, &name, seed, &records, &resumed, &events, &verdict, settle)?;
    let result = RunResult {
        name: name.clone(),
        workload: "chaos".into(),
        target: "fogchain".into(),
        endpoints: rpcs.iter().map(|r| r.url().to_string()).collect(),
        started_unix,
        command,
        ..report
    };
    Ok((result, failures))
}

/// Holds a full disk under node `i` for `hold`: a node that needs space must stop (fail-stop).
/// RocksDB preallocates its write-ahead log, so a running node may not need any for minutes;
/// if it still runs halfway, it is restarted onto the full disk, where opening the database
/// needs space at once. Returns what the node did.
async fn disk_full(cluster: &mut cluster::Cluster, i: usize, hold: Duration) -> eyre::Result<String> {
    let started = Instant::now();
    let mut restarted = None;
    while started.elapsed() < hold
        || (restarted.is_some() && started.elapsed() < hold + Duration::from_secs(30))
    {
        if let Some(status) = cluster.exited(i) {
            let after = started.elapsed().as_secs_f64();
            return Ok(match restarted {
                None => format!("node{i} stopped ({status}) after {after:.1} s"),
                Some(_) => {
                    format!("restarted onto the full disk: node{i} stopped ({status}) after {after:.1} s")
                }
            });
        }
        if restarted.is_none() && started.elapsed() >= hold / 2 {
            cluster.kill(i).await;
            cluster.start(i)?;
            restarted = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(format!("node{i} STILL RUNNING on the full disk after a restart"))
}

/// What the devices sent and heard, copied out of the lock the device tasks take.
fn sent_messages(shared: &parking_lot::Mutex<iot::Shared>) -> Vec<((usize, u64), iot::Times)> {
    shared.lock().messages.iter().map(|(k, t)| (*k, *t)).collect()
}

/// Nodes that exited by themselves outside a disk fault are failures; they are started again
/// so that the run goes on.
fn restart_exited(
    cluster: &mut cluster::Cluster,
    history: &History,
    unexpected: &mut Vec<String>,
) -> eyre::Result<()> {
    for i in 0..cluster.nodes.len() {
        if let Some(status) = cluster.exited(i) {
            unexpected.push(format!(
                "node{i} exited with {status} at t={:.1}s (log {})",
                history.now(),
                cluster.log(i).display()
            ));
            cluster.start(i)?;
        } else if !cluster.running(i) {
            cluster.start(i)?;
        }
    }
    Ok(())
}

/// The result's summary, fault table, data and plots.
#[allow(clippy::too_many_arguments)]
fn report(
    args: &ChaosArgs,
    name: &str,
    seed: u64,
    records: &[Record],
    resumed: &[Option<f64>],
    events: &[Event],
    verdict: &check::Verdict,
    settle: f64,
) -> eyre::Result<RunResult> {
    let dies =
        |r: &Record| matches!(r.applied.kind, Kind::Kill | Kind::Pause) && r.applied.leader_lost.is_some();
    let mut died: Vec<f64> =
        records.iter().zip(resumed).filter(|(r, _)| dies(r)).filter_map(|(_, s)| *s).collect();
    let mut lost: Vec<f64> = records
        .iter()
        .zip(resumed)
        .filter(|(r, _)| r.applied.leader_lost.is_some() && !r.applied.no_quorum)
        .filter_map(|(_, s)| *s)
        .collect();
    let never =
        records.iter().zip(resumed).filter(|(r, s)| r.applied.leader_lost.is_some() && s.is_none()).count();
    let fmt = |l: &Latency| {
        format!("p50 {:.2} s, p99 {:.2} s, max {:.2} s (n = {})", l.p50, l.p99, l.max, l.samples)
    };
    let (died_l, lost_l) = (Latency::of(&mut died), Latency::of(&mut lost));
    let receipts = events.iter().filter(|e| matches!(e, Event::Receipt { .. })).count();
    let failures = verdict.failures();
    let summary = vec![
        (
            "**verdict**".into(),
            if failures.is_empty() {
                "**pass**".into()
            } else {
                format!("**FAIL**: {}", failures.join("; "))
            },
        ),
        ("nodes, faulty period, seed".into(), format!("{}, {} s, {seed}", args.nodes, args.duration)),
        (
            "faults".into(),
            format!("{} (every {}-{} s, held 3-8 s)", records.len(), args.fault_min, args.fault_max),
        ),
        (
            "receipted transactions lost".into(),
            format!("{} of {}", verdict.lost_receipted.len(), verdict.receipted),
        ),
        (
            "forks (heights with two hashes or state roots)".into(),
            format!("{} in {} heights", verdict.forks.len(), verdict.heights_checked),
        ),
        (
            "device messages acknowledged: lost / recorded twice".into(),
            format!(
                "{} / {} of {}",
                verdict.messages_lost.len(),
                verdict.messages_duplicated.len(),
                verdict.messages_accepted
            ),
        ),
        ("**leader killed or paused -> next commit**".into(), format!("**{}**", fmt(&died_l))),
        ("any leader loss (also isolated, deaf, disk) -> next commit".into(), fmt(&lost_l)),
        ("leader losses without a later commit".into(), never.to_string()),
        (
            "nodes stuck at the end / unexpected exits".into(),
            format!("{} / {}", verdict.stuck.len(), verdict.unexpected_exits.len()),
        ),
        ("quiet period until converged and drained".into(), format!("{settle:.1} s")),
    ];
    let rows = records
        .iter()
        .zip(resumed)
        .map(|(r, s)| {
            vec![
                format!("{:.1}", r.start),
                format!("{:?}", r.applied.kind).to_lowercase(),
                r.applied.detail.clone(),
                format!("{:.1}", r.end - r.start),
                match (r.applied.leader_lost.is_some() || r.applied.no_quorum, s) {
                    (false, _) => "-".into(),
                    (true, Some(s)) => {
                        format!("{s:.2}{}", if r.applied.no_quorum { " after heal" } else { "" })
                    }
                    (true, None) => "never".into(),
                },
                r.note.clone(),
            ]
        })
        .collect();
    let plots = plot(args, name, records, events)?;
    Ok(RunResult {
        name: name.into(),
        workload: String::new(),
        target: String::new(),
        endpoints: Vec::new(),
        started_unix: 0,
        command: String::new(),
        summary,
        table: Some(Table {
            columns: ["t (s)", "fault", "target", "held (s)", "next commit after (s)", "note"].map(String::from).to_vec(),
            rows,
        }),
        data: json!({"seed": seed, "nodes": args.nodes, "durationSeconds": args.duration, "receiptsSeen": receipts,
                     "verdict": verdict, "leaderDiedToCommit": died_l.p99, "leaderLossToCommit": lost_l.p99,
                     "faults": records.iter().zip(resumed).map(|(r, s)| json!({"start": r.start, "end": r.end,
                        "kind": r.applied.kind, "detail": r.applied.detail, "leaderLost": r.applied.leader_lost,
                        "noQuorum": r.applied.no_quorum, "resumedAfter": s, "note": r.note})).collect::<Vec<_>>()}),
        plots,
        notes: vec![
            "Load: closed-loop transfer lanes (one transaction in flight each, re-sent unchanged to the next node until \
             a receipt) through every node, and MQTT registry messages (QoS 1) from the devices through the proxy. \
             `next commit after` = fault (or heal, for a split without a majority) -> first block above the previous \
             head minted by a node other than the lost leader, as first seen by 100 ms polling of every node."
                .into(),
            "Acknowledged device message = the device got the proxy's `accepted` (journaled) or `recorded` ack.".into(),
        ],
    })
}

/// The timeline: blocks/s (first seen on any node) with the fault windows, and the leader.
fn plot(args: &ChaosArgs, name: &str, records: &[Record], events: &[Event]) -> eyre::Result<Vec<String>> {
    let mut first_seen: std::collections::BTreeMap<u64, f64> = Default::default();
    let mut span = args.duration as f64;
    for e in events {
        if let Event::Head { t, number, .. } = e {
            let seen = first_seen.entry(*number).or_insert(*t);
            *seen = seen.min(*t);
            span = span.max(*t);
        }
    }
    let mut per_second = vec![0f64; span as usize + 1];
    for t in first_seen.values() {
        per_second[*t as usize] += 1.0;
    }
    let peak = per_second.iter().copied().fold(1.0, f64::max);
    let blocks: Vec<(f64, f64)> = per_second.iter().enumerate().map(|(s, c)| (s as f64 + 0.5, *c)).collect();
    let mut windows = vec![(0.0, 0.0)];
    for r in records {
        windows.extend([(r.start, 0.0), (r.start, peak), (r.end, peak), (r.end, 0.0)]);
    }
    windows.push((span, 0.0));
    let timeline = format!("{name}-timeline.svg");
    line_chart(
        &args.out.join(&timeline),
        &format!("{name}: blocks per second and faults"),
        "time (s)",
        "blocks/s",
        &[("blocks/s".into(), blocks), ("fault active".into(), windows)],
    )?;
    let mut leader = Vec::new();
    for e in events {
        if let Event::Leader { t, node } = e {
            if let Some((_, last)) = leader.last().copied() {
                leader.push((*t, last));
            }
            leader.push((*t, *node as f64 + 1.0));
        }
    }
    if let Some((_, last)) = leader.last().copied() {
        leader.push((span, last));
    }
    let leaders = format!("{name}-leader.svg");
    line_chart(
        &args.out.join(&leaders),
        &format!("{name}: Raft leader (node index + 1)"),
        "time (s)",
        "leader",
        &[("leader".into(), leader)],
    )?;
    Ok(vec![timeline, leaders])
}
