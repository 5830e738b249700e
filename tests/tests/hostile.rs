//! Hostile input on a 3-node devnet: no request halts the chain, exhausts a node or starves
//! other clients. Each part ends by checking that a well-priced transfer is still mined within
//! two blocks and that the node's memory stayed bounded.

use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use fogchain_client::Fees;
use fogchain_e2e::{
    rss_bytes,
    tx::{key, legacy, sign, transfer},
    Devnet, Rpc,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Bound on a node's resident memory during the attacks, bytes (it idles at ~100 MiB).
const RSS_LIMIT: u64 = 1536 << 20;

/// Sends a well-priced transfer and checks it lands at most two blocks after the head it was
/// sent at.
fn well_priced_transfer_is_mined(rpc: &Rpc, sender: &PrivateKeySigner, chain_id: u64) {
    let nonce = rpc.quantity("eth_getTransactionCount", json!([sender.address(), "pending"]));
    let (raw, hash) = sign(sender, transfer(chain_id, nonce, Address::repeat_byte(0x42), 1));
    let head = rpc.block_number();
    rpc.call("eth_sendRawTransaction", json!([raw]));
    let receipt = rpc.wait_receipt(&hash);
    let mined_in =
        u64::from_str_radix(receipt["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(mined_in <= head + 2, "sent at head {head}, mined in block {mined_in}");
}

fn fee_tx(chain_id: u64, nonce: u64, fees: Fees, gas: u64) -> alloy_consensus::TxEip1559 {
    fogchain_client::eip1559(
        chain_id,
        nonce,
        TxKind::Call(Address::repeat_byte(7)),
        U256::ZERO,
        Bytes::new(),
        gas,
        fees,
    )
}

fn error_of(result: Result<Value, fogchain_client::RpcError>) -> (i64, String) {
    let e = result.expect_err("the request must be refused");
    (e.code, e.message)
}

#[test]
fn hostile_requests_neither_halt_the_chain_nor_exhaust_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let chain_id = devnet.network.chain_id;
    let leader = devnet.leader_index(0);
    let rpc = devnet.rpc(leader);
    let honest = key(&devnet.account_key(0));
    let pid = devnet.node_pid(leader);
    let gas_limit = rpc.call("eth_getBlockByNumber", json!(["latest", false]))["gasLimit"].clone();
    let gas_limit = u64::from_str_radix(gas_limit.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();

    // 1. Pool liveness. Zero fee cap, the whole block's gas, keys without ether: refused by the
    // price limit (geth's wording), as is a legacy gasPrice 0.
    for _ in 0..3 {
        let (raw, _) =
            sign(&PrivateKeySigner::random(), fee_tx(chain_id, 0, Fees { max_fee: 0, tip: 0 }, gas_limit));
        let (code, message) = error_of(rpc.try_call("eth_sendRawTransaction", json!([raw])));
        assert_eq!(
            (code, message.as_str()),
            (-32000, "transaction underpriced: gas tip cap 0, minimum needed 1")
        );
    }
    let mut zero_price = legacy(Some(chain_id), 0, Address::repeat_byte(7), 0);
    zero_price.gas_price = 0;
    let (raw, _) = sign(&PrivateKeySigner::random(), zero_price);
    assert!(error_of(rpc.try_call("eth_sendRawTransaction", json!([raw])))
        .1
        .starts_with("transaction underpriced"));
    // Funded keys that pay 1 wei (far below the base fee) with the whole block's gas: pooled,
    // but they never hold up the block, and no run of empty blocks follows.
    for i in 1..4 {
        let payer = key(&devnet.account_key(i));
        let (raw, _) = sign(&payer, fee_tx(chain_id, 0, Fees { max_fee: 1, tip: 1 }, gas_limit));
        rpc.call("eth_sendRawTransaction", json!([raw]));
    }
    let before = rpc.block_number();
    well_priced_transfer_is_mined(&rpc, &honest, chain_id);
    well_priced_transfer_is_mined(&rpc, &honest, chain_id);
    std::thread::sleep(Duration::from_secs(2));
    assert!(rpc.block_number() <= before + 2, "no empty blocks for fee caps the base fee cannot reach");
    let content = rpc.call("txpool_status", json!([]));
    assert_eq!(content["pending"], json!("0x3"), "{content}");

    // 2. A trace of a deep stack in an endless loop stops at its bounds, not at 14 GiB.
    let mut code = vec![0x5f; 1000]; // 1000 x PUSH0
    code.extend([0x5b, 0x61, 0x03, 0xe8, 0x56]); // JUMPDEST PUSH2 1000 JUMP
    let call = json!({ "from": honest.address(), "input": Bytes::from(code.clone()), "gas": "0x2faf080" });
    let started = Instant::now();
    let (code_, message) = error_of(rpc.try_call("debug_traceCall", json!([call, "latest", {}])));
    assert_eq!(code_, -32000);
    assert!(message.starts_with("execution aborted"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let rss = rss_bytes(pid).unwrap();
    assert!(rss < RSS_LIMIT, "node RSS {} MiB after the trace", rss >> 20);
    well_priced_transfer_is_mined(&rpc, &honest, chain_id);

    // 3. eth_feeHistory: over 100 percentiles refused; blocks capped at 1024.
    let percentiles: Vec<f64> = (0..101).map(f64::from).map(|p| p.min(100.0)).collect();
    let (_, message) = error_of(rpc.try_call("eth_feeHistory", json!(["0x400", "latest", percentiles])));
    assert_eq!(message, "invalid reward percentile: over the query limit 100");
    let history = rpc.call("eth_feeHistory", json!(["0xffffffff", "latest", [50.0]]));
    assert!(history["gasUsedRatio"].as_array().unwrap().len() <= 1024);

    // 4. A flood of looping eth_calls on four connections: the excess is refused (busy or
    // aborted), every other client keeps its answers, the chain keeps going.
    let loop_call = json!({ "from": honest.address(), "input": "0x5b5f56" }); // JUMPDEST PUSH0 JUMP
    let idle = latencies(&rpc, 200);
    let url = devnet.rpc_url(leader);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop, call) = (url.clone(), stop.clone(), loop_call.clone());
            std::thread::spawn(move || {
                let flood = Rpc::new(&url);
                let calls: Vec<(&str, Value)> =
                    (0..10).map(|_| ("eth_call", json!([call, "latest"]))).collect();
                let mut refused = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    refused += flood.batch(&calls).into_iter().filter(|r| r.is_err()).count();
                }
                refused
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let loaded = latencies(&rpc, 200);
    well_priced_transfer_is_mined(&rpc, &honest, chain_id);
    let rss = rss_bytes(pid).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refused: usize = flooders.into_iter().map(|t| t.join().unwrap()).sum();
    println!(
        "eth_blockNumber p50/p99 idle {:?}/{:?}, under an eth_call flood {:?}/{:?}; {refused} calls refused; RSS {} MiB",
        idle.0, idle.1, loaded.0, loaded.1, rss >> 20
    );
    assert!(refused > 0, "the flood was not refused at all");
    assert!(rss < RSS_LIMIT, "node RSS {} MiB under the flood", rss >> 20);
    // Generous: the 2x-of-idle target is measured by the bench on an idle machine, not here.
    assert!(loaded.1 < Duration::from_secs(2), "eth_blockNumber p99 {:?} under the flood", loaded.1);

    // 5. Health and readiness on the RPC port.
    let ready = reqwest::blocking::get(format!("{url}/ready")).unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().unwrap()["status"], "ok");
    assert_eq!(reqwest::blocking::get(format!("{url}/health")).unwrap().status(), 200);

    // 6. Connections and filters per client address, at the defaults (256 / 1,000).
    connections_per_address_are_capped(&url);
    let installs: Vec<(&str, Value)> = (0..1000).map(|_| ("eth_newBlockFilter", json!([]))).collect();
    let installed = rpc.batch(&installs).into_iter().filter(|r| r.is_ok()).count();
    assert!(installed <= 1000);
    let (code, message) = error_of(rpc.try_call("eth_newBlockFilter", json!([])));
    assert_eq!((code, message.as_str()), (-32005, "too many filters from this address (limit 1000)"));
    well_priced_transfer_is_mined(&rpc, &honest, chain_id);
    devnet.stop();
}

/// Opens 300 idle TCP connections from 127.0.0.1: those over the per-address cap (256, with
/// whatever the devnet's proxy and this test already hold) are answered 429 and closed; once
/// they are closed, a new client is served again.
fn connections_per_address_are_capped(url: &str) {
    use std::io::Read;
    let addr = url.trim_start_matches("http://").to_string();
    let held: Vec<std::net::TcpStream> =
        (0..300).map(|_| std::net::TcpStream::connect(&addr).expect("connect")).collect();
    let refused = wait_for_refusals(&held);
    assert!((44..=300).contains(&refused), "{refused} of 300 connections refused");
    assert!(300 - refused <= 256, "{} connections open from one address", 300 - refused);
    let mut one = std::net::TcpStream::connect(&addr).unwrap();
    one.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = String::new();
    let _ = one.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    drop(held);
    fogchain_e2e::wait_for("a connection to be served again", || {
        reqwest::blocking::get(format!("{url}/health")).ok().filter(|r| r.status() == 200)
    });
}

/// How many of `streams` got the 429 answer (waits until the count stops changing).
fn wait_for_refusals(streams: &[std::net::TcpStream]) -> usize {
    let mut last = usize::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let refused = streams
            .iter()
            .filter(|s| {
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 12];
                matches!(s.peek(&mut buf), Ok(12) if &buf == b"HTTP/1.1 429")
            })
            .count();
        if refused == last {
            return refused;
        }
        last = refused;
    }
}

/// (p50, p99) of `n` sequential eth_blockNumber calls.
fn latencies(rpc: &Rpc, n: usize) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            rpc.block_number();
            t.elapsed()
        })
        .collect();
    all.sort();
    (all[n / 2], all[n * 99 / 100])
}
