//! Fail-stop: a node whose disk is full stops with a non-zero exit and a log line naming the
//! fault, instead of serving a stale chain; the others go on; freed and restarted, it resumes
//! from its last good state and catches up.
//!
//! The node's database directory is a small tmpfs (needs root, as CI and the dev machine have):
//! 48 MiB, smaller than RocksDB's 64 MiB WAL preallocation, which then fails (RocksDB goes on
//! without it), so a full disk is seen at the next write rather than 64 MiB later.

use alloy_primitives::Address;
use fogchain_e2e::{
    process_alive,
    tx::{key, sign, transfer},
    wait_converged, wait_for, Devnet, NodeProcess,
};
use serde_json::json;
use std::{io::Write, path::Path, process::Command};

/// Mounts a tmpfs of `mib` MiB at `dir`; false when this machine does not allow it.
fn mount_tmpfs(dir: &Path, mib: u32) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount<'a>(&'a Path);
impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_node_with_a_full_disk_stops_loudly_and_resumes_when_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let node2 = dir.path().join("node2");
    let data = node2.join("data");
    assert!(mount_tmpfs(&data, 48), "mounting a tmpfs needs root (CI runs as root)");
    let _unmount = Unmount(&data);
    let devnet = Devnet::start(dir.path());
    let chain_id = devnet.network.chain_id;
    let sender = key(&devnet.account_key(0));
    let leader = devnet.leader_index(0);
    let serving = if leader == 2 { 0 } else { leader };
    let rpc = devnet.rpc(serving);
    let pid = devnet.node_pid(2);

    fill(&data.join("filler"));
    // Blocks keep coming; node2 cannot persist them.
    let mut nonce = 0;
    wait_for("node2 to stop on the full disk", || {
        let (raw, hash) = sign(&sender, transfer(chain_id, nonce, Address::repeat_byte(1), 1));
        nonce += 1;
        rpc.call("eth_sendRawTransaction", json!([raw]));
        rpc.wait_receipt(&hash);
        (!process_alive(pid)).then_some(())
    });
    let log = std::fs::read_to_string(node2.join("node.log")).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("node failed, stopping"))
        .unwrap_or_else(|| panic!("node2 log:\n{log}"));
    println!("{line}");
    assert!(line.contains("No space left on device"), "the log line names the fault: {line}");
    wait_for("the launcher to report node2's exit status", || {
        let out = std::fs::read_to_string(dir.path().join("devnet.out")).unwrap();
        out.contains("node2 exited with exit status: 1").then_some(())
    });

    // The other two go on.
    let (raw, hash) = sign(&sender, transfer(chain_id, nonce, Address::repeat_byte(1), 1));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    rpc.wait_receipt(&hash);

    // Freed and restarted, node2 resumes and catches up.
    std::fs::remove_file(data.join("filler")).unwrap();
    let mut restarted = NodeProcess::start(&devnet.node_config(2), &node2);
    let rpc2 = restarted.rpc();
    let others: Vec<_> = (0..2).map(|i| devnet.rpc(i)).collect();
    wait_converged(&[&others[0], &others[1], &rpc2]);
    drop(restarted);
    devnet.stop();
}
