//! `rpc-transfers` / `rpc-contract`: a burst of pre-signed transactions.

use crate::chain::{check_receipts, Target};
use crate::report::{cdf, line_chart, RunResult};
use serde_json::json;
use std::{path::Path, time::Instant};

use super::{
    latency_rows,
    run::{run, Batch},
    slug, unix_now,
    workload::Workload,
    Call, LoadArgs,
};

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
        command: crate::command_line(),
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
