//! Results: latency statistics, JSON files, SVG plots (plotters) and the Markdown report.
//!
//! Every run writes `<out>/<name>.json` (one [`RunResult`]) and its plots `<out>/<name>-*.svg`,
//! then rewrites `<out>/report.md` from all the JSON files in `<out>`, oldest first.

use eyre::WrapErr;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// Latency statistics, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Latency {
    pub(crate) samples: usize,
    pub(crate) avg: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Latency {
    /// Statistics of `samples` (milliseconds); sorts them.
    pub(crate) fn of(samples: &mut [f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let pct = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self {
            samples: n,
            avg: samples.iter().sum::<f64>() / n as f64,
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            max: samples[n - 1],
        }
    }
}

/// One run's result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunResult {
    /// File stem (`rpc-transfers-fogchain`, ...).
    pub(crate) name: String,
    pub(crate) workload: String,
    pub(crate) target: String,
    /// Endpoints the load went to.
    pub(crate) endpoints: Vec<String>,
    /// Unix time of the run's start, seconds.
    pub(crate) started_unix: u64,
    /// The command line.
    pub(crate) command: String,
    /// Headline figures, in display order: (name, value).
    pub(crate) summary: Vec<(String, String)>,
    /// A table (e.g. the paper's Table 2, or the saturation steps).
    pub(crate) table: Option<Table>,
    /// Everything measured, for machines.
    pub(crate) data: serde_json::Value,
    /// Plot files next to the JSON.
    pub(crate) plots: Vec<String>,
    /// Notes (what limits the figure, refusals).
    pub(crate) notes: Vec<String>,
}

/// A table for the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Table {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

/// Events per second over time from `t0`: (seconds, rate), in buckets of 1/50 of the span
/// (0.1 s to 5 s wide).
pub(crate) fn timeline(events: &[Instant], t0: Instant) -> Vec<(f64, f64)> {
    let Some(last) = events.iter().max() else { return Vec::new() };
    let span = last.saturating_duration_since(t0).as_secs_f64();
    let width = (span / 50.0).clamp(0.1, 5.0);
    let mut buckets = vec![0u64; (span / width) as usize + 1];
    for e in events {
        let i = (e.saturating_duration_since(t0).as_secs_f64() / width) as usize;
        let last = buckets.len() - 1;
        buckets[i.min(last)] += 1;
    }
    buckets.iter().enumerate().map(|(i, c)| ((i as f64 + 0.5) * width, *c as f64 / width)).collect()
}

/// Points of the empirical CDF of sorted `samples`: (value, fraction), at most ~400 points.
pub(crate) fn cdf(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = (n / 400).max(1);
    let mut points: Vec<(f64, f64)> =
        (0..n).step_by(step).map(|i| (sorted[i], (i + 1) as f64 / n as f64)).collect();
    points.push((sorted[n - 1], 1.0));
    points
}

/// Milliseconds of a duration.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A line chart of one or more series, as SVG.
pub(crate) fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> eyre::Result<()> {
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_max) = (1e-9f64, 1e-9f64);
    for (x, y) in all {
        x_max = x_max.max(*x);
        y_max = y_max.max(*y);
    }
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max * 1.05, 0f64..y_max * 1.1)?;
        chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], Palette99::pick(i)));
        }
        if series.len() > 1 {
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| eyre::eyre!("plotting {}: {e}", path.display()))
}

/// Writes `result` as `<out>/<name>.json` and rewrites `<out>/report.md`.
pub(crate) fn save(out: &Path, result: &RunResult) -> eyre::Result<()> {
    std::fs::create_dir_all(out).wrap_err_with(|| format!("creating {}", out.display()))?;
    let path = out.join(format!("{}.json", result.name));
    std::fs::write(&path, serde_json::to_string_pretty(result)?)?;
    let report = write_report(out)?;
    eprintln!("results: {} (report: {})", path.display(), report.display());
    Ok(())
}

/// Rewrites `<out>/report.md` from every result in `<out>`.
pub(crate) fn write_report(out: &Path) -> eyre::Result<std::path::PathBuf> {
    let mut results = Vec::new();
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            match serde_json::from_str::<RunResult>(&text) {
                Ok(r) => results.push(r),
                Err(e) => eprintln!("skipping {}: {e}", path.display()),
            }
        }
    }
    const ORDER: [&str; 5] = ["rpc-transfers", "rpc-contract", "saturation", "seed-iot", "restart"];
    let rank = |r: &RunResult| {
        let w = ORDER.iter().position(|w| *w == r.workload).unwrap_or(ORDER.len());
        (w, r.target != "fogchain", r.target.clone(), r.name.clone())
    };
    results.sort_by_key(rank);
    let mut md = String::from(
        "# Fogchain benchmark report\n\nWritten by `fogchain-bench` from the JSON results in this \
         directory (one file per workload, call and target: a rerun replaces its section). See \
         docs/benchmarks.md for how to reproduce each run.\n",
    );
    // side by side: throughput of each RPC workload on each target
    let burst: Vec<&RunResult> = results
        .iter()
        .filter(|r| {
            r.workload.starts_with("rpc-") && r.data.get("tps").is_some() && r.data["offeredTps"].is_null()
        })
        .collect();
    if !burst.is_empty() {
        let mut targets: Vec<String> = burst.iter().map(|r| r.target.clone()).collect();
        targets.sort_by_key(|t| (t != "fogchain", t.clone()));
        targets.dedup();
        let mut calls: Vec<String> = Vec::new();
        for r in &burst {
            let call = r.data["call"].as_str().unwrap_or("?").to_string();
            if !calls.contains(&call) {
                calls.push(call);
            }
        }
        md.push_str(&format!(
            "\n## Side by side: throughput (transactions in blocks per second, as fast as accepted)\n\n| call | {} |\n|---|{}\n",
            targets.join(" | "),
            "---|".repeat(targets.len())
        ));
        for call in &calls {
            let cells: Vec<String> = targets
                .iter()
                .map(|t| {
                    burst
                        .iter()
                        .filter(|r| &r.target == t && r.data["call"].as_str() == Some(call))
                        .max_by_key(|r| r.started_unix)
                        .and_then(|r| r.data["tps"].as_f64())
                        .map_or("—".to_string(), |tps| format!("{tps:.0}"))
                })
                .collect();
            md.push_str(&format!("| {call} | {} |\n", cells.join(" | ")));
        }
    }
    for r in &results {
        md.push_str(&format!("\n## {} — {}\n\n", r.workload, r.target));
        md.push_str(&format!(
            "Endpoints: {}. Command: `{}`. Started: unix {}.\n\n",
            r.endpoints.join(", "),
            r.command,
            r.started_unix
        ));
        md.push_str("| figure | value |\n|---|---|\n");
        for (k, v) in &r.summary {
            md.push_str(&format!("| {k} | {v} |\n"));
        }
        if let Some(t) = &r.table {
            md.push_str(&format!("\n| {} |\n|{}\n", t.columns.join(" | "), "---|".repeat(t.columns.len())));
            for row in &t.rows {
                md.push_str(&format!("| {} |\n", row.join(" | ")));
            }
        }
        for n in &r.notes {
            md.push_str(&format!("\n{n}\n"));
        }
        md.push('\n');
        for p in &r.plots {
            md.push_str(&format!("![{p}]({p})\n"));
        }
    }
    let path = out.join("report.md");
    std::fs::write(&path, md)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let l = Latency::of(&mut v);
        assert_eq!((l.samples, l.p50, l.p90, l.p99, l.max), (100, 50.0, 90.0, 99.0, 100.0));
        assert!((l.avg - 50.5).abs() < 1e-9);
        let mut one = vec![7.0];
        let l = Latency::of(&mut one);
        assert_eq!((l.p50, l.p99, l.max), (7.0, 7.0, 7.0));
        assert_eq!(Latency::of(&mut []).samples, 0);
    }

    #[test]
    fn timeline_rates_sum_to_the_event_count() {
        let t0 = Instant::now();
        let events: Vec<Instant> = (0..1000).map(|i| t0 + Duration::from_millis(i * 10)).collect();
        let tl = timeline(&events, t0);
        let width = tl[1].0 - tl[0].0;
        let total: f64 = tl.iter().map(|(_, r)| r * width).sum();
        assert!((total - 1000.0).abs() < 1e-6, "{total}");
        // 100 events per second throughout
        assert!(tl[..tl.len() - 1].iter().all(|(_, r)| (r - 100.0).abs() < 15.0), "{tl:?}");
    }

    #[test]
    fn cdf_ends_at_one_and_rises() {
        let v: Vec<f64> = (0..10_000).map(f64::from).collect();
        let c = cdf(&v);
        assert!(c.len() <= 402);
        assert_eq!(*c.last().unwrap(), (9_999.0, 1.0));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
