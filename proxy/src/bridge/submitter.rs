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
use fogchain_client::RpcError;
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
        let mut groups = Vec::new();
        for id in &journal.pending {
            let Some(m) = journal.messages.get(id) else { continue };
            match &m.body {
                Body::Registry { signature: None, .. } => {
                    batch.push(m.clone());
                    if batch.len() == self.cfg.batch_max {
                        groups.push(std::mem::take(&mut batch));
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
            let gas = match self.chain.estimate(to, &input).await {
                Ok(gas) => gas,
                Err(UpstreamError::Rpc(RpcError { message, .. })) if group.len() > 1 => {
                    tracing::warn!(%message, "a batch would revert; sending its messages one by one");
                    for m in group.into_iter().rev() {
                        work.push_front(vec![m]);
                    }
                    continue;
                }
                Err(UpstreamError::Rpc(RpcError { message, .. })) => {
                    self.fail(&group, format!("the chain refused it: {message}")).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.send_new(group, to, input, gas, fees).await?;
        }
        Ok(())
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
        match self.chain.upstream.call_all("eth_sendRawTransaction", json!([raw])).await {
            Ok(_) => Ok(()),
            Err(UpstreamError::Rpc(RpcError { message, .. })) if is_benign_send_error(&message) => Ok(()),
            Err(UpstreamError::Rpc(RpcError { message, .. })) if message.contains("nonce too low") => {
                // someone else used the account: the watcher abandons it if its nonce is taken
                *self.next_nonce.lock().await = None;
                Ok(())
            }
            Err(UpstreamError::Rpc(RpcError { message, .. })) => {
                // refused for good: its messages fail, and the nonce is filled so later ones go on
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
            Err(e) => Err(e),
        }
    }

    pub(super) async fn fill_nonce(&self, nonce: u64, fees: Fees) {
        let Ok((tx, raw)) = self.chain.sign_filler(nonce, fees) else { return };
        let journaled =
            self.journal.lock().append(vec![Record::Sent { tx, nonce, raw: raw.clone(), ids: vec![] }]);
        if journaled.is_ok() {
            if let Err(e) = self.chain.upstream.call_all("eth_sendRawTransaction", json!([raw])).await {
                tracing::warn!(nonce, error = %e, "nonce filler refused");
                *self.next_nonce.lock().await = None;
            }
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

/// A node's refusal that means the transaction is already pooled there (geth's wording on
/// the wire: `already known`, `known transaction`): the send succeeded.
pub(super) fn is_benign_send_error(message: &str) -> bool {
    message.contains("already known") || message.contains("known transaction")
}
