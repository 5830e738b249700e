//! The committed artifacts are exactly what the pinned solc makes of the sources.

#[test]
fn artifacts_match_a_fresh_compile() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
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
