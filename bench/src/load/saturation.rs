//! `saturation`: open-loop steps of offered load until p99 latency passes a limit or anything
//! is refused or lost.

use crate::chain::Target;
use crate::report::{line_chart, RunResult, Table};
use serde_json::json;
use std::path::Path;

use super::{fmt_ms, run::run, slug, unix_now, workload::Workload, Call, LoadArgs};

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
