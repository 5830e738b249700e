//! `fogchain-bench chaos` for 60 s on 3 nodes and a proxy: faults of every kind the machine
//! allows (kills, pauses, partitions, clock jumps, a proxy crash, a full disk when it may mount a
//! loop device), then the checker: no receipted transaction lost, no fork, every acknowledged
//! device message on chain exactly once, every node live and at one head. The bench exits 1 when a
//! check fails; the test also reads the verdict from the result file.

use fogchain_e2e::fogchain_bin;
use serde_json::Value;
use std::process::Command;

#[test]
fn sixty_seconds_of_faults_lose_nothing_and_fork_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bench = fogchain_bin().with_file_name("fogchain-bench");
    assert!(bench.exists(), "{} is missing: cargo build --workspace --all-targets", bench.display());
    // Seeded: a failure replays with the same faults in the same order. Faults come every 8-12 s
    // so that a minute sees five or so.
    let out = Command::new(&bench)
        .args([
            "chaos",
            "--nodes",
            "3",
            "--duration",
            "60",
            "--seed",
            "17",
            "--fault-min",
            "8",
            "--fault-max",
            "12",
        ])
        .arg("--fogchain-bin")
        .arg(fogchain_bin())
        .arg("--out")
        .arg(tmp.path())
        .output()
        .expect("run fogchain-bench chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    let result: Value = std::fs::read_to_string(tmp.path().join("chaos-3.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no chaos-3.json:\n{stdout}\n{stderr}"));
    let verdict = &result["data"]["verdict"];
    assert!(out.status.success(), "chaos failed: {verdict:#}");
    for list in ["lostReceipted", "forks", "messagesLost", "messagesDuplicated", "stuck", "unexpectedExits"] {
        assert_eq!(verdict[list].as_array().map(Vec::len), Some(0), "{list}: {verdict:#}");
    }
    assert!(verdict["receipted"].as_u64().unwrap() > 100, "the load ran: {verdict:#}");
    assert!(verdict["messagesAccepted"].as_u64().unwrap() > 100, "the devices ran: {verdict:#}");
    let faults = result["data"]["faults"].as_array().unwrap();
    assert!(faults.len() >= 3, "faults were injected: {faults:#?}");
    assert!(tmp.path().join("chaos-3-timeline.svg").exists() && tmp.path().join("report.md").exists());
}
