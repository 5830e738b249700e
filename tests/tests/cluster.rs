//! The Raft cluster with real processes: one chain on every node, failover after SIGKILL,
//! catch-up by snapshot + block sync, partitions, runtime membership changes, and refusal of
//! non-members. Measured figures (failover time, commit latency) are printed for the record;
//! benchmarks, not these tests, hold the performance targets.

use alloy_primitives::Address;
use alloy_signer_local::PrivateKeySigner;
use fogchain_e2e::{
    assert_one_chain, free_port, kill,
    tx::{key, sign, transfer},
    wait_converged, wait_for, Devnet, NodeProcess, Rpc,
};
use serde_json::{json, Value};
use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

const SINK: Address = Address::repeat_byte(0x42);

fn chain_id(devnet: &Devnet) -> u64 {
    devnet.network.chain_id
}

/// Sends one transfer and waits for its receipt, polling quickly; returns the latency.
fn send_and_wait(rpc: &Rpc, sender: &PrivateKeySigner, chain_id: u64, nonce: u64) -> Duration {
    let (raw, hash) = sign(sender, transfer(chain_id, nonce, SINK, 1));
    let start = Instant::now();
    rpc.call("eth_sendRawTransaction", json!([raw]));
    // Polled every millisecond (not with `wait_for`'s 50 ms) so the latency is measured.
    loop {
        if !rpc.call("eth_getTransactionReceipt", json!([hash])).is_null() {
            return start.elapsed();
        }
        assert!(start.elapsed() < fogchain_e2e::TIMEOUT, "no receipt for {hash}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A thread sending a transfer every 10 ms from one account to one node; records the hashes
/// the node accepted.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, sender: PrivateKeySigner, chain_id: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let rpc = Rpc::new(&url);
            let mut nonce = 0;
            while !s.load(Ordering::Acquire) {
                let (raw, hash) = sign(&sender, transfer(chain_id, nonce, SINK, 1));
                if rpc.try_call("eth_sendRawTransaction", json!([raw])).is_ok() {
                    h.lock().unwrap().push(hash);
                    nonce += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self { stop, sent, thread: Some(thread) }
    }

    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.sent()
    }
}

fn receipt(rpc: &Rpc, hash: &str) -> Value {
    rpc.call("eth_getTransactionReceipt", json!([hash]))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
fn three_nodes_agree_on_one_chain_and_followers_forward() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    assert_eq!(devnet.node_count(), 3);
    let chain_id = chain_id(&devnet);
    let leader = devnet.leader_index(0);
    let rpcs: Vec<Rpc> = (0..3).map(|i| devnet.rpc(i)).collect();

    // Sequential transfers through each follower: commit latency at low load.
    let mut latencies = Vec::new();
    for (n, follower) in (0..3).filter(|i| *i != leader).enumerate() {
        let sender = key(&devnet.account_key(n + 1));
        for nonce in 0..50 {
            latencies.push(send_and_wait(&rpcs[follower], &sender, chain_id, nonce));
        }
    }
    // And through the leader.
    let sender = key(&devnet.account_key(3));
    for nonce in 0..50 {
        latencies.push(send_and_wait(&rpcs[leader], &sender, chain_id, nonce));
    }
    latencies.sort();
    println!(
        "commit latency (send -> receipt at the receiving node), {} sequential txs: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );

    // Bursts from several accounts to all nodes at once.
    let mut hashes = Vec::new();
    for nonce in 0..20u64 {
        for (account, rpc) in [(4usize, &rpcs[0]), (5, &rpcs[1]), (6, &rpcs[2])] {
            let (raw, hash) = sign(&key(&devnet.account_key(account)), transfer(chain_id, nonce, SINK, 1));
            rpc.call("eth_sendRawTransaction", json!([raw]));
            hashes.push(hash);
        }
    }
    for hash in &hashes {
        let r = wait_for("burst receipt", || Some(receipt(&rpcs[0], hash)).filter(|r| !r.is_null()));
        assert_eq!(r["status"], "0x1");
    }
    let refs: Vec<&Rpc> = rpcs.iter().collect();
    let head = wait_converged(&refs);
    assert!(head >= 150, "at least one block per sequential tx, head {head}");
    assert_one_chain(&refs, head);
    // Every receipt is the same on every node.
    for hash in hashes.iter().take(10) {
        let r: Vec<Value> = rpcs.iter().map(|rpc| receipt(rpc, hash)).collect();
        assert_eq!(r[0], r[1]);
        assert_eq!(r[0], r[2]);
    }
    // Blocks are sealed by the leader (beneficiary = its sealing address).
    let block = rpcs[0].call("eth_getBlockByNumber", json!(["latest", false]));
    let leader_address = devnet.network.nodes[leader].address.unwrap().to_string().to_lowercase();
    assert_eq!(block["miner"].as_str().unwrap().to_lowercase(), leader_address);
    devnet.stop();
}

#[test]
fn leader_sigkill_fails_over_without_losing_receipted_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let chain_id = chain_id(&devnet);
    let leader = devnet.leader_index(0);
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let load = Load::start(devnet.rpc_url(a), key(&devnet.account_key(1)), chain_id);
    let rpc_a = devnet.rpc(a);
    wait_for("steady load", || (rpc_a.block_number() >= 20).then_some(()));
    let receipted: Vec<(String, Value)> = load
        .sent()
        .into_iter()
        .filter_map(|h| {
            let r = receipt(&rpc_a, &h);
            (!r.is_null()).then(|| (h, r["blockHash"].clone()))
        })
        .collect();
    assert!(receipted.len() >= 10);

    let old_leader_address = devnet.network.nodes[leader].address.unwrap().to_string().to_lowercase();
    kill(devnet.node_pid(leader), libc::SIGKILL);
    let killed_at = Instant::now();
    // Failover: the first block sealed by another node.
    let mut seen = rpc_a.block_number();
    let failover = wait_for("a block from a new leader", || loop {
        let head = rpc_a.block_number();
        if head <= seen {
            std::thread::sleep(Duration::from_millis(5));
            return None;
        }
        seen += 1;
        let block = rpc_a.call("eth_getBlockByNumber", json!([format!("0x{seen:x}"), false]));
        if block["miner"].as_str().unwrap().to_lowercase() != old_leader_address {
            return Some(killed_at.elapsed());
        }
    });
    println!("failover (SIGKILL of the leader -> first block committed by the new leader): {failover:?}");
    assert!(
        failover < Duration::from_secs(2),
        "failover took {failover:?} (target: a new leader commits within 2 s)"
    );

    std::thread::sleep(Duration::from_millis(500));
    let sent = load.finish();
    let rpc_b = devnet.rpc(b);
    // Everything sent (also what was in flight at the kill) is mined, once.
    for hash in &sent {
        let r = wait_for("receipt after failover", || Some(receipt(&rpc_a, hash)).filter(|r| !r.is_null()));
        assert_eq!(r["status"], "0x1");
    }
    for (hash, block) in &receipted {
        assert_eq!(&receipt(&rpc_b, hash)["blockHash"], block, "receipted tx {hash} moved");
    }
    let nonce =
        rpc_a.quantity("eth_getTransactionCount", json!([key(&devnet.account_key(1)).address(), "latest"]));
    assert_eq!(nonce, sent.len() as u64, "every accepted tx applied exactly once");

    // The killed node restarts and reaches the same head.
    let mut restarted = devnet.restart_node(leader);
    let rpc_old = restarted.rpc();
    let head = wait_converged(&[&rpc_a, &rpc_b, &rpc_old]);
    assert_one_chain(&[&rpc_a, &rpc_b, &rpc_old], head);
    drop(restarted);
    devnet.stop();
}

#[test]
fn a_node_down_for_1000_blocks_catches_up_by_snapshot_and_block_sync() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start_with(dir.path(), &["--log-retention", "50"]);
    let chain_id = chain_id(&devnet);
    let leader = devnet.leader_index(0);
    let down = (leader + 1) % 3;
    let up = (leader + 2) % 3;
    kill(devnet.node_pid(down), libc::SIGKILL);
    let rpc = devnet.rpc(up);
    let sender = key(&devnet.account_key(1));
    let start = rpc.block_number();
    let mut nonce = 0;
    while rpc.block_number() < start + 1_050 {
        send_and_wait(&rpc, &sender, chain_id, nonce);
        nonce += 1;
    }
    let status = devnet.admin_rpc(leader).call("admin_nodeInfo", json!([]));
    let first_index = status["protocols"]["raft"]["firstIndex"].as_u64().unwrap();
    assert!(first_index > 900, "the leader compacted its log (first index {first_index})");

    let mut restarted = devnet.restart_node(down);
    let rpc_down = restarted.rpc();
    let rpc_leader = devnet.rpc(leader);
    let head = wait_converged(&[&rpc, &rpc_leader, &rpc_down]);
    assert_one_chain(&[&rpc, &rpc_leader, &rpc_down], head);
    let log = std::fs::read_to_string(devnet.dir.join(format!("node{down}/node.log"))).unwrap();
    assert!(log.contains("installing snapshot"), "caught up through a snapshot");
    assert!(log.contains("block sync done"));
    // And it follows new blocks afterwards.
    send_and_wait(&rpc_down, &sender, chain_id, nonce);
    let head = wait_converged(&[&rpc, &rpc_leader, &rpc_down]);
    assert_eq!(
        rpc_down.call("eth_getBlockByNumber", json!([format!("0x{head:x}"), false]))["stateRoot"],
        rpc.call("eth_getBlockByNumber", json!([format!("0x{head:x}"), false]))["stateRoot"]
    );
    drop(restarted);
    devnet.stop();
}

fn raft_id(devnet: &Devnet, i: usize) -> u64 {
    devnet.network.nodes[i].raft_id
}

fn commit_index(devnet: &Devnet, i: usize) -> u64 {
    devnet.admin_rpc(i).call("admin_nodeInfo", json!([]))["protocols"]["raft"]["commitIndex"]
        .as_u64()
        .unwrap()
}

fn cut(devnet: &Devnet, i: usize, from: &[u64]) {
    let text: Vec<String> = from.iter().map(u64::to_string).collect();
    std::fs::write(devnet.dir.join(format!("node{i}/partition")), text.join(" ")).unwrap();
}

#[test]
fn a_minority_partition_commits_nothing_and_the_chain_stays_one() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start_with(dir.path(), &["--fault-injection"]);
    let chain_id = chain_id(&devnet);
    let old = devnet.leader_index(0);
    let (a, b) = ((old + 1) % 3, (old + 2) % 3);
    let rpc_old = devnet.rpc(old);
    let rpc_a = devnet.rpc(a);
    let rpc_b = devnet.rpc(b);
    send_and_wait(&rpc_a, &key(&devnet.account_key(1)), chain_id, 0);

    cut(&devnet, old, &[raft_id(&devnet, a), raft_id(&devnet, b)]);
    cut(&devnet, a, &[raft_id(&devnet, old)]);
    cut(&devnet, b, &[raft_id(&devnet, old)]);
    // The majority elects a new leader.
    let new = wait_for("a new leader in the majority", || {
        let l = devnet.leader_index(a);
        (l != old).then_some(l)
    });
    // The isolated node accepts a tx into its pool but cannot commit it.
    let minority_sender = key(&devnet.account_key(2));
    let (raw, stranded) = sign(&minority_sender, transfer(chain_id, 0, SINK, 7));
    rpc_old.call("eth_sendRawTransaction", json!([raw]));
    let minority_commit = commit_index(&devnet, old);
    // Meanwhile the majority goes on.
    let majority_sender = key(&devnet.account_key(3));
    for nonce in 0..10 {
        send_and_wait(&devnet.rpc(new), &majority_sender, chain_id, nonce);
    }
    assert!(receipt(&rpc_old, &stranded).is_null(), "the minority committed a tx");
    assert_eq!(commit_index(&devnet, old), minority_commit, "the minority advanced its commit index");
    assert!(rpc_old.block_number() < rpc_a.block_number());

    // Heal: one chain, and the stranded tx is forwarded and mined.
    for i in 0..3 {
        std::fs::remove_file(devnet.dir.join(format!("node{i}/partition"))).unwrap();
    }
    let r = wait_for("the stranded tx after healing", || {
        Some(receipt(&rpc_a, &stranded)).filter(|r| !r.is_null())
    });
    assert_eq!(r["status"], "0x1");
    let head = wait_converged(&[&rpc_old, &rpc_a, &rpc_b]);
    assert_one_chain(&[&rpc_old, &rpc_a, &rpc_b], head);
    devnet.stop();
}

/// Prepares `DIR/nodeN` for a node that is not in genesis: key, config; returns its p2p address.
fn outsider(devnet: &Devnet, name: &str, join_id: u64) -> (String, std::path::PathBuf) {
    let dir = devnet.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let key = PrivateKeySigner::random();
    std::fs::write(dir.join("nodekey"), alloy_primitives::hex::encode(key.to_bytes())).unwrap();
    let peer = fogchain_consensus::peer_id(key.to_bytes().0).unwrap();
    let port = free_port();
    write_join_config(&dir, port, join_id);
    (format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}"), dir)
}

fn write_join_config(dir: &Path, port: u16, join_id: u64) {
    let config = format!(
        "datadir = \"data\"\ngenesis = \"../genesis.json\"\nnode-key = \"nodekey\"\nrpc-addr-file = \"rpc.addr\"\n\n\
         [rpc]\naddr = \"127.0.0.1:0\"\n\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/{port}\"\n\n[raft]\njoin-existing = {join_id}\n"
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
}

#[test]
fn learner_added_promoted_and_a_member_removed_while_committing() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let chain_id = chain_id(&devnet);
    let leader = devnet.leader_index(0);
    let load = Load::start(devnet.rpc_url(leader), key(&devnet.account_key(1)), chain_id);
    let admin = devnet.admin_rpc(leader);
    let (addr, node_dir) = outsider(&devnet, "node3", 4);

    // Membership changes need the admin token.
    let err = devnet.rpc(leader).try_call("raft_addLearner", json!([addr])).unwrap_err();
    assert_eq!(err.code, -32001, "{}", err.message);
    let id = admin.call("raft_addLearner", json!([addr])).as_u64().unwrap();
    assert_eq!(id, 4);
    let mut node = NodeProcess::start(&node_dir.join("config.toml"), &node_dir);
    let rpc_new = node.rpc();
    let rpc_leader = devnet.rpc(leader);
    wait_for("the learner to catch up", || {
        (rpc_new.block_number() >= rpc_leader.block_number().max(1)).then_some(())
    });
    assert_eq!(rpc_new.call("raft_role", json!([])), "learner");

    assert_eq!(admin.call("raft_promoteToPeer", json!([id])), true);
    wait_for("the promotion applied on the new node", || {
        (rpc_new.call("raft_role", json!([])) == "verifier").then_some(())
    });

    let removed = (leader + 1) % 3;
    admin.call("raft_removePeer", json!([raft_id(&devnet, removed)]));
    let cluster = rpc_leader.call("raft_cluster", json!([]));
    let ids: Vec<u64> = cluster.as_array().unwrap().iter().map(|m| m["raftId"].as_u64().unwrap()).collect();
    assert!(!ids.contains(&raft_id(&devnet, removed)) && ids.contains(&4), "cluster {cluster}");

    // Commits continued throughout: every tx of the load is mined.
    std::thread::sleep(Duration::from_millis(500));
    let sent = load.finish();
    for hash in &sent {
        let r = wait_for("load receipt", || Some(receipt(&rpc_leader, hash)).filter(|r| !r.is_null()));
        assert_eq!(r["status"], "0x1");
    }
    let kept = 3 - leader - removed; // the third original node
    let rpc_kept = devnet.rpc(kept);
    let head = wait_converged(&[&rpc_leader, &rpc_kept, &rpc_new]);
    assert_one_chain(&[&rpc_leader, &rpc_kept, &rpc_new], head);
    drop(node);
    devnet.stop();
}

#[test]
fn a_non_member_cannot_connect_or_get_anything_applied() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let chain_id = chain_id(&devnet);
    let (addr, node_dir) = outsider(&devnet, "intruder", 2);
    let peer = addr.rsplit('/').next().unwrap().to_string();
    let mut node = NodeProcess::start(&node_dir.join("config.toml"), &node_dir);
    let rpc_intruder = node.rpc();
    // It dials every member; they refuse it right after the Noise handshake.
    wait_for("members to refuse the intruder", || {
        (0..3)
            .any(|i| {
                std::fs::read_to_string(devnet.dir.join(format!("node{i}/node.log")))
                    .unwrap_or_default()
                    .contains("refused an incoming p2p connection")
            })
            .then_some(())
    });
    send_and_wait(&devnet.rpc(0), &key(&devnet.account_key(1)), chain_id, 0);
    for i in 0..3 {
        let peers = devnet.admin_rpc(i).call("admin_peers", json!([]));
        assert!(!peers.to_string().contains(&peer), "node{i} lists the intruder: {peers}");
        assert_eq!(devnet.rpc(i).call("net_peerCount", json!([])), "0x2");
    }
    assert_eq!(rpc_intruder.block_number(), 0, "the intruder got blocks");
    let log = || std::fs::read_to_string(node_dir.join("node.log")).unwrap_or_default();
    assert_eq!(rpc_intruder.call("raft_role", json!([])), "", "intruder log:\n{}", log());
    drop(node);
    devnet.stop();
}

#[test]
fn a_leader_stopping_gracefully_hands_over_leadership() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let chain_id = chain_id(&devnet);
    let leader = devnet.leader_index(0);
    let other = (leader + 1) % 3;
    let pid = devnet.node_pid(leader);
    kill(pid, libc::SIGTERM);
    let stopped_at = Instant::now();
    wait_for("the leader to exit", || (!fogchain_e2e::process_alive(pid)).then_some(()));
    let new = devnet.leader_index(other);
    assert_ne!(new, leader);
    let handover = stopped_at.elapsed();
    println!("graceful stop of the leader -> new leader known: {handover:?}");
    let log = std::fs::read_to_string(devnet.dir.join(format!("node{leader}/node.log"))).unwrap();
    assert!(log.contains("transferring leadership"), "the leader did not transfer leadership");
    assert!(log.contains("leadership handed over"));
    send_and_wait(&devnet.rpc(other), &key(&devnet.account_key(1)), chain_id, 0);
    devnet.stop();
}
