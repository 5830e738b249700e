//! Step 4: receipts, fetched at each `newHeads` of any node (or polled while none is
//! subscribed); a transaction without one is re-sent; the receipt's events become the
//! decision published to the actuator and the `recorded` ack.

use super::{submitter::Refusal, Bridge};
use crate::{
    journal::{Body, Message, Record},
    upstream::UpstreamError,
};
use alloy_primitives::{Address, Bytes, LogData, B256};
use alloy_sol_types::SolEvent;
use fogchain_client::jsonrpc::{quantity, quantity_u64};
use fogchain_contracts::{risk, DangerIndex};
use serde_json::{json, Value};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

impl Bridge {
    /// Looks for the receipts of sent transactions: at once at a node that announced a new
    /// head (so a receipt is seen as soon as its block is applied there), and every
    /// `receipt-poll-ms` at any node while no newHeads subscription is live (every second
    /// otherwise, for resends).
    pub(super) async fn watcher(self: Arc<Self>) {
        let period = Duration::from_millis(self.cfg.receipt_poll_ms.max(10));
        let Some(mut heads) = self.heads_rx.lock().take() else { return };
        loop {
            let live = self.heads_live.load(std::sync::atomic::Ordering::Relaxed) > 0;
            let wait = if live { Duration::from_secs(1) } else { period };
            let mut nodes: Vec<Option<usize>> = tokio::select! {
                node = heads.recv() => vec![node],
                _ = tokio::time::sleep(wait) => vec![None],
            };
            while let Ok(node) = heads.try_recv() {
                if !nodes.contains(&Some(node)) {
                    nodes.push(Some(node));
                }
            }
            for node in nodes {
                if let Err(e) = self.poll_receipts(node).await {
                    tracing::debug!(error = %e, "polling receipts");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Follows node `node`'s `newHeads` over WebSocket, reconnecting every second when it fails.
    pub(super) async fn follow_heads(self: Arc<Self>, node: usize, url: String) {
        use jsonrpsee::core::client::SubscriptionClientT;
        loop {
            match jsonrpsee::ws_client::WsClientBuilder::default().build(&url).await {
                Ok(client) => {
                    let sub = client
                        .subscribe::<Value, _>(
                            "eth_subscribe",
                            jsonrpsee::rpc_params!["newHeads"],
                            "eth_unsubscribe",
                        )
                        .await;
                    match sub {
                        Ok(mut sub) => {
                            self.heads_live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::debug!(%url, "following newHeads");
                            while let Some(Ok(head)) = sub.next().await {
                                if let Some(fee) = head.get("baseFeePerGas").and_then(quantity) {
                                    *self.head_base_fee.lock() = Some((fee, Instant::now()));
                                }
                                if let Some(limit) = head.get("gasLimit").and_then(quantity_u64) {
                                    self.head_gas_limit.store(limit, std::sync::atomic::Ordering::Relaxed);
                                }
                                if self.heads_tx.send(node).is_err() {
                                    break;
                                }
                            }
                            self.heads_live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => tracing::debug!(%url, error = %e, "eth_subscribe newHeads"),
                    }
                }
                Err(e) => tracing::debug!(%url, error = %e, "newHeads WebSocket"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    pub(super) async fn poll_receipts(&self, node: Option<usize>) -> Result<(), UpstreamError> {
        let inflight: Vec<(B256, u64, Bytes, Instant)> = {
            let j = self.journal.lock();
            let mut v: Vec<_> =
                j.inflight.iter().map(|(h, f)| (*h, f.nonce, f.raw.clone(), f.sent_at)).collect();
            v.sort_by_key(|x| x.1);
            v
        };
        for chunk in inflight.chunks(200) {
            let calls: Vec<(&str, Value)> =
                chunk.iter().map(|(h, ..)| ("eth_getTransactionReceipt", json!([h]))).collect();
            let answers = self.chain.upstream.batch_at(node, &calls).await?;
            for ((hash, nonce, raw, sent_at), answer) in chunk.iter().zip(answers) {
                match answer {
                    Ok(receipt) if !receipt.is_null() => self.finish(*hash, &receipt).await,
                    Ok(_) if sent_at.elapsed() > Duration::from_secs(3) => {
                        self.resend(*hash, *nonce, raw).await?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    pub(super) async fn resend(&self, hash: B256, nonce: u64, raw: &Bytes) -> Result<(), UpstreamError> {
        if let Some(f) = self.journal.lock().inflight.get_mut(&hash) {
            f.sent_at = Instant::now();
        }
        let Some(refusal) = self.send_raw(raw).await? else { return Ok(()) };
        match Refusal::of(&refusal) {
            Refusal::Known => Ok(()),
            Refusal::NonceTaken => {
                // Its nonce is taken: by this transaction (it has a receipt) or by another one.
                // Both answers come from one node, in one batch, nonce first: a block applied
                // between the two reads can only add the receipt, never hide it, so "no receipt
                // and the nonce passed" proves the transaction cannot be mined.
                let (mined, receipt) = self.nonce_and_receipt(hash).await?;
                if !receipt.is_null() {
                    self.finish(hash, &receipt).await;
                } else if mined > nonce {
                    tracing::warn!(%hash, nonce, "nonce taken by another transaction; its messages are resubmitted");
                    let _ = self.journal.lock().append(vec![Record::Abandoned { tx: hash }]);
                    *self.next_nonce.lock().await = None;
                    self.wake.notify_one();
                }
                Ok(())
            }
            Refusal::Transient | Refusal::Permanent => {
                // A transaction once journaled is re-sent until it is mined or its nonce is
                // taken; a node refusing it now may take it later (pool room, price floor).
                metrics::counter!("fogchain_proxy_send_retries_total", "reason" => "resend").increment(1);
                tracing::warn!(%hash, message = %refusal.message, "resend refused; retrying");
                Ok(())
            }
        }
    }

    /// The gateway account's mined nonce and `hash`'s receipt (JSON `null` when none), read
    /// from one node in one JSON-RPC batch, nonce first.
    async fn nonce_and_receipt(&self, hash: B256) -> Result<(u64, Value), UpstreamError> {
        let calls = [
            ("eth_getTransactionCount", json!([self.chain.address(), "latest"])),
            ("eth_getTransactionReceipt", json!([hash])),
        ];
        let mut answers = self.chain.upstream.batch(&calls).await?.into_iter();
        let (Some(nonce), Some(receipt)) = (answers.next(), answers.next()) else {
            return Err(UpstreamError::BadAnswer("a batch of 2 answered with fewer".into()));
        };
        let mined = quantity_u64(&nonce?)
            .ok_or_else(|| UpstreamError::BadAnswer("eth_getTransactionCount".into()))?;
        Ok((mined, receipt?))
    }

    /// Handles a receipt: acks, decisions, then the `done` record.
    pub(super) async fn finish(&self, hash: B256, receipt: &Value) {
        let ok = receipt.get("status").and_then(quantity_u64) == Some(1);
        let block = receipt.get("blockNumber").and_then(quantity_u64).unwrap_or(0);
        let messages: Vec<Message> = {
            let j = self.journal.lock();
            let Some(f) = j.inflight.get(&hash) else { return };
            f.ids.iter().filter_map(|id| j.messages.get(id).cloned()).collect()
        };
        let logs = receipt_logs(receipt);
        for m in &messages {
            let mut ack = json!({"seq": m.seq, "txHash": hash, "blockNumber": block});
            if !ok {
                ack["status"] = json!("failed");
                ack["reason"] = json!("transaction reverted");
                self.ack(&m.device, ack).await;
                continue;
            }
            ack["status"] = json!("recorded");
            metrics::histogram!("fogchain_proxy_record_seconds", "kind" => m.body.kind())
                .record(m.accepted.elapsed().as_secs_f64());
            if let Body::Action { contract, publish_topic, .. } = &m.body {
                let event = logs
                    .iter()
                    .filter(|l| l.0 == *contract)
                    .find_map(|l| DangerIndex::DangerIndexUpdated::decode_log_data(&l.1).ok());
                if let Some(e) = event {
                    let di: u64 = e.diX100.try_into().unwrap_or(u64::MAX);
                    let decision = json!({
                        "diX100": di,
                        "risk": risk::name(e.risk),
                        "txHash": hash,
                        "blockNumber": block,
                        "device": m.device,
                    });
                    self.publish(publish_topic.clone(), &decision).await;
                    metrics::histogram!("fogchain_proxy_decision_seconds")
                        .record(m.accepted.elapsed().as_secs_f64());
                    ack["diX100"] = json!(di);
                    ack["risk"] = json!(risk::name(e.risk));
                }
            }
            self.ack(&m.device, ack).await;
        }
        if let Err(e) = self.journal.lock().append(vec![Record::Done { tx: hash, block, ok }]) {
            tracing::error!(error = %e, "journal write failed");
        }
    }
}

/// The logs of a JSON receipt, as (address, topics + data).
fn receipt_logs(receipt: &Value) -> Vec<(Address, LogData)> {
    let Some(logs) = receipt.get("logs").and_then(Value::as_array) else { return Vec::new() };
    logs.iter()
        .filter_map(|l| {
            let address: Address = l.get("address")?.as_str()?.parse().ok()?;
            let topics: Vec<B256> =
                l.get("topics")?.as_array()?.iter().filter_map(|t| t.as_str()?.parse().ok()).collect();
            let data = hex::decode(l.get("data")?.as_str()?.trim_start_matches("0x")).ok()?;
            Some((address, LogData::new_unchecked(topics, data.into())))
        })
        .collect()
}
