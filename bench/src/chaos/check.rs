//! The checker: what the history and the nodes' final state must satisfy.
//!
//! - every transaction that got a receipt is, on every node, in the block the receipt named;
//! - one block hash per height, in the history (any node, any time) and on every node at the
//!   end, and equal state roots;
//! - every device message the proxy acknowledged is recorded on chain exactly once, and no
//!   message twice;
//! - after each fault that took the leader away, the time until a block from another minter
//!   (commits resumed);
//! - every node up and at the same head at the end.

use super::load::Event;
use crate::{chain::Target, iot::Times, rpc::Rpc};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use alloy_sol_types::SolEvent;
use fogchain_contracts::{DangerIndex, SensorRegistry};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The verdict and its evidence.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Verdict {
    pub(crate) receipted: usize,
    /// Receipted transactions missing on a node or in another block there.
    pub(crate) lost_receipted: Vec<String>,
    pub(crate) heights_checked: u64,
    /// Heights with two hashes (in the history or across nodes), or differing state roots.
    pub(crate) forks: Vec<String>,
    pub(crate) messages_accepted: usize,
    pub(crate) messages_recorded: usize,
    pub(crate) messages_lost: Vec<String>,
    pub(crate) messages_duplicated: Vec<String>,
    /// Messages refused with a failure ack (counted, not an error: e.g. proxy queue full).
    pub(crate) messages_refused: usize,
    /// Nodes not up or not at the common head at the end.
    pub(crate) stuck: Vec<String>,
    /// Nodes that exited without being told to (not a disk-full fail-stop).
    pub(crate) unexpected_exits: Vec<String>,
    /// Nodes that kept running on a full disk after a restart (they must stop).
    pub(crate) full_disk_running: Vec<String>,
}

impl Verdict {
    /// The failed checks, in words (empty: the run passed).
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |what: &str, v: &[String]| {
            if !v.is_empty() {
                out.push(format!("{} {what} (first: {})", v.len(), v[0]));
            }
        };
        add("receipted transactions lost", &self.lost_receipted);
        add("forks", &self.forks);
        add("acknowledged device messages lost", &self.messages_lost);
        add("device messages recorded twice", &self.messages_duplicated);
        add("nodes stuck", &self.stuck);
        add("unexpected node exits", &self.unexpected_exits);
        add("nodes running on a full disk", &self.full_disk_running);
        out
    }
}

/// Receipts of the history against every node.
pub(crate) async fn receipts(events: &[Event], nodes: &[Rpc], verdict: &mut Verdict) -> eyre::Result<()> {
    let mut receipted: BTreeMap<B256, (u64, B256)> = BTreeMap::new();
    for e in events {
        if let Event::Receipt { hash, block, block_hash, .. } = e {
            if let Some(seen) = receipted.insert(*hash, (*block, *block_hash)) {
                if seen != (*block, *block_hash) {
                    verdict
                        .forks
                        .push(format!("receipts of {hash} name blocks {seen:?} and {block} {block_hash}"));
                }
            }
        }
    }
    verdict.receipted = receipted.len();
    let hashes: Vec<(&B256, &(u64, B256))> = receipted.iter().collect();
    for (i, rpc) in nodes.iter().enumerate() {
        for chunk in hashes.chunks(500) {
            let calls: Vec<(&str, Value)> =
                chunk.iter().map(|(h, _)| ("eth_getTransactionReceipt", json!([h]))).collect();
            let answers = rpc.batch(&calls).await?;
            for ((hash, (block, block_hash)), answer) in chunk.iter().zip(answers) {
                let at =
                    answer.ok().and_then(|r| r["blockHash"].as_str().and_then(|s| s.parse::<B256>().ok()));
                if at != Some(*block_hash) {
                    verdict.lost_receipted.push(format!("{hash} (block {block}) on node{i}: {at:?}"));
                }
            }
        }
    }
    Ok(())
}

/// Block hashes seen in the history, then every height on every node.
pub(crate) async fn blocks(events: &[Event], nodes: &[Rpc], verdict: &mut Verdict) -> eyre::Result<u64> {
    let mut seen: HashMap<u64, B256> = HashMap::new();
    for e in events {
        if let Event::Head { number, hash, node, .. } = e {
            if let Some(other) = seen.insert(*number, *hash) {
                if other != *hash {
                    verdict.forks.push(format!("height {number}: {other} and {hash} (node{node})"));
                }
            }
        }
    }
    let mut heads = Vec::new();
    for rpc in nodes {
        heads.push(rpc.quantity("eth_blockNumber", json!([])).await? as u64);
    }
    let top = heads.iter().copied().min().unwrap_or(0);
    let mut from = 0;
    while from <= top {
        let to = top.min(from + 499);
        let calls: Vec<(&str, Value)> =
            (from..=to).map(|n| ("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))).collect();
        let mut first: Vec<(Option<String>, Option<String>)> = Vec::new();
        for (i, rpc) in nodes.iter().enumerate() {
            let answers = rpc.batch(&calls).await?;
            let got: Vec<(Option<String>, Option<String>)> = answers
                .into_iter()
                .map(|a| {
                    a.ok().map_or((None, None), |b| {
                        (b["hash"].as_str().map(str::to_string), b["stateRoot"].as_str().map(str::to_string))
                    })
                })
                .collect();
            if i == 0 {
                first = got;
                continue;
            }
            for (k, (a, b)) in first.iter().zip(&got).enumerate() {
                if a != b || a.0.is_none() {
                    verdict.forks.push(format!("height {}: node0 {a:?}, node{i} {b:?}", from + k as u64));
                }
            }
        }
        from = to + 1;
    }
    verdict.heights_checked = top + 1;
    Ok(top)
}

/// Where device messages end up on chain.
pub(crate) struct Contracts {
    pub(crate) registry: Address,
    pub(crate) danger: Address,
    /// Device ids by index.
    pub(crate) devices: Vec<String>,
}

/// Device messages: acknowledged ones exactly once on chain, none twice. Registry messages are
/// Readings of SensorRegistry (the payload names device and seq); action messages are
/// DangerIndex.submit transactions (region = keccak256(device id), `p` = seq).
pub(crate) async fn messages(
    rpc: &Rpc,
    contracts: &Contracts,
    head: u64,
    sent: &[((usize, u64), Times)],
    verdict: &mut Verdict,
) -> eyre::Result<()> {
    let regions: HashMap<B256, usize> = contracts
        .devices
        .iter()
        .enumerate()
        .map(|(i, id)| (alloy_primitives::keccak256(id.as_bytes()), i))
        .collect();
    let mut counts: HashMap<(usize, u64), usize> = HashMap::new();
    let mut from = 0;
    while from <= head {
        let to = head.min(from + 199);
        let range = |address: Address, topic: B256| json!([{"fromBlock": format!("0x{from:x}"), "toBlock": format!("0x{to:x}"), "address": address, "topics": [topic]}]);
        let readings = rpc
            .call("eth_getLogs", range(contracts.registry, SensorRegistry::Reading::SIGNATURE_HASH))
            .await?;
        for log in readings.as_array().into_iter().flatten() {
            if let Some(key) = chaos_key(log) {
                *counts.entry(key).or_default() += 1;
            }
        }
        let updates = rpc
            .call("eth_getLogs", range(contracts.danger, DangerIndex::DangerIndexUpdated::SIGNATURE_HASH))
            .await?;
        let txs: Vec<(&str, Value)> = updates
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| Some(("eth_getTransactionByHash", json!([l["transactionHash"].as_str()?]))))
            .collect();
        for tx in rpc.batch(&txs).await? {
            let input = tx.ok().and_then(|t| alloy_primitives::hex::decode(t["input"].as_str()?).ok());
            if let Some(call) = input.and_then(|i| DangerIndex::submitCall::abi_decode(&i).ok()) {
                if let (Some(d), Ok(seq)) = (regions.get(&call.region), u64::try_from(call.p)) {
                    *counts.entry((*d, seq)).or_default() += 1;
                }
            }
        }
        from = to + 1;
    }
    verdict.messages_recorded = counts.len();
    for ((d, seq), n) in &counts {
        if *n > 1 {
            verdict.messages_duplicated.push(format!("device {d} seq {seq}: {n} times"));
        }
    }
    for ((d, seq), t) in sent {
        if t.failed {
            verdict.messages_refused += 1;
        } else if t.accepted.is_some() || t.done.is_some() {
            verdict.messages_accepted += 1;
            if !counts.contains_key(&(*d, *seq)) {
                verdict.messages_lost.push(format!("device {d} seq {seq}"));
            }
        }
    }
    Ok(())
}

/// (device, seq) of a Reading whose payload is a chaos message (`{"chaos":"d:seq"}`).
fn chaos_key(log: &Value) -> Option<(usize, u64)> {
    let topics: Vec<B256> =
        log["topics"].as_array()?.iter().filter_map(|t| t.as_str()?.parse().ok()).collect();
    let data = alloy_primitives::hex::decode(log["data"].as_str()?).ok()?;
    let event = SensorRegistry::Reading::decode_log_data(&alloy_primitives::LogData::new_unchecked(
        topics,
        data.into(),
    ))
    .ok()?;
    let payload: Value = serde_json::from_slice(&event.payload).ok()?;
    let (d, seq) = payload["chaos"].as_str()?.split_once(':')?;
    Some((d.parse().ok()?, seq.parse().ok()?))
}

/// Seconds from each leader loss (fault time, the lost leader's address) to the first block
/// minted by another node above the highest block seen before the fault.
pub(crate) fn resumptions(events: &[Event], losses: &[(f64, Address)]) -> Vec<Option<f64>> {
    losses
        .iter()
        .map(|(t, old)| {
            let before = events
                .iter()
                .filter_map(|e| match e {
                    Event::Head { t: at, number, .. } if at <= t => Some(*number),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            events.iter().find_map(|e| match e {
                Event::Head { t: at, number, miner, .. } if at > t && *number > before && miner != old => {
                    Some(at - t)
                }
                _ => None,
            })
        })
        .collect()
}

/// Heads of every node at the end: the ones not at the highest head (or not answering).
pub(crate) async fn converged(nodes: &[Rpc]) -> Vec<String> {
    let mut heads = Vec::new();
    for rpc in nodes {
        let head = rpc.call("eth_getBlockByNumber", json!(["latest", false])).await.ok();
        heads.push(
            head.and_then(|b| Some((b["number"].as_str()?.to_string(), b["hash"].as_str()?.to_string()))),
        );
    }
    let distinct: HashSet<_> = heads.iter().collect();
    if distinct.len() == 1 && heads[0].is_some() {
        return Vec::new();
    }
    heads.iter().enumerate().map(|(i, h)| format!("node{i} head {h:?}")).collect()
}

/// Liveness at the end: one transfer through each node must get a receipt from every node
/// within 60 s; the nodes that fail to (the others were stuck or cut off).
pub(crate) async fn live(target: &Target, key: &PrivateKeySigner, nodes: &[Rpc]) -> Vec<String> {
    let mut stuck = Vec::new();
    for (i, rpc) in nodes.iter().enumerate() {
        let sent = async {
            let nonce =
                rpc.quantity("eth_getTransactionCount", json!([key.address(), "pending"])).await? as u64;
            let tx =
                target.sign(key, nonce, TxKind::Call(key.address()), U256::ZERO, Bytes::new(), 21_000)?;
            rpc.call("eth_sendRawTransaction", json!([tx.raw_hex()])).await?;
            Ok::<_, eyre::Report>(tx.hash)
        };
        let hash = match sent.await {
            Ok(h) => h,
            Err(e) => {
                stuck.push(format!("node{i} refused a transfer at the end: {e:#}"));
                continue;
            }
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for (j, other) in nodes.iter().enumerate() {
            loop {
                let receipt = other.call("eth_getTransactionReceipt", json!([hash])).await;
                if receipt.is_ok_and(|r| !r.is_null()) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    stuck.push(format!(
                        "node{j} has no receipt of a transfer sent through node{i} after 60 s"
                    ));
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    stuck
}
