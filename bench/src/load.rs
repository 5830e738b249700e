//! RPC workloads: pre-signed transactions from many accounts, sent as batched
//! `eth_sendRawTransaction` requests over all nodes, timed until their blocks appear.

use crate::chain::{check_receipts, follow_blocks, load_accounts, Signed, Target, Tracker};
use crate::report::{cdf, line_chart, ms, timeline, Latency, RunResult, Table};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolConstructor, SolValue};
use clap::{Args, ValueEnum};
use fogchain_contracts::{DangerIndex, DeviceRegistry, SensorRegistry};
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::{
    path::Path,
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

/// What each load transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Call {
    /// 1 wei value transfer to another load account (21,000 gas).
    Transfer,
    /// DangerIndex.submit(region, p, h[5], cs) from a gateway account, one region per account.
    DangerIndex,
    /// SensorRegistry.recordSigned(deviceId, seq, topic, payload, signature): a device-signed
    /// reading relayed by the device's own account.
    RecordSigned,
}

impl Call {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Call::Transfer => "transfer",
            Call::DangerIndex => "DangerIndex.submit",
            Call::RecordSigned => "SensorRegistry.recordSigned",
        }
    }
}

/// Options shared by the RPC workloads.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Sending accounts (each sends its transactions in nonce order to one node).
    #[arg(long, default_value_t = 1000)]
    pub(crate) accounts: usize,
    /// Transactions per JSON-RPC batch request.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Batch requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Most transactions sent and not yet seen in a block: sending waits below it, so the load
    /// stays within the nodes' pools (Fogchain's holds 50,000) and measures sustained throughput.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) window: usize,
    /// Stop waiting for inclusion after this many seconds without a new included transaction.
    #[arg(long, default_value_t = 60)]
    pub(crate) stall_seconds: u64,
}

/// The load accounts and contracts of a workload, and each account's next nonce.
pub(crate) struct Workload {
    call: Call,
    accounts: Vec<PrivateKeySigner>,
    nonces: Vec<u64>,
    /// Next reading seq per account (RecordSigned).
    seqs: Vec<u64>,
    contract: Address,
    gas: u64,
}

impl Workload {
    /// Funds the accounts and deploys / configures what `call` needs; `txs_per_account` sizes
    /// the funding (each account can pay its worst-case fees).
    pub(crate) async fn prepare(
        target: &Target,
        call: Call,
        accounts: usize,
        txs_per_account: u64,
    ) -> eyre::Result<Self> {
        let seed = format!("{}-{}", call.name(), std::process::id());
        let accounts = load_accounts(&seed, accounts);
        let gas_cap: u64 = match call {
            Call::Transfer => 21_000,
            _ => 200_000,
        };
        // The pool wants gas * maxFee + value per transaction at admission; execution charges
        // the base fee: funds for two transactions at the cap, the rest at up to 100 gwei.
        let fund = U256::from(2 * gas_cap as u128 * target.max_fee)
            + U256::from(txs_per_account as u128 * gas_cap as u128 * 100 * crate::chain::GWEI)
            + U256::from(txs_per_account + 2);
        target.fund(&accounts, fund).await?;
        let mut contract = Address::ZERO;
        match call {
            Call::Transfer => {}
            Call::DangerIndex => {
                contract = target.deploy("deploying DangerIndex", DangerIndex::BYTECODE.to_vec()).await?;
                let inputs = accounts
                    .iter()
                    .map(|a| DangerIndex::addGatewayCall { gateway: a.address() }.abi_encode());
                target.admin_calls("DangerIndex.addGateway", contract, inputs.collect()).await?;
            }
            Call::RecordSigned => {
                let devices =
                    target.deploy("deploying DeviceRegistry", DeviceRegistry::BYTECODE.to_vec()).await?;
                let mut code = SensorRegistry::BYTECODE.to_vec();
                code.extend(SensorRegistry::constructorCall { devices_: devices }.abi_encode());
                contract = target.deploy("deploying SensorRegistry", code).await?;
                let inputs = accounts.iter().map(|a| {
                    DeviceRegistry::registerCall {
                        deviceId: device_id(a.address()),
                        key: a.address(),
                        kind: "sensor".into(),
                    }
                    .abi_encode()
                });
                target.admin_calls("DeviceRegistry.register", devices, inputs.collect()).await?;
            }
        }
        let n = accounts.len();
        let mut w = Self { call, accounts, nonces: vec![0; n], seqs: vec![1; n], contract, gas: 21_000 };
        if call != Call::Transfer {
            // the first call of an account writes fresh slots: the most expensive one
            let probe = w.input(target, 0, 1)?;
            let est = target.estimate(w.accounts[0].address(), Some(contract), &probe).await?;
            w.gas = est * 6 / 5;
        }
        Ok(w)
    }

    /// The calldata of `account`'s call number `seq` (empty for transfers).
    fn input(&self, target: &Target, account: usize, seq: u64) -> eyre::Result<Vec<u8>> {
        let key = &self.accounts[account];
        Ok(match self.call {
            Call::Transfer => Vec::new(),
            Call::DangerIndex => DangerIndex::submitCall {
                region: keccak256(key.address()),
                p: U256::from(1_000 + seq % 100),
                h: [U256::from(5_000); 5],
                cs: U256::from(10_000),
            }
            .abi_encode(),
            Call::RecordSigned => {
                let id = device_id(key.address());
                let topic = "sensors/solar".to_string();
                let payload = Bytes::from(format!("{{\"CS\":{}}}", 800 + seq % 100).into_bytes());
                let digest = keccak256(
                    (
                        U256::from(target.chain_id),
                        self.contract,
                        id,
                        seq,
                        keccak256(topic.as_bytes()),
                        keccak256(&payload),
                    )
                        .abi_encode(),
                );
                let signature = key.sign_message_sync(digest.as_slice())?;
                SensorRegistry::recordSignedCall {
                    deviceId: id,
                    seq,
                    topic,
                    payload,
                    signature: Bytes::copy_from_slice(&signature.as_bytes()),
                }
                .abi_encode()
            }
        })
    }

    fn sign_one(&self, target: &Target, account: usize, nonce: u64, seq: u64) -> eyre::Result<Signed> {
        let key = &self.accounts[account];
        match self.call {
            Call::Transfer => {
                let to = self.accounts[(account + 1) % self.accounts.len()].address();
                target.sign(key, nonce, TxKind::Call(to), U256::from(1), Bytes::new(), self.gas)
            }
            _ => {
                let input = self.input(target, account, seq)?;
                target.sign(key, nonce, TxKind::Call(self.contract), U256::ZERO, input.into(), self.gas)
            }
        }
    }

    /// Pre-signs `total` transactions (rounded up to a multiple of the account count), on all
    /// cores, and groups them into batches: an account's transactions go to one node in nonce
    /// order; consecutive batches alternate between nodes.
    pub(crate) fn sign_batches(
        &mut self,
        target: &Target,
        total: usize,
        batch: usize,
    ) -> eyre::Result<Vec<Batch>> {
        let n = self.accounts.len();
        let per_account = total.div_ceil(n).max(1) as u64;
        let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
        let chunk = n.div_ceil(threads);
        let this = &*self;
        let signed: Vec<Vec<Signed>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|start| {
                    s.spawn(move || -> eyre::Result<Vec<Vec<Signed>>> {
                        (start..(start + chunk).min(n))
                            .map(|a| {
                                (0..per_account)
                                    .map(|k| this.sign_one(target, a, this.nonces[a] + k, this.seqs[a] + k))
                                    .collect()
                            })
                            .collect()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(n);
            for h in handles {
                all.extend(h.join().map_err(|_| eyre::eyre!("signing thread panicked"))??);
            }
            Ok::<_, eyre::Report>(all)
        })?;
        for a in 0..n {
            self.nonces[a] += per_account;
            self.seqs[a] += per_account;
        }
        let nodes = target.nodes.len();
        let mut queues: Vec<Vec<Signed>> = vec![Vec::new(); nodes];
        for k in 0..per_account as usize {
            for (a, txs) in signed.iter().enumerate() {
                queues[a % nodes].push(txs[k].clone());
            }
        }
        let mut per_node: Vec<std::vec::IntoIter<Batch>> = queues
            .into_iter()
            .enumerate()
            .map(|(node, q)| {
                q.chunks(batch.max(1)).map(|c| Batch::new(node, c)).collect::<Vec<_>>().into_iter()
            })
            .collect();
        let mut batches = Vec::new();
        loop {
            let before = batches.len();
            for it in per_node.iter_mut() {
                batches.extend(it.next());
            }
            if batches.len() == before {
                break;
            }
        }
        Ok(batches)
    }
}

/// The on-chain device id of a load account (RecordSigned).
fn device_id(a: Address) -> B256 {
    keccak256(format!("bench-device-{a}"))
}

/// One batch request, ready to send.
pub(crate) struct Batch {
    node: usize,
    hashes: Vec<B256>,
    body: Value,
}

impl Batch {
    fn new(node: usize, txs: &[Signed]) -> Self {
        let body = txs
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [t.raw_hex()]}))
            .collect();
        Self { node, hashes: txs.iter().map(|t| t.hash).collect(), body }
    }

    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }
}

/// What one load run measured.
pub(crate) struct Run {
    pub(crate) sent: usize,
    pub(crate) rejected: usize,
    pub(crate) reasons: Vec<String>,
    pub(crate) included: usize,
    pub(crate) lost: usize,
    /// First send to last inclusion.
    pub(crate) duration: Duration,
    /// Included per second over `duration`.
    pub(crate) tps: f64,
    pub(crate) latency: Latency,
    /// Sorted latencies, ms.
    pub(crate) samples: Vec<f64>,
    /// Included per second, 1 s buckets.
    pub(crate) timeline: Vec<(f64, f64)>,
    pub(crate) hashes: Vec<(B256, u64)>,
}

/// Sends `batches` (at `rate` transactions/s when given, else as fast as `concurrency` allows)
/// and waits until every accepted transaction is in a block, or nothing is included for
/// `stall` seconds.
pub(crate) async fn run(
    target: &Target,
    batches: Vec<Batch>,
    rate: Option<f64>,
    args: &LoadArgs,
    label: &str,
) -> eyre::Result<Run> {
    let total: usize = batches.iter().map(Batch::len).sum();
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let done = Arc::new(AtomicBool::new(false));
    let head = target.nodes[0].quantity("eth_blockNumber", json!([])).await? as u64;
    let follower = tokio::spawn(follow_blocks(target.nodes[0].clone(), head, tracker.clone(), done.clone()));
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>24} [{bar:40.cyan/blue}] {pos}/{len} in blocks, {per_sec} ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_string());
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let t0 = Instant::now();
    let mut offset = 0usize;
    let mut sends = Vec::new();
    for batch in batches {
        if let Some(rate) = rate {
            let due = t0 + Duration::from_secs_f64(offset as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        offset += batch.len();
        while tracker.lock().outstanding() + batch.len() > args.window.max(batch.len()) {
            if follower.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if follower.is_finished() {
            break;
        }
        let permit = permits.clone().acquire_owned().await?;
        let rpc = target.nodes[batch.node].clone();
        let tracker = tracker.clone();
        tracker.lock().sent(&batch.hashes, Instant::now());
        bar.set_position(tracker.lock().included.len() as u64);
        sends.push(tokio::spawn(async move {
            let _permit = permit;
            let answers = rpc.raw_batch(batch.body).await;
            let mut t = tracker.lock();
            match answers {
                Ok(answers) => {
                    for (h, a) in batch.hashes.iter().zip(answers) {
                        if let Err(e) = a {
                            t.refused(h, e);
                        }
                    }
                }
                Err(e) => {
                    for h in &batch.hashes {
                        t.refused(h, format!("{e:#}"));
                    }
                }
            }
        }));
    }
    for s in sends {
        s.await?;
    }
    let sent_all = t0.elapsed();
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    loop {
        let (included, outstanding) = {
            let t = tracker.lock();
            (t.included.len(), t.outstanding())
        };
        bar.set_position(included as u64);
        if outstanding == 0 {
            break;
        }
        if included != last_count {
            last_count = included;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(args.stall_seconds) {
            bar.println(format!(
                "{outstanding} transactions not included after {} s without progress",
                args.stall_seconds
            ));
            break;
        }
        if follower.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    follower.await??;
    bar.finish_and_clear();
    let t = std::mem::take(&mut *tracker.lock());
    let last = t.included.iter().map(|(at, _)| *at).max().unwrap_or(t0);
    let duration = last.saturating_duration_since(t0).max(sent_all);
    let mut samples: Vec<f64> = t.included.iter().map(|(_, l)| ms(*l)).collect();
    let latency = Latency::of(&mut samples);
    let events: Vec<Instant> = t.included.iter().map(|(at, _)| *at).collect();
    Ok(Run {
        sent: total,
        rejected: t.rejected,
        reasons: t.reasons,
        included: t.included.len(),
        lost: total - t.included.len() - t.rejected,
        duration,
        tps: t.included.len() as f64 / duration.as_secs_f64().max(1e-9),
        latency,
        samples,
        timeline: timeline(&events, t0),
        hashes: t.hashes,
    })
}

fn fmt_ms(v: f64) -> String {
    format!("{v:.1} ms")
}

fn latency_rows(l: &Latency) -> Vec<(String, String)> {
    vec![
        ("latency avg (send -> block seen)".into(), fmt_ms(l.avg)),
        ("latency p50".into(), fmt_ms(l.p50)),
        ("latency p90".into(), fmt_ms(l.p90)),
        ("latency p99".into(), fmt_ms(l.p99)),
        ("latency max".into(), fmt_ms(l.max)),
    ]
}

/// `rpc-transfers` / `rpc-contract`: one burst of `txs` transactions, as fast as accepted (or at
/// `rate`), then every receipt checked.
pub(crate) async fn burst(
    target: &Target,
    call: Call,
    txs: usize,
    rate: Option<f64>,
    args: &LoadArgs,
    out: &Path,
    workload: &str,
    command: String,
) -> eyre::Result<RunResult> {
    let per_account = txs.div_ceil(args.accounts.max(1)) as u64;
    let mut w = Workload::prepare(target, call, args.accounts, per_account).await?;
    let started_unix = unix_now();
    let signing = Instant::now();
    let batches = w.sign_batches(target, txs, args.batch)?;
    eprintln!(
        "signed {} transactions in {:.1} s",
        batches.iter().map(Batch::len).sum::<usize>(),
        signing.elapsed().as_secs_f64()
    );
    let r = run(target, batches, rate, args, call.name()).await?;
    let (ok, failed) = check_receipts(&target.nodes[0], &r.hashes).await?;
    let name = match rate {
        Some(r) => format!("{workload}-{}-{}-at-{r:.0}tps", slug(call.name()), target.label),
        None => format!("{workload}-{}-{}", slug(call.name()), target.label),
    };
    let mut plots = Vec::new();
    let tput = format!("{name}-throughput.svg");
    line_chart(
        &out.join(&tput),
        &format!("{} on {}: included per second", call.name(), target.label),
        "seconds since the first send",
        "transactions / s",
        &[(target.label.clone(), r.timeline.clone())],
    )?;
    plots.push(tput);
    let cdfp = format!("{name}-latency-cdf.svg");
    line_chart(
        &out.join(&cdfp),
        &format!("{} on {}: latency CDF (send -> block seen)", call.name(), target.label),
        "latency, ms",
        "fraction of transactions",
        &[(target.label.clone(), cdf(&r.samples))],
    )?;
    plots.push(cdfp);
    let mut summary = vec![
        ("call".to_string(), call.name().to_string()),
        ("transactions sent".into(), r.sent.to_string()),
        (
            "accounts / batch size / concurrency / window".into(),
            format!("{} / {} / {} / {}", args.accounts, args.batch, args.concurrency, args.window),
        ),
        ("offered rate".into(), rate.map_or("as fast as accepted".into(), |r| format!("{r:.0} tx/s"))),
        ("included (receipt status 1 / 0)".into(), format!("{} ({ok} / {failed})", r.included)),
        ("refused by the endpoint".into(), r.rejected.to_string()),
        ("not included (stalled)".into(), r.lost.to_string()),
        ("first send -> last inclusion".into(), format!("{:.2} s", r.duration.as_secs_f64())),
        ("**throughput**".into(), format!("**{:.0} tx/s**", r.tps)),
    ];
    summary.extend(latency_rows(&r.latency));
    let mut notes = Vec::new();
    if !r.reasons.is_empty() {
        notes.push(format!("First refusals: {}", r.reasons.join("; ")));
    }
    let result = RunResult {
        name,
        workload: workload.to_string(),
        target: target.label.clone(),
        endpoints: target.endpoints(),
        started_unix,
        command,
        summary,
        table: None,
        data: json!({
            "call": call.name(), "sent": r.sent, "included": r.included, "receiptsOk": ok, "receiptsFailed": failed,
            "refused": r.rejected, "lost": r.lost, "durationSeconds": r.duration.as_secs_f64(), "tps": r.tps,
            "latencyMs": r.latency, "timeline": r.timeline, "gasPerTx": w.gas, "offeredTps": rate,
        }),
        plots,
        notes,
    };
    Ok(result)
}

/// `saturation`: steps of rising offered load until p99 exceeds `p99_limit_ms`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn saturation(
    target: &Target,
    call: Call,
    start_tps: f64,
    factor: f64,
    step_seconds: f64,
    max_steps: usize,
    p99_limit_ms: f64,
    args: &LoadArgs,
    out: &Path,
    command: String,
) -> eyre::Result<RunResult> {
    let mut rates = Vec::new();
    let mut r = start_tps;
    for _ in 0..max_steps {
        rates.push(r);
        r *= factor;
    }
    let total_txs: f64 = rates.iter().map(|r| r * step_seconds).sum();
    let per_account = (total_txs / args.accounts.max(1) as f64).ceil() as u64 + max_steps as u64;
    let mut w = Workload::prepare(target, call, args.accounts, per_account).await?;
    let started_unix = unix_now();
    let mut rows = Vec::new();
    let mut steps = Vec::new();
    let (mut best, mut curve_p50, mut curve_p99, mut achieved) = (0f64, Vec::new(), Vec::new(), Vec::new());
    for rate in rates {
        let txs = (rate * step_seconds).ceil() as usize;
        let batch = args.batch.min((rate / 20.0).ceil().max(1.0) as usize);
        let batches = w.sign_batches(target, txs, batch)?;
        let r = run(target, batches, Some(rate), args, &format!("{} @ {rate:.0}/s", call.name())).await?;
        let ok = r.latency.p99 <= p99_limit_ms && r.lost == 0 && r.rejected == 0;
        eprintln!(
            "offered {rate:.0} tx/s: {:.0} tx/s in blocks, p50 {:.1} ms, p99 {:.1} ms{}",
            r.tps,
            r.latency.p50,
            r.latency.p99,
            if ok { "" } else { "  <- over the limit" }
        );
        rows.push(vec![
            format!("{rate:.0}"),
            format!("{:.0}", r.tps),
            r.included.to_string(),
            r.rejected.to_string(),
            fmt_ms(r.latency.p50),
            fmt_ms(r.latency.p99),
            fmt_ms(r.latency.max),
        ]);
        curve_p50.push((rate, r.latency.p50));
        curve_p99.push((rate, r.latency.p99));
        achieved.push((rate, r.tps));
        steps.push(json!({"offered": rate, "tps": r.tps, "included": r.included, "refused": r.rejected, "lost": r.lost, "latencyMs": r.latency}));
        if !ok {
            break;
        }
        best = best.max(r.tps);
    }
    let name = format!("saturation-{}-{}", slug(call.name()), target.label);
    let lat = format!("{name}-latency.svg");
    line_chart(
        &out.join(&lat),
        &format!("{} on {}: latency vs offered load", call.name(), target.label),
        "offered, tx/s",
        "latency, ms",
        &[("p50".into(), curve_p50), ("p99".into(), curve_p99)],
    )?;
    let tput = format!("{name}-throughput.svg");
    let ideal: Vec<(f64, f64)> = achieved.iter().map(|(x, _)| (*x, *x)).collect();
    line_chart(
        &out.join(&tput),
        &format!("{} on {}: achieved vs offered", call.name(), target.label),
        "offered, tx/s",
        "in blocks, tx/s",
        &[("achieved".into(), achieved), ("offered".into(), ideal)],
    )?;
    Ok(RunResult {
        name,
        workload: "saturation".into(),
        target: target.label.clone(),
        endpoints: target.endpoints(),
        started_unix,
        command,
        summary: vec![
            ("call".into(), call.name().into()),
            ("step length".into(), format!("{step_seconds} s")),
            ("stop rule".into(), format!("p99 > {p99_limit_ms} ms, or any refused / lost transaction")),
            ("**highest sustained throughput**".into(), format!("**{best:.0} tx/s**")),
        ],
        table: Some(Table {
            columns: ["offered tx/s", "in blocks tx/s", "included", "refused", "p50", "p99", "max"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
        data: json!({"call": call.name(), "steps": steps, "highestSustainedTps": best}),
        plots: vec![tput, lat],
        notes: Vec::new(),
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A file-name-safe form of `s`.
pub(crate) fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}
