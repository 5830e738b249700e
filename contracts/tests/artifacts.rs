//! The committed artifacts are exactly what the pinned solc makes of the sources.

#[test]
fn artifacts_match_a_fresh_compile() {
    // Read when the test runs (cargo and nextest set it), not baked in at build time.
    let dir = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    );
    assert!(
        dir.join("node_modules/solc").exists(),
        "npm packages missing: run `npm ci --prefix contracts` (scripts/test.sh does it)"
    );
    let out = std::process::Command::new("node")
        .arg(dir.join("scripts/build.mjs"))
        .arg("--check")
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
