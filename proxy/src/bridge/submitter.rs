//! Step 3: accepted messages become transactions of the gateway account: registry messages
//! batched into `recordBatch`, signed readings as `recordSigned`, actions as
//! `DangerIndex.submit`; nonces and fees are the submitter's.

use super::{device_key, Bridge};
use crate::{
    chain::Fees,
    journal::{Body, Message, Record},
    upstream::UpstreamError,
};
use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;
use fogchain_client::{codes, Refusal as NodeRefusal, RpcError};
use fogchain_contracts::{DangerIndex, SensorRegistry};
use serde_json::json;
use std::{sync::Arc, time::Duration};

impl Bridge {
    /// Submits pending messages when woken. Nagle-style: a message that finds no transaction
    /// of the bridge in flight goes at once; while one is in flight, messages linger up to
    /// `batch-interval-ms` to share the next transaction.
    pub(super) async fn batcher(self: Arc<Self>) {
        let linger = Duration::from_millis(self.cfg.batch_interval_ms);
        loop {
            tokio::select! {
                _ = self.wake.notified() => {
                    let busy = !self.journal.lock().inflight.is_empty();
                    if busy {
                        tokio::time::sleep(linger).await;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if let Err(e) = self.submit_pending().await {
                tracing::warn!(error = %e, "submitting to the chain; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Groups of pending messages, one per transaction.
    pub(super) fn pending_groups(&self) -> Vec<Vec<Message>> {
        let journal = self.journal.lock();
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut groups = Vec::new();
        for id in &journal.pending {
            let Some(m) = journal.messages.get(id) else { continue };
            match &m.body {
                Body::Registry { signature: None, topic, payload } => {
                    let bytes = abi_bytes(topic.len()) + abi_bytes(payload.len()) + 3 * 32;
                    if !batch.is_empty() && batch_bytes + bytes > MAX_BATCH_BYTES {
                        groups.push(std::mem::take(&mut batch));
                        batch_bytes = 0;
                    }
                    batch.push(m.clone());
                    batch_bytes += bytes;
                    if batch.len() == self.cfg.batch_max {
                        groups.push(std::mem::take(&mut batch));
                        batch_bytes = 0;
                    }
                }
                _ => groups.push(vec![m.clone()]),
            }
        }
        if !batch.is_empty() {
            groups.push(batch);
        }
        groups
    }

    pub(super) async fn submit_pending(&self) -> Result<(), UpstreamError> {
        // Front to back: nonces follow arrival order (a device's signed readings must reach the
        // chain in seq order).
        let mut work: std::collections::VecDeque<Vec<Message>> = self.pending_groups().into();
        tracing::debug!(groups = ?work.iter().map(|g| g.iter().map(|m| m.id).collect::<Vec<_>>()).collect::<Vec<_>>(), "batching");
        if work.is_empty() {
            return Ok(());
        }
        // Fees from the newest head's base fee while the subscriptions are live (a head at most
        // 10 s old), else asked of a node.
        let recent = *self.head_base_fee.lock();
        let fees = match recent.filter(|(_, at)| at.elapsed() < Duration::from_secs(10)) {
            Some((base_fee, _)) => self.chain.fees_over(base_fee).await?,
            None => self.chain.fees().await?,
        };
        while let Some(group) = work.pop_front() {
            let (to, input) = self.encode(&group);
            let estimate = self.chain.estimate(to, &input).await;
            let too_big = match &estimate {
                Ok(gas) => *gas > self.batch_gas_cap(),
                Err(UpstreamError::Rpc(e)) => would_revert(e),
                Err(_) => false,
            };
            if too_big && group.len() > 1 {
                // Halves: a batch over the gas cap (half a block) becomes two that fit, and a
                // message that reverts is isolated in log2(n) steps.
                tracing::debug!(
                    size = group.len(),
                    "a batch is over the gas cap or would revert; splitting it in two"
                );
                let mut first = group;
                let second = first.split_off(first.len() / 2);
                work.push_front(second);
                work.push_front(first);
                continue;
            }
            let gas = match estimate {
                Ok(gas) => gas,
                Err(UpstreamError::Rpc(e)) if would_revert(&e) => {
                    self.fail(&group, format!("the chain refused it: {}", e.message)).await;
                    continue;
                }
                // anything else (node busy, internal error): the messages stay pending
                Err(e) => return Err(e),
            };
            self.send_new(group, to, input, gas, fees).await?;
        }
        Ok(())
    }

    /// Most gas one batch may take: half the newest head's gas limit (30M assumed until a head
    /// is seen), so a batch always fits in a block with room for other transactions.
    fn batch_gas_cap(&self) -> u64 {
        match self.head_gas_limit.load(std::sync::atomic::Ordering::Relaxed) {
            0 => DEFAULT_BLOCK_GAS_LIMIT / 2,
            limit => limit / 2,
        }
    }

    pub(super) fn encode(&self, group: &[Message]) -> (Address, Bytes) {
        let registry = self.cfg.sensor_registry;
        match &group[0].body {
            Body::Action { contract, p, h, cs, .. } => {
                let call = DangerIndex::submitCall {
                    region: device_key(&group[0].device),
                    p: U256::from(*p),
                    h: h.map(U256::from),
                    cs: U256::from(*cs),
                };
                (*contract, call.abi_encode().into())
            }
            Body::Registry { topic, payload, signature: Some(sig) } => {
                let call = SensorRegistry::recordSignedCall {
                    deviceId: device_key(&group[0].device),
                    seq: group[0].seq,
                    topic: topic.clone(),
                    payload: payload.clone(),
                    signature: sig.clone(),
                };
                (registry, call.abi_encode().into())
            }
            Body::Registry { .. } => {
                let mut ids = Vec::new();
                let mut topics = Vec::new();
                let mut payloads = Vec::new();
                for m in group {
                    if let Body::Registry { topic, payload, .. } = &m.body {
                        ids.push(device_key(&m.device));
                        topics.push(topic.clone());
                        payloads.push(payload.clone());
                    }
                }
                let call = SensorRegistry::recordBatchCall { deviceIds: ids, topics, payloads };
                (registry, call.abi_encode().into())
            }
        }
    }

    pub(super) async fn take_nonce(&self) -> Result<u64, UpstreamError> {
        let mut next = self.next_nonce.lock().await;
        let nonce = match *next {
            Some(n) => n,
            None => {
                let chain = self.chain.pending_nonce().await?;
                let journal = self.journal.lock().max_inflight_nonce().map(|n| n + 1).unwrap_or(0);
                chain.max(journal)
            }
        };
        *next = Some(nonce + 1);
        Ok(nonce)
    }

    pub(super) async fn send_new(
        &self,
        group: Vec<Message>,
        to: Address,
        input: Bytes,
        gas: u64,
        fees: Fees,
    ) -> Result<(), UpstreamError> {
        let nonce = self.take_nonce().await?;
        let (tx, raw) = match self.chain.sign(nonce, to, input, gas, fees) {
            Ok(t) => t,
            Err(e) => {
                self.fail(&group, format!("signing failed: {e}")).await;
                return Ok(());
            }
        };
        let ids: Vec<u64> = group.iter().map(|m| m.id).collect();
        tracing::debug!(?ids, nonce, %tx, "sending");
        let journaled = self.journal.lock().append(vec![Record::Sent { tx, nonce, raw: raw.clone(), ids }]);
        if let Err(e) = journaled {
            tracing::error!(error = %e, "journal write failed; not sending");
            *self.next_nonce.lock().await = None;
            return Ok(());
        }
        let Some(refusal) = self.send_raw(&raw).await? else { return Ok(()) };
        match Refusal::of(&refusal) {
            Refusal::Known => Ok(()),
            Refusal::Transient => {
                // journaled and in flight: the watcher re-sends it (same bytes) every 3 s
                tracing::warn!(%tx, nonce, reason = %refusal.message, "transaction refused for now; retrying");
                metrics::counter!("fogchain_proxy_send_retries_total", "reason" => "transient").increment(1);
                Ok(())
            }
            Refusal::NonceTaken => {
                // someone else used the account: the watcher abandons it if its nonce is taken
                *self.next_nonce.lock().await = None;
                Ok(())
            }
            Refusal::Permanent
                if group.len() > 1
                    && NodeRefusal::of_data(refusal.data.as_ref())
                        == Some(NodeRefusal::ExceedsBlockGasLimit) =>
            {
                // the batch, not its messages: they are batched again, under a lower cap
                tracing::warn!(
                    gas,
                    size = group.len(),
                    "batch over the block gas limit; re-batching smaller"
                );
                self.head_gas_limit.store(gas, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = self.journal.lock().append(vec![Record::Abandoned { tx }]) {
                    tracing::error!(error = %e, "journal write failed");
                }
                self.fill_nonce(nonce, fees).await;
                self.wake.notify_one();
                Ok(())
            }
            Refusal::Permanent => {
                // refused for good: its messages fail, and the nonce is filled so later ones go on
                let message = refusal.message;
                let records = vec![
                    Record::Abandoned { tx },
                    Record::Failed { ids: group.iter().map(|m| m.id).collect(), reason: message.clone() },
                ];
                if let Err(e) = self.journal.lock().append(records) {
                    tracing::error!(error = %e, "journal write failed");
                }
                for m in &group {
                    self.ack(&m.device, json!({"seq": m.seq, "status": "failed", "reason": message})).await;
                }
                self.fill_nonce(nonce, fees).await;
                Ok(())
            }
        }
    }

    /// Sends a signed transaction to every ready node: `None` when one took it, else the
    /// node's JSON-RPC refusal (see [`Refusal::of`]); `Err` when no node answered.
    pub(super) async fn send_raw(&self, raw: &Bytes) -> Result<Option<RpcError>, UpstreamError> {
        match self.chain.upstream.call_all("eth_sendRawTransaction", json!([raw])).await {
            Ok(_) => Ok(None),
            Err(UpstreamError::Rpc(e)) => Ok(Some(e)),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn fill_nonce(&self, nonce: u64, fees: Fees) {
        let Ok((tx, raw)) = self.chain.sign_filler(nonce, fees) else { return };
        let journaled =
            self.journal.lock().append(vec![Record::Sent { tx, nonce, raw: raw.clone(), ids: vec![] }]);
        if journaled.is_ok() {
            let refused = match self.send_raw(&raw).await {
                Ok(None) => return,
                Ok(Some(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(nonce, error = %refused, "nonce filler refused");
            *self.next_nonce.lock().await = None;
        }
    }

    pub(super) async fn fail(&self, group: &[Message], reason: String) {
        let ids = group.iter().map(|m| m.id).collect();
        if let Err(e) = self.journal.lock().append(vec![Record::Failed { ids, reason: reason.clone() }]) {
            tracing::error!(error = %e, "journal write failed");
        }
        for m in group {
            self.ack(&m.device, json!({"seq": m.seq, "status": "failed", "reason": reason})).await;
        }
    }
}

/// Block gas limit assumed until a head is seen (Fogchain's and geth's default, 30M).
const DEFAULT_BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// Largest ABI-encoded size of the readings in one `recordBatch`, bytes: the transaction stays
/// below the pools' 128 KiB limit (geth's `txMaxSize`, Fogchain's `oversized data`), whatever
/// `batch-max` is.
const MAX_BATCH_BYTES: usize = 96 * 1024;

/// Bytes of a `bytes` / `string` value in an ABI dynamic array: length word and padded data.
fn abi_bytes(len: usize) -> usize {
    32 + len.div_ceil(32) * 32
}

/// Whether an `eth_estimateGas` error says the call itself fails (a revert, code 3, or out of
/// gas at the cap: refusal `gas-exceeds-allowance`), so that sending it would be wasted.
fn would_revert(e: &RpcError) -> bool {
    e.code == codes::EXECUTION_REVERTED
        || NodeRefusal::of_data(e.data.as_ref()) == Some(NodeRefusal::GasExceedsAllowance)
}

/// What a node's refusal of `eth_sendRawTransaction` means for the bridge, from its code and
/// the refusal kind in its data (`fogchain_client::codes`), never from its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `already-known`: the transaction is pooled there; the send worked.
    Known,
    /// `nonce-too-low`: the account's nonce passed this one (mined, or taken by another
    /// transaction); the receipt decides.
    NonceTaken,
    /// Refused for now, not for what the transaction is: a transient refusal kind (pool full,
    /// underpriced, replacement underpriced, account limit, insufficient funds: the gateway
    /// account needs topping up), a node's limit (-32005, EIP-1474) or its internal error
    /// (-32603). The transaction stays in flight and is re-sent; its messages never fail for this.
    Transient,
    /// Refused for what it is (not permitted, invalid), or for a reason the node does not
    /// name: its messages fail with the node's message.
    Permanent,
}

impl Refusal {
    pub(super) fn of(e: &RpcError) -> Self {
        match (e.code, NodeRefusal::of_data(e.data.as_ref())) {
            (codes::LIMIT_EXCEEDED | codes::INTERNAL_ERROR, _) => Self::Transient,
            (_, Some(NodeRefusal::AlreadyKnown)) => Self::Known,
            (_, Some(NodeRefusal::NonceTooLow)) => Self::NonceTaken,
            (_, Some(kind)) if kind.is_transient() => Self::Transient,
            _ => Self::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: i64, kind: Option<NodeRefusal>) -> Refusal {
        Refusal::of(&RpcError { code, message: "any wording".into(), data: kind.map(NodeRefusal::data) })
    }

    #[test]
    fn pool_pressure_is_transient_and_invalid_transactions_are_not() {
        use NodeRefusal::*;
        let server = codes::SERVER_ERROR;
        assert_eq!(refusal(server, Some(AlreadyKnown)), Refusal::Known);
        assert_eq!(refusal(server, Some(NonceTooLow)), Refusal::NonceTaken);
        for transient in [PoolFull, Underpriced, ReplacementUnderpriced, AccountLimit, InsufficientFunds] {
            assert_eq!(refusal(server, Some(transient)), Refusal::Transient, "{transient:?}");
        }
        assert_eq!(refusal(codes::LIMIT_EXCEEDED, None), Refusal::Transient);
        assert_eq!(refusal(codes::INTERNAL_ERROR, None), Refusal::Transient);
        assert_eq!(refusal(server, Some(NotPermitted)), Refusal::Permanent);
        assert_eq!(refusal(server, Some(Invalid)), Refusal::Permanent);
        // The wording alone decides nothing.
        let worded =
            RpcError { code: server, message: "nonce too low: next nonce 5, tx nonce 3".into(), data: None };
        assert_eq!(Refusal::of(&worded), Refusal::Permanent);
    }

    #[test]
    fn an_estimate_fails_by_code_3_or_the_gas_refusal() {
        let error = |code, data| RpcError { code, message: String::new(), data };
        assert!(would_revert(&error(codes::EXECUTION_REVERTED, None)));
        assert!(would_revert(&error(codes::SERVER_ERROR, Some(NodeRefusal::GasExceedsAllowance.data()))));
        assert!(!would_revert(&error(codes::SERVER_ERROR, None)));
        assert!(!would_revert(&error(codes::LIMIT_EXCEEDED, None)));
    }
}
