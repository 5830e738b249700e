//! The browser apps (`web/`): the committed build is what the sources build to, and the pages
//! work in Debian's Chromium (driven by playwright-core from npm) on a devnet: shop (list, buy,
//! barcode, locker release), dashboard (cluster, live blocks, danger index after an MQTT action
//! message, shadows: an operator sets one, a viewer cannot), phone-width layouts. Screenshots go
//! to docs/apps/.

use fogchain_e2e::{repo_root, run_client, Devnet};
use std::{path::Path, process::Command};

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_web_build_is_what_the_sources_build_to() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("npm")
        .args(["run", "build", "--prefix"])
        .arg(repo_root().join("web"))
        .args(["--", "--outDir"])
        .arg(out.path())
        .arg("--emptyOutDir")
        .output()
        .expect("npm (scripts/test.sh installs web/'s packages)");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let built = files(out.path());
    let committed = files(&repo_root().join("web/dist"));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&built),
        names(&committed),
        "rebuild web/: npm run build --prefix web, and commit web/dist"
    );
    for ((name, a), (_, b)) in built.iter().zip(&committed) {
        assert!(
            a == b,
            "web/dist/{name} differs from a fresh build: npm run build --prefix web, and commit web/dist"
        );
    }
}

#[test]
fn shop_and_dashboard_work_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let network = dir.path().join("network.json");
    let shots = repo_root().join("docs/apps");
    run_client("node", "tests/js/browser-apps.mjs", &[network.as_os_str(), shots.as_os_str()]);
    devnet.stop();
}
