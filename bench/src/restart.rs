//! `restart`: the memory of every node of a running devnet (RSS), then the time a node takes
//! from a restart to serving JSON-RPC and to catching up with the chain.

use crate::load::unix_now;
use crate::report::{RunResult, Table};
use crate::rpc::{quantity, Rpc};
use clap::Args;
use eyre::{bail, eyre, WrapErr};
use serde_json::{json, Value};
use std::{
    os::unix::process::CommandExt,
    path::PathBuf,
    time::{Duration, Instant},
};

/// Options of `restart`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RestartArgs {
    /// The devnet's network.json (its node pids and RPC URLs; the restarted node's pid is
    /// updated in it).
    #[arg(long, default_value = "devnet-data/network.json")]
    network: PathBuf,
    /// Index of the node to restart.
    #[arg(long, default_value_t = 0)]
    node: usize,
    /// Stop it with SIGKILL (a crash) instead of SIGTERM (a clean shutdown).
    #[arg(long)]
    kill: bool,
    /// Directory for results and report.md.
    #[arg(long, default_value = "bench-results")]
    pub(crate) out: PathBuf,
}

/// Resident set size of `pid`, bytes.
fn rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Whether `pid` still holds resources: a killed multi-threaded process shows its leader as a
/// zombie while other threads still exit and hold its files (RocksDB's LOCK among them).
fn alive(pid: i32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "));
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    std::fs::metadata(format!("/proc/{pid}")).is_ok() && (!zombie || threads > 1)
}

/// Runs the measurement.
pub(crate) async fn run(args: &RestartArgs, command: String) -> eyre::Result<RunResult> {
    let mut network = fogchain_devnet::NetworkFile::load(&args.network)?;
    let nodes = network.nodes.clone();
    let node = nodes.get(args.node).ok_or_else(|| eyre!("no node {}", args.node))?;
    let rpcs: Vec<Rpc> = nodes.iter().map(|n| Rpc::new(&n.rpc)).collect::<eyre::Result<_>>()?;
    let pids: Vec<i32> = nodes.iter().map(|n| n.pid.unwrap_or(0) as i32).collect();
    let head = rpcs[args.node].quantity("eth_blockNumber", json!([])).await? as u64;
    let txs = count_transactions(&rpcs[args.node], head).await?;
    let mut rows = Vec::new();
    let mut rss_data = Vec::new();
    for (i, pid) in pids.iter().enumerate() {
        let r = rss(*pid).ok_or_else(|| eyre!("node {i} (pid {pid}) is not running here"))?;
        rows.push(vec![format!("node{i}"), pid.to_string(), format!("{:.1}", r as f64 / 1048576.0)]);
        rss_data.push(json!({"node": i, "pid": pid, "rssBytes": r}));
    }
    // the node's command line and working directory, to start it again the same way
    let pid = pids[args.node];
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?;
    let datadir = node.datadir.clone();
    let log = datadir.parent().map(|d| d.join("node.log")).ok_or_else(|| eyre!("no datadir for node"))?;
    let Some((program, rest)) = argv.split_first() else { bail!("empty command line of pid {pid}") };
    // stop
    let signal = if args.kill { libc::SIGKILL } else { libc::SIGTERM };
    let stopping = Instant::now();
    // SAFETY: kill(2) on a pid read from network.json and checked above.
    unsafe { libc::kill(pid, signal) };
    while alive(pid) {
        if stopping.elapsed() > Duration::from_secs(30) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stop_time = stopping.elapsed();
    // start again, detached (its own session: it outlives this process); a node configured
    // with RPC port 0 binds a new port and writes it to rpc.addr
    let addr_file = log.with_file_name("rpc.addr");
    let _ = std::fs::remove_file(&addr_file);
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
    let started = Instant::now();
    let child = std::process::Command::new(program)
        .args(rest)
        .current_dir(&cwd)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .wrap_err_with(|| format!("restarting {program}"))?;
    let new_pid = child.id();
    let deadline = started + Duration::from_secs(300);
    let mut restarted = rpcs[args.node].clone();
    let serving = loop {
        if let Ok(addr) = std::fs::read_to_string(&addr_file) {
            restarted = Rpc::new(&format!("http://{}", addr.trim()))?;
        }
        if let Ok(v) = restarted.call("eth_blockNumber", json!([])).await {
            if quantity(&v).is_some() {
                break started.elapsed();
            }
        }
        if Instant::now() > deadline {
            bail!("node {} did not serve within 300 s; see {}", args.node, log.display());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let caught_up = loop {
        let mut target = 0;
        for (i, r) in rpcs.iter().enumerate() {
            if i != args.node {
                target = target.max(r.quantity("eth_blockNumber", json!([])).await.unwrap_or(0) as u64);
            }
        }
        let own = restarted.quantity("eth_blockNumber", json!([])).await.unwrap_or(0) as u64;
        if own >= target.max(head) {
            break started.elapsed();
        }
        if Instant::now() > deadline {
            bail!("node {} did not catch up within 300 s", args.node);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let entry = &mut network.nodes[args.node];
    entry.pid = Some(new_pid);
    if let Ok(addr) = std::fs::read_to_string(&addr_file) {
        entry.rpc = format!("http://{}", addr.trim());
        entry.ws = format!("ws://{}", addr.trim());
    }
    network.write(&args.network)?;
    let how = if args.kill { "SIGKILL" } else { "SIGTERM" };
    Ok(RunResult {
        name: format!("restart-node{}", args.node),
        workload: "restart".into(),
        target: "fogchain".into(),
        endpoints: rpcs
            .iter()
            .enumerate()
            .map(|(i, r)| if i == args.node { restarted.url() } else { r.url() }.to_string())
            .collect(),
        started_unix: unix_now(),
        command,
        summary: vec![
            ("chain".into(), format!("{head} blocks, {txs} transactions")),
            (format!("node{} stopped ({how})", args.node), format!("{:.2} s", stop_time.as_secs_f64())),
            ("**restart -> serving JSON-RPC**".into(), format!("**{:.2} s**", serving.as_secs_f64())),
            ("restart -> caught up with the head".into(), format!("{:.2} s", caught_up.as_secs_f64())),
        ],
        table: Some(Table {
            columns: ["node", "pid", "RSS before the restart (MiB)"].map(String::from).to_vec(),
            rows,
        }),
        data: json!({"head": head, "transactions": txs, "rss": rss_data, "stopSeconds": stop_time.as_secs_f64(),
                     "servingSeconds": serving.as_secs_f64(), "caughtUpSeconds": caught_up.as_secs_f64(), "signal": how}),
        plots: Vec::new(),
        notes: Vec::new(),
    })
}

/// Transactions in blocks 0..=head (eth_getBlockTransactionCountByNumber, batched).
async fn count_transactions(rpc: &Rpc, head: u64) -> eyre::Result<u64> {
    let mut total = 0;
    let mut b = 0;
    while b <= head {
        let last = head.min(b + 999);
        let calls: Vec<(&str, Value)> = (b..=last)
            .map(|n| ("eth_getBlockTransactionCountByNumber", json!([format!("0x{n:x}")])))
            .collect();
        for a in rpc.batch(&calls).await? {
            total += a.ok().as_ref().and_then(quantity).unwrap_or(0) as u64;
        }
        b = last + 1;
    }
    Ok(total)
}
