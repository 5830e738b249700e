//! `iot-saturation`: how many readings per second one proxy records, and at what latency.
//!
//! Like `seed-iot`, the bench starts its own proxy next to a running devnet with `--devices` MQTT
//! devices (one rumqttc connection each, QoS 1). It then offers registry messages (the paper's
//! RM) at rising rates, `--step-seconds` per step, round robin over the devices, open loop, and
//! stops after the step whose p99 latency passes `--p99-limit-ms`. Latency is the bench's
//! monotonic clock from the device's publish to its `recorded` ack (the reading's transaction is
//! in a block); "accepted" is the ack that the proxy journaled it. Each step reports readings/s
//! recorded (over the time from the step's start to its last recorded ack) and p50/p99.

use crate::iot::{done_count, message, rig, Rig, RigArgs};
use crate::load::{slug, unix_now};
use crate::report::{cdf, line_chart, ms, Latency, RunResult, Table};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rumqttc::QoS;
use serde_json::json;
use std::time::{Duration, Instant};

/// Options of `iot-saturation`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SaturationArgs {
    #[command(flatten)]
    pub(crate) rig: RigArgs,
    /// Offered rates, readings/s, in order.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,3000,4000,5000,6000,8000,10000")]
    rates: Vec<f64>,
    /// Length of a step, seconds.
    #[arg(long, default_value_t = 10.0)]
    step_seconds: f64,
    /// Registry messages per `recordBatch` transaction (the proxy's `[chain] batch-max`).
    #[arg(long, default_value_t = 400)]
    batch_max: usize,
    /// The p99 latency (publish -> recorded) that ends the search, ms.
    #[arg(long, default_value_t = 1000.0)]
    p99_limit_ms: f64,
}

/// Runs the search and returns its result.
pub(crate) async fn run(args: &SaturationArgs, command: String) -> eyre::Result<RunResult> {
    // The bench measures the proxy and the chain, not the per-device rate limit.
    let limits = "device-messages-per-second = 100000\ndevice-burst = 100000";
    let chain = format!("batch-max = {}", args.batch_max);
    let Rig { target, danger, ids, clients, shared, mut child, .. } =
        rig(&args.rig, "iot-saturation", (&chain, limits), "127.0.0.1:0").await?;
    let started_unix = unix_now();
    let mut rows = Vec::new();
    let mut data = Vec::new();
    let mut cdfs = Vec::new();
    let mut recorded_curve = Vec::new();
    let mut p99_curve = Vec::new();
    for (step, rate) in args.rates.iter().copied().enumerate() {
        let phase = step as u64 + 1;
        let total = (rate * args.step_seconds).round() as usize;
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg:>18} [{bar:40.cyan/blue}] {pos}/{len} recorded ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("{rate} readings/s"));
        let t0 = Instant::now();
        for i in 0..total {
            let due = t0 + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let d = i % ids.len();
            let seq = phase * 1_000_000 + (i / ids.len()) as u64 + 1;
            let body = message("RM", &ids[d], seq, danger);
            shared
                .lock()
                .messages
                .insert((d, seq), crate::iot::Times { sent: Some(Instant::now()), ..Default::default() });
            // try_publish: a full client queue counts as a refusal, never blocks the schedule
            if clients[d]
                .try_publish(
                    format!("devices/{}/messages", ids[d]),
                    QoS::AtLeastOnce,
                    false,
                    body.to_string(),
                )
                .is_err()
            {
                if let Some(t) = shared.lock().messages.get_mut(&(d, seq)) {
                    t.failed = true;
                }
            }
            if i % 256 == 0 {
                bar.set_position(done_count(&shared, phase) as u64);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while done_count(&shared, phase) < total && Instant::now() < deadline {
            bar.set_position(done_count(&shared, phase) as u64);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bar.finish_and_clear();
        let times: Vec<crate::iot::Times> = {
            let mut s = shared.lock();
            let keys: Vec<_> = s.messages.keys().filter(|(_, q)| q / 1_000_000 == phase).copied().collect();
            keys.iter().filter_map(|k| s.messages.remove(k)).collect()
        };
        let mut accepted: Vec<f64> =
            times.iter().filter_map(|t| Some(ms(t.accepted?.duration_since(t.sent?)))).collect();
        let mut recorded: Vec<f64> =
            times.iter().filter_map(|t| Some(ms(t.done?.duration_since(t.sent?)))).collect();
        let failed = times.iter().filter(|t| t.failed).count();
        let done_at: Vec<Instant> = times.iter().filter_map(|t| t.done).collect();
        let span = done_at.iter().max().map_or(0.0, |last| last.duration_since(t0).as_secs_f64());
        let per_second = done_at.len() as f64 / span.max(1e-9);
        let missing = total - done_at.len() - failed.min(total - done_at.len());
        let (la, lr) = (Latency::of(&mut accepted), Latency::of(&mut recorded));
        eprintln!(
            "{rate} offered: {per_second:.0} recorded/s ({} of {total}, {failed} refused, {missing} missing); \
             publish -> recorded p50 {:.1} ms p99 {:.1} ms; -> accepted p99 {:.1} ms",
            done_at.len(),
            lr.p50,
            lr.p99,
            la.p99
        );
        rows.push(vec![
            format!("{rate}"),
            format!("{per_second:.0}"),
            format!("{} / {total}", done_at.len()),
            failed.to_string(),
            format!("{:.1}", la.p50),
            format!("{:.1}", la.p99),
            format!("{:.1}", lr.p50),
            format!("{:.1}", lr.p99),
            format!("{:.1}", lr.max),
        ]);
        data.push(json!({"offered": rate, "recordedPerSecond": per_second, "messages": total,
            "recorded": done_at.len(), "refused": failed, "missing": missing, "seconds": span,
            "acceptedMs": la, "recordedMs": lr}));
        cdfs.push((format!("{rate}/s"), cdf(&recorded)));
        recorded_curve.push((rate, per_second));
        p99_curve.push((rate, lr.p99));
        if lr.p99 > args.p99_limit_ms || done_at.len() < total / 2 {
            break;
        }
    }
    drop(clients);
    let _ = child.kill().await;
    let name = format!("iot-saturation-{}", slug(&args.rig.label));
    let files = [
        (
            format!("{name}-recorded.svg"),
            "iot-saturation: readings recorded per second",
            "readings / s recorded",
            vec![
                ("recorded".to_string(), recorded_curve.clone()),
                ("offered".to_string(), recorded_curve.iter().map(|(r, _)| (*r, *r)).collect()),
            ],
        ),
        (
            format!("{name}-p99.svg"),
            "iot-saturation: p99 publish -> recorded",
            "p99 latency, ms",
            vec![("p99".to_string(), p99_curve.clone())],
        ),
    ];
    for (file, title, y, series) in &files {
        line_chart(&args.rig.out.join(file), title, "offered readings / s", y, series)?;
    }
    let cdf_file = format!("{name}-latency-cdf.svg");
    line_chart(
        &args.rig.out.join(&cdf_file),
        "iot-saturation: latency CDF per step",
        "publish -> recorded, ms",
        "fraction",
        &cdfs,
    )?;
    let reasons = shared.lock().reasons.clone();
    let mut notes = vec![format!(
        "{} devices, each its own MQTT connection (rumqttc, QoS 1) to the proxy's embedded broker; \
         registry messages at each offered rate for {} s, round robin over the devices, open loop; \
         the search stops after the step whose p99 (publish -> `recorded` ack) passes {} ms. \
         Per-device rate limits are lifted for the run.",
        args.rig.devices, args.step_seconds, args.p99_limit_ms
    )];
    if !reasons.is_empty() {
        notes.push(format!("Refusals / failures: {}", reasons.join("; ")));
    }
    let mut plots: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    plots.push(cdf_file);
    Ok(RunResult {
        name,
        workload: "iot-saturation".into(),
        target: args.rig.label.clone(),
        endpoints: target.endpoints(),
        started_unix,
        command,
        summary: vec![
            ("devices".into(), args.rig.devices.to_string()),
            ("step".into(), format!("{} s", args.step_seconds)),
            ("batch-max".into(), args.batch_max.to_string()),
        ],
        table: Some(Table {
            columns: [
                "offered readings/s",
                "recorded readings/s",
                "recorded",
                "refused",
                "accepted p50 (ms)",
                "accepted p99 (ms)",
                "recorded p50 (ms)",
                "recorded p99 (ms)",
                "max (ms)",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }),
        data: json!({"steps": data}),
        plots,
        notes,
    })
}
