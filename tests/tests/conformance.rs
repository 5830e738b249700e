//! Ethereum's blockchain reference tests (tests/fixtures/ethereum: 525 Prague tests of
//! execution-spec-tests, 59 Cancun header/block tests of ethereum/tests) through
//! `fogchain blocktest`, as CI runs them: every test passes, none is skipped. The extra set
//! (tests/fixtures/ethereum-extra: Osaka, transitions, blob sidecars, system-contract
//! deployment) passes with only the listed skips.

use fogchain_e2e::fogchain_bin;
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
        .join("fixtures/ethereum")
}

fn blocktest(args: &[&str]) -> (bool, Vec<Value>, String) {
    let out = std::process::Command::new(fogchain_bin())
        .arg("blocktest")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let results = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (out.status.success(), results, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_reference_test_passes() {
    let dir = fixtures();
    let (ok, results, stderr) = blocktest(&[dir.to_str().unwrap()]);
    let failed: Vec<_> = results.iter().filter(|r| r["status"] != "pass").collect();
    for r in &failed {
        eprintln!("{} {}: {}", r["status"], r["name"], r["reason"]);
    }
    assert_eq!(results.len(), 584, "{stderr}");
    assert!(failed.is_empty(), "{} of {} did not pass", failed.len(), results.len());
    assert!(ok);
    assert!(stderr.contains("584 passed, 0 failed, 0 skipped"), "{stderr}");
}

#[test]
fn osaka_transitions_and_edge_cases_pass_with_only_listed_skips() {
    let dir = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("fixtures/ethereum-extra");
    let (ok, results, stderr) = blocktest(&[dir.to_str().unwrap()]);
    let count = |status: &str| results.iter().filter(|r| r["status"] == status).count();
    for r in results.iter().filter(|r| r["status"] == "fail") {
        eprintln!("FAIL {}: {}", r["name"], r["reason"]);
    }
    assert!(ok, "{stderr}");
    assert_eq!((count("pass"), count("fail"), count("skip")), (124, 0, 30), "{stderr}");
    for r in results.iter().filter(|r| r["status"] == "skip") {
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.starts_with("EIP-7610"), "{r}");
    }
    let passed = |fork: &str| {
        results.iter().filter(|r| r["status"] == "pass" && r["name"].as_str().unwrap().contains(fork)).count()
    };
    assert!(
        passed("fork_Osaka") >= 15 && passed("BPO") >= 20,
        "Osaka {} BPO {}",
        passed("fork_Osaka"),
        passed("BPO")
    );
}

#[test]
fn a_failing_test_fails_the_run() {
    // A fixture whose expected head is wrong must FAIL (and exit 1), never pass.
    let source = fixtures().join("ethereum-tests/BlockchainTests/ValidBlocks");
    let file = walk(&source).into_iter().next().expect("a ValidBlocks fixture");
    let mut tests: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let (name, test) = tests.iter_mut().next().unwrap();
    let name = name.clone();
    test["lastblockhash"] = Value::String(format!("0x{}", "11".repeat(32)));
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, serde_json::to_string(&tests).unwrap()).unwrap();
    let (ok, results, _) =
        blocktest(&[broken.to_str().unwrap(), "--run", &format!("^{}$", regex_escape(&name))]);
    assert!(!ok);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["status"], "fail");
    assert!(results[0]["reason"].as_str().unwrap().contains("lastblockhash"), "{}", results[0]);
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    out
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if "\\.+*?()|[]{}^$".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}
