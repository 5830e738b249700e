//! `fogchain-bench` against a real 3-node devnet: every workload runs at a small size and its
//! results must account for every transaction / message (all included with a successful
//! receipt, nothing refused or lost), and the report and plots must be written.

use fogchain_e2e::{fogchain_bin, Devnet};
use serde_json::Value;
use std::{path::Path, process::Command};

fn bench(dir: &Path, args: &[&str]) -> Value {
    let bin = fogchain_bin().with_file_name("fogchain-bench");
    assert!(bin.exists(), "{} is missing: cargo build --workspace --all-targets", bin.display());
    let out = Command::new(&bin)
        .current_dir(dir)
        .args(args)
        .args(["--out", "results"])
        .output()
        .expect("run fogchain-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fogchain-bench {args:?} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    // the result file named in the summary line on stderr: "results: <path> (report: ...)"
    let path = stderr
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .and_then(|l| l.split(" (report").next())
        .unwrap_or_else(|| panic!("no results line in:\n{stderr}"));
    serde_json::from_str(&std::fs::read_to_string(dir.join(path)).unwrap()).unwrap()
}

#[test]
fn workloads_account_for_every_transaction_and_message() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Devnet::start(&tmp.path().join("devnet"));
    let network = tmp.path().join("devnet/network.json");
    let network = network.to_str().unwrap();
    let dir = tmp.path();

    let r = bench(
        dir,
        &["rpc-transfers", "--network", network, "--txs", "600", "--accounts", "30", "--batch", "50"],
    );
    let d = &r["data"];
    assert_eq!(d["sent"], 600, "{d}");
    assert_eq!(d["included"], 600, "{d}");
    assert_eq!(d["receiptsOk"], 600, "{d}");
    assert_eq!(d["refused"], 0, "{d}");
    assert!(d["tps"].as_f64().unwrap() > 0.0);
    let p99 = d["latencyMs"]["p99"].as_f64().unwrap();
    assert!(p99 >= d["latencyMs"]["p50"].as_f64().unwrap() && p99 > 0.0, "{d}");

    for call in ["danger-index", "record-signed"] {
        let r = bench(
            dir,
            &[
                "rpc-contract",
                "--network",
                network,
                "--call",
                call,
                "--txs",
                "120",
                "--accounts",
                "20",
                "--batch",
                "40",
            ],
        );
        let d = &r["data"];
        assert_eq!(d["included"], 120, "{call}: {d}");
        assert_eq!(d["receiptsOk"], 120, "{call}: every call must succeed (no revert): {d}");
    }

    let r = bench(
        dir,
        &[
            "saturation",
            "--network",
            network,
            "--start-tps",
            "100",
            "--factor",
            "2",
            "--step-seconds",
            "2",
            "--max-steps",
            "2",
            "--accounts",
            "20",
        ],
    );
    let steps = r["data"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{}", r["data"]);
    assert!(steps.iter().all(|s| s["included"].as_u64().unwrap() > 0 && s["refused"] == 0));

    let r = bench(
        dir,
        &[
            "seed-iot",
            "--network",
            network,
            "--devices",
            "25",
            "--messages",
            "25",
            "--rm-rates",
            "25",
            "--am-rate",
            "10",
        ],
    );
    let phases = r["data"]["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2, "{}", r["data"]);
    for p in phases {
        assert_eq!(p["done"], 25, "every message acked / decided: {p}");
        assert_eq!(p["failed"], 0, "{p}");
        assert!(p["doneMs"]["p99"].as_f64().unwrap() > 0.0);
    }
    // RMs really went on chain through the bench's own proxy (a gateway the operator added).
    assert_eq!(phases[0]["type"], "RM");
    assert_eq!(phases[1]["type"], "AM");

    let r = bench(
        dir,
        &[
            "iot-saturation",
            "--network",
            network,
            "--devices",
            "20",
            "--rates",
            "40,80",
            "--step-seconds",
            "1",
        ],
    );
    let steps = r["data"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{}", r["data"]);
    for s in steps {
        assert_eq!(s["recorded"], s["messages"], "every reading recorded: {s}");
        assert_eq!(s["refused"], 0, "{s}");
        assert!(s["recordedPerSecond"].as_f64().unwrap() > 0.0, "{s}");
    }

    let report = std::fs::read_to_string(dir.join("results/report.md")).unwrap();
    for section in
        ["## rpc-transfers", "## rpc-contract", "## saturation", "## seed-iot", "## iot-saturation"]
    {
        assert!(report.contains(section), "{section} missing from report.md:\n{report}");
    }
    for line in report.lines().filter(|l| l.starts_with("![")) {
        let file = line.split("](").nth(1).unwrap().trim_end_matches(')');
        let svg = std::fs::read_to_string(dir.join("results").join(file)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{file} has no line");
    }
    net.stop();
}
