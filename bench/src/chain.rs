//! The chain under test: endpoints, chain id, fees, accounts, signing, setup transactions and
//! the block follower that times inclusion.

use crate::rpc::{quantity, Rpc};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::{coins_bip39::English, MnemonicBuilder, PrivateKeySigner};
use eyre::{bail, eyre, WrapErr};

use fogchain_client::{eip1559, Fees, SignedTx};
use fogchain_devnet::NetworkFile;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::{
    collections::HashMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use fogchain_devnet::TEST_MNEMONIC;

/// 1 gwei in wei.
pub(crate) const GWEI: u128 = 1_000_000_000;

/// The chain under test.
pub(crate) struct Target {
    /// Label in results ("fogchain", "hardhat", ...).
    pub(crate) label: String,
    /// One endpoint per node; transactions are spread over all of them.
    pub(crate) nodes: Vec<Rpc>,
    pub(crate) chain_id: u64,
    /// Prefunded accounts that pay for setup and fund the load accounts.
    pub(crate) funders: Vec<PrivateKeySigner>,
    /// A Fogchain devnet's network.json, when the target is one.
    pub(crate) network: Option<NetworkFile>,
    /// maxFeePerGas of every load transaction, wei.
    pub(crate) max_fee: u128,
}

impl Target {
    /// Connects to `--rpc` URLs or a devnet's network.json.
    pub(crate) async fn connect(
        rpc: &[String],
        network: &Path,
        label: Option<String>,
        max_fee_gwei: u128,
    ) -> eyre::Result<Self> {
        let (urls, network, default_label) = if rpc.is_empty() {
            let file = NetworkFile::load(network)
                .wrap_err("start a devnet with `fogchain devnet`, or give --rpc URL")?;
            let urls: Vec<String> = file.nodes.iter().map(|n| n.rpc.clone()).collect();
            (urls, Some(file), "fogchain".to_string())
        } else {
            let urls: Vec<String> =
                rpc.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_string()).collect();
            (urls, None, "endpoint".to_string())
        };
        if urls.is_empty() {
            bail!("no RPC endpoint");
        }
        let nodes = urls.iter().map(|u| Rpc::new(u)).collect::<eyre::Result<Vec<_>>>()?;
        let chain_id = nodes[0].quantity("eth_chainId", json!([])).await? as u64;
        for n in &nodes[1..] {
            let id = n.quantity("eth_chainId", json!([])).await? as u64;
            if id != chain_id {
                bail!("{} serves chain {id}, {} chain {chain_id}", n.url(), nodes[0].url());
            }
        }
        let funders = (0..10)
            .map(|i| {
                MnemonicBuilder::<English>::default()
                    .phrase(TEST_MNEMONIC)
                    .index(i)
                    .and_then(|b| b.build())
                    .map_err(|e| eyre!("test mnemonic: {e}"))
            })
            .collect::<eyre::Result<Vec<_>>>()?;
        Ok(Self {
            label: label.unwrap_or(default_label),
            nodes,
            chain_id,
            funders,
            network,
            max_fee: max_fee_gwei * GWEI,
        })
    }

    /// The nodes' URLs (for results).
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url().to_string()).collect()
    }

    /// Signs an EIP-1559 transaction with the load fee cap and a 1 wei tip.
    pub(crate) fn sign(
        &self,
        key: &PrivateKeySigner,
        nonce: u64,
        to: TxKind,
        value: U256,
        input: Bytes,
        gas: u64,
    ) -> eyre::Result<SignedTx> {
        let fees = Fees { max_fee: self.max_fee, tip: 1 };
        Ok(fogchain_client::sign(key, eip1559(self.chain_id, nonce, to, value, input, gas, fees))?)
    }

    /// The latest nonce of `address`.
    pub(crate) async fn nonce(&self, address: Address) -> eyre::Result<u64> {
        Ok(self.nodes[0].quantity("eth_getTransactionCount", json!([address, "pending"])).await? as u64)
    }

    /// Sends setup transactions (already signed, any senders) in batches to node 0 and waits
    /// until each has a successful receipt.
    pub(crate) async fn setup(&self, what: &str, txs: Vec<SignedTx>) -> eyre::Result<()> {
        let started = Instant::now();
        let n = txs.len();
        for chunk in txs.chunks(200) {
            let calls: Vec<(&str, Value)> =
                chunk.iter().map(|t| ("eth_sendRawTransaction", json!([t.raw_hex()]))).collect();
            for (t, answer) in chunk.iter().zip(self.nodes[0].batch(&calls).await?) {
                if let Err(e) = answer {
                    bail!("{what}: transaction {} refused: {e}", t.hash);
                }
            }
        }
        let mut waiting: Vec<B256> = txs.iter().map(|t| t.hash).collect();
        let deadline = Instant::now() + Duration::from_secs(300);
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for chunk in waiting.chunks(500) {
                let calls: Vec<(&str, Value)> =
                    chunk.iter().map(|h| ("eth_getTransactionReceipt", json!([h]))).collect();
                for (h, answer) in chunk.iter().zip(self.nodes[0].batch(&calls).await?) {
                    match answer {
                        Ok(r) if r.is_null() => still.push(*h),
                        Ok(r) if quantity(&r["status"]) != Some(1) => {
                            bail!("{what}: transaction {h} reverted")
                        }
                        Ok(_) => {}
                        Err(e) => bail!("{what}: receipt of {h}: {e}"),
                    }
                }
            }
            waiting = still;
            if Instant::now() > deadline {
                bail!("{what}: {} of {n} transactions not mined after 300 s", waiting.len());
            }
            if !waiting.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        eprintln!("setup: {what}: {n} transactions in {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Funds `accounts` with `wei` each from the prefunded accounts (round robin), and on a
    /// chain with account permissioning permits them first ([`Target::permit`]).
    pub(crate) async fn fund(&self, accounts: &[PrivateKeySigner], wei: U256) -> eyre::Result<()> {
        self.permit(&accounts.iter().map(|a| a.address()).collect::<Vec<_>>()).await?;
        let mut nonces = Vec::new();
        for f in &self.funders {
            nonces.push(self.nonce(f.address()).await?);
        }
        let mut txs = Vec::new();
        for (i, a) in accounts.iter().enumerate() {
            let f = i % self.funders.len();
            txs.push(self.sign(
                &self.funders[f],
                nonces[f],
                TxKind::Call(a.address()),
                wei,
                Bytes::new(),
                21_000,
            )?);
            nonces[f] += 1;
        }
        self.setup("funding the load accounts", txs).await
    }

    /// On a chain with account permissioning (code at `ACCOUNT_PERMISSIONS`), funder 0 proposes
    /// that `accounts` may transact and deploy as members of organisation 1. On a devnet funder 0
    /// is the only admin and one approval executes the proposal; elsewhere the other admins must
    /// approve it, and this fails saying so.
    pub(crate) async fn permit(&self, accounts: &[Address]) -> eyre::Result<()> {
        use alloy_sol_types::SolCall;
        use fogchain_contracts::AccountPermissions as P;
        let contract = fogchain_devnet::ACCOUNT_PERMISSIONS;
        let code = self.nodes[0].call("eth_getCode", json!([contract, "latest"])).await?;
        if code.as_str().is_none_or(|c| c == "0x") || accounts.is_empty() {
            return Ok(());
        }
        let all = fogchain_devnet::roles::TRANSACT | fogchain_devnet::roles::DEPLOY;
        // One proposal of 200 accounts per transaction: ~5.5M gas, well inside a block.
        let proposals = accounts
            .chunks(200)
            .map(|list| {
                let action = P::setAccountsCall { list: list.to_vec(), org: 1, roles: all }.abi_encode();
                P::proposeCall { actions: vec![action.into()] }.abi_encode()
            })
            .collect();
        self.admin_calls("permitting the load accounts", contract, proposals).await?;
        let probe = P::canTransactCall { account: accounts[accounts.len() - 1] }.abi_encode();
        let answer = self.nodes[0]
            .call(
                "eth_call",
                json!([{"to": contract, "data": format!("0x{}", hex::encode(probe))}, "latest"]),
            )
            .await?;
        if answer.as_str().is_none_or(|a| !a.ends_with('1')) {
            bail!(
                "the load accounts are proposed but not yet permitted: the network's permissioning needs more admin approvals than {}'s (docs/permissioning.md)",
                self.funders[0].address()
            );
        }
        Ok(())
    }

    /// Deploys `code` from funder 0; returns the contract address.
    pub(crate) async fn deploy(&self, what: &str, code: Vec<u8>) -> eyre::Result<Address> {
        let funder = &self.funders[0];
        let nonce = self.nonce(funder.address()).await?;
        let gas = self.estimate(funder.address(), None, &code).await? * 5 / 4;
        let tx = self.sign(funder, nonce, TxKind::Create, U256::ZERO, code.into(), gas)?;
        self.setup(what, vec![tx]).await?;
        Ok(funder.address().create(nonce))
    }

    /// Calls `to` from funder 0 once per item of `inputs` (setup calls such as addGateway).
    pub(crate) async fn admin_calls(
        &self,
        what: &str,
        to: Address,
        inputs: Vec<Vec<u8>>,
    ) -> eyre::Result<()> {
        let funder = &self.funders[0];
        let mut nonce = self.nonce(funder.address()).await?;
        let Some(first) = inputs.first() else { return Ok(()) };
        let gas = self.estimate(funder.address(), Some(to), first).await? * 3 / 2;
        let mut txs = Vec::new();
        for input in inputs {
            txs.push(self.sign(funder, nonce, TxKind::Call(to), U256::ZERO, input.into(), gas)?);
            nonce += 1;
        }
        self.setup(what, txs).await
    }

    /// eth_estimateGas of a call (or a creation when `to` is None).
    pub(crate) async fn estimate(
        &self,
        from: Address,
        to: Option<Address>,
        input: &[u8],
    ) -> eyre::Result<u64> {
        let mut call = json!({"from": from, "data": format!("0x{}", hex::encode(input))});
        if let Some(to) = to {
            call["to"] = json!(to);
        }
        Ok(self.nodes[0].quantity("eth_estimateGas", json!([call])).await? as u64)
    }
}

/// `n` load accounts, derived from `seed` (the same seed gives the same accounts).
pub(crate) fn load_accounts(seed: &str, n: usize) -> Vec<PrivateKeySigner> {
    (0..n as u64 * 2)
        .filter_map(|i| {
            let secret =
                keccak256([b"fogchain-bench/".as_slice(), seed.as_bytes(), &i.to_be_bytes()].concat());
            PrivateKeySigner::from_bytes(&secret).ok()
        })
        .take(n)
        .collect()
}

/// What the follower saw: for each tracked transaction, when its block appeared.
#[derive(Default)]
pub(crate) struct Tracker {
    /// Submitted and not yet seen in a block: hash -> when it was sent.
    pending: HashMap<B256, Instant>,
    /// (seen at, latency) of every included tracked transaction.
    pub(crate) included: Vec<(Instant, Duration)>,
    /// Hashes seen in blocks and their block numbers (for the receipt check).
    pub(crate) hashes: Vec<(B256, u64)>,
    /// Transactions the endpoint refused, with the first few reasons.
    pub(crate) rejected: usize,
    pub(crate) reasons: Vec<String>,
}

impl Tracker {
    /// Records that `hashes` are being sent now.
    pub(crate) fn sent(&mut self, hashes: &[B256], at: Instant) {
        for h in hashes {
            self.pending.insert(*h, at);
        }
    }

    /// Records a refusal.
    pub(crate) fn refused(&mut self, hash: &B256, reason: String) {
        if self.pending.remove(hash).is_some() {
            self.rejected += 1;
            if self.reasons.len() < 5 {
                self.reasons.push(reason);
            }
        }
    }

    /// Transactions sent and neither included nor refused.
    pub(crate) fn outstanding(&self) -> usize {
        self.pending.len()
    }
}

/// Follows the chain at `rpc` from block `from` + 1, timing tracked transactions' inclusion,
/// until `done` says stop. Polls `eth_blockNumber` at most 1 ms apart (the timing's resolution),
/// and never more often than the endpoint's own round trip.
pub(crate) async fn follow_blocks(
    rpc: Rpc,
    from: u64,
    tracker: Arc<Mutex<Tracker>>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> eyre::Result<()> {
    let mut next = from + 1;
    let mut idle = 0u32;
    // A saturated node may answer slowly or drop a request: retry for up to a minute.
    let mut failing_since: Option<Instant> = None;
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let step = Instant::now();
        let result = follow_step(&rpc, &mut next, &tracker).await;
        // Never more than half of a single-threaded endpoint's time (Hardhat, Ganache): rest at
        // least as long as the last round trip took.
        let rest = step.elapsed();
        match result {
            Ok(true) => {
                idle = 0;
                failing_since = None;
                tokio::time::sleep(rest).await;
            }
            Ok(false) => {
                failing_since = None;
                idle = (idle + 1).min(4);
                tokio::time::sleep(Duration::from_micros(250 * u64::from(idle)).max(rest)).await;
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(60) {
                    return Err(e.wrap_err("following blocks failed for 60 s"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

/// Reads the blocks after `next - 1` (up to 20); false when there is none yet.
async fn follow_step(rpc: &Rpc, next: &mut u64, tracker: &Mutex<Tracker>) -> eyre::Result<bool> {
    let head = rpc.quantity("eth_blockNumber", json!([])).await? as u64;
    if head < *next {
        return Ok(false);
    }
    // at most 20 blocks per batch: 20 full blocks of hashes stay far below the 10 MB answer limit
    let last = head.min(*next + 19);
    let calls: Vec<(&str, Value)> =
        (*next..=last).map(|b| ("eth_getBlockByNumber", json!([format!("0x{b:x}"), false]))).collect();
    let blocks = rpc.batch(&calls).await?;
    let seen = Instant::now();
    let blocks = blocks
        .into_iter()
        .map(|b| b.map_err(|e| eyre!("eth_getBlockByNumber: {e}")))
        .collect::<eyre::Result<Vec<Value>>>()?;
    let mut t = tracker.lock();
    for block in blocks {
        let number = quantity(&block["number"]).unwrap_or(0) as u64;
        for h in block["transactions"].as_array().into_iter().flatten() {
            let Some(hash) = h.as_str().and_then(|s| s.parse::<B256>().ok()) else { continue };
            if let Some(sent) = t.pending.remove(&hash) {
                t.included.push((seen, seen.saturating_duration_since(sent)));
                t.hashes.push((hash, number));
            }
        }
    }
    *next = last + 1;
    Ok(true)
}

/// Counts the receipts of `hashes` (with their block numbers) at `rpc` with status 1 and with
/// status 0; a missing receipt is an error (the block follower saw the transaction in a block).
/// Uses `eth_getBlockReceipts` (one call per block), or `eth_getTransactionReceipt` per
/// transaction where the endpoint lacks it.
pub(crate) async fn check_receipts(rpc: &Rpc, hashes: &[(B256, u64)]) -> eyre::Result<(usize, usize)> {
    let mut blocks: std::collections::BTreeMap<u64, std::collections::HashSet<B256>> = Default::default();
    for (h, n) in hashes {
        blocks.entry(*n).or_default().insert(*h);
    }
    let numbers: Vec<u64> = blocks.keys().copied().collect();
    let (mut ok, mut failed, mut found) = (0, 0, 0);
    let mut per_block = true;
    for chunk in numbers.chunks(20) {
        let calls: Vec<(&str, Value)> =
            chunk.iter().map(|n| ("eth_getBlockReceipts", json!([format!("0x{n:x}")]))).collect();
        let answers = rpc.batch(&calls).await?;
        if answers.iter().any(|a| a.is_err()) {
            per_block = false;
            break;
        }
        for (n, answer) in chunk.iter().zip(answers) {
            let wanted = &blocks[n];
            for r in answer.ok().as_ref().and_then(Value::as_array).into_iter().flatten() {
                let Some(h) = r["transactionHash"].as_str().and_then(|s| s.parse::<B256>().ok()) else {
                    continue;
                };
                if wanted.contains(&h) {
                    found += 1;
                    match quantity(&r["status"]) {
                        Some(1) => ok += 1,
                        _ => failed += 1,
                    }
                }
            }
        }
    }
    if per_block {
        if found != hashes.len() {
            bail!(
                "{} of {} receipts missing, although their blocks were seen",
                hashes.len() - found,
                hashes.len()
            );
        }
        return Ok((ok, failed));
    }
    let (mut ok, mut failed) = (0, 0);
    for chunk in hashes.chunks(1000) {
        let calls: Vec<(&str, Value)> =
            chunk.iter().map(|(h, _)| ("eth_getTransactionReceipt", json!([h]))).collect();
        for ((h, _), answer) in chunk.iter().zip(rpc.batch(&calls).await?) {
            let r = answer.map_err(|e| eyre!("receipt of {h}: {e}"))?;
            match quantity(&r["status"]) {
                Some(1) => ok += 1,
                Some(_) => failed += 1,
                None => bail!("no receipt for {h}, although its block was seen"),
            }
        }
    }
    Ok((ok, failed))
}
