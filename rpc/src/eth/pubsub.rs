//! Logs, polling filters and WebSocket subscriptions (`newHeads`, `logs`,
//! `newPendingTransactions`).

use super::EthRpc;
use crate::{logs::Installer, ClientIp, RpcError, RpcResult};
use alloy_primitives::U128;
use alloy_rpc_types_eth::{Filter, FilterChanges, Log};
use fogchain_storage::ChainReader;
use jsonrpsee::{
    core::SubscriptionResult,
    server::PendingSubscriptionSink,
    types::{ErrorObjectOwned, Extensions},
    SubscriptionMessage,
};

impl EthRpc {
    pub(crate) async fn spawn_subscription(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult {
        let filter = match (kind.as_str(), params) {
            ("logs", Some(p)) => Some(serde_json::from_value::<Filter>(p).map_err(|e| {
                ErrorObjectOwned::from(RpcError::InvalidParams(format!("invalid logs filter: {e}")))
            })),
            ("logs", None) => Some(Ok(Filter::default())),
            _ => None,
        };
        let filter = filter.map(|f| {
            f.and_then(|f| self.inner.config.logs.check(&f).map(|()| f).map_err(ErrorObjectOwned::from))
        });
        let filter = match filter.transpose() {
            Ok(f) => f,
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        match kind.as_str() {
            "newHeads" | "logs" => {
                let sink = pending.accept().await?;
                let this = self.clone();
                // Shared with each block's scan, not cloned per block.
                let filter = filter.map(std::sync::Arc::new);
                let kind = if filter.is_some() { "logs" } else { "newHeads" };
                let open = fogchain_metrics::Open::new(
                    metrics::gauge!("fogchain_rpc_subscriptions", "kind" => kind),
                );
                tokio::spawn(async move {
                    let _open = open;
                    let mut heads = this.inner.node.heads.clone();
                    let mut next = heads.borrow_and_update().0 + 1;
                    loop {
                        tokio::select! {
                            _ = sink.closed() => return,
                            changed = heads.changed() => if changed.is_err() { return },
                        }
                        let head = heads.borrow_and_update().0;
                        while next <= head {
                            let storage = this.inner.storage.clone();
                            let (number, filter) = (next, filter.clone());
                            // Reads run off the async workers.
                            let items =
                                tokio::task::spawn_blocking(move || -> RpcResult<Vec<serde_json::Value>> {
                                    match filter {
                                        None => Ok(crate::logs::head_notification(&storage, number)?
                                            .into_iter()
                                            .collect()),
                                        Some(f) => crate::logs::block_matching_logs(&storage, &f, number)?
                                            .into_iter()
                                            .map(|l| {
                                                serde_json::to_value(l)
                                                    .map_err(|e| RpcError::Internal(e.to_string()))
                                            })
                                            .collect(),
                                    }
                                })
                                .await;
                            let Ok(Ok(items)) = items else { return };
                            for item in items {
                                let Ok(raw) = serde_json::value::to_raw_value(&item) else { return };
                                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                                    return;
                                }
                            }
                            next += 1;
                        }
                    }
                });
            }
            "newPendingTransactions" => {
                let sink = pending.accept().await?;
                let mut rx = self.inner.pool.subscribe_pending();
                let open = fogchain_metrics::Open::new(
                    metrics::gauge!("fogchain_rpc_subscriptions", "kind" => "newPendingTransactions"),
                );
                tokio::spawn(async move {
                    let _open = open;
                    loop {
                        let hash = tokio::select! {
                            _ = sink.closed() => return,
                            hash = rx.recv() => match hash {
                                Ok(h) => h,
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                                Err(_) => return,
                            },
                        };
                        let Ok(raw) = serde_json::value::to_raw_value(&hash) else { return };
                        if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                            return;
                        }
                    }
                });
            }
            other => {
                pending
                    .reject(ErrorObjectOwned::from(RpcError::InvalidParams(format!(
                        "unsupported subscription type {other:?}; use newHeads, logs or newPendingTransactions"
                    ))))
                    .await;
            }
        }
        Ok(())
    }

    pub(crate) async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        self.inner.config.logs.check(&filter)?;
        self.blocking(move |this| {
            crate::logs::get_logs(&this.inner.storage, &filter, &this.inner.config.logs)
        })
        .await
    }

    /// The caller of a filter method, from the address the listener put in the request.
    fn installer<'a>(&'a self, ext: &Extensions) -> Installer<'a> {
        Installer { owner: ext.get::<ClientIp>().map(|ip| ip.0), limits: &self.inner.config.logs }
    }

    pub(crate) fn new_filter(&self, ext: &Extensions, filter: Filter) -> RpcResult<U128> {
        self.inner.config.logs.check(&filter)?;
        let head = self.inner.storage.head()?.1.number;
        self.inner.filters.new_log_filter(self.installer(ext), filter, head)
    }

    pub(crate) fn new_block_filter(&self, ext: &Extensions) -> RpcResult<U128> {
        let head = self.inner.storage.head()?.1.number;
        self.inner.filters.new_block_filter(self.installer(ext), head)
    }

    pub(crate) fn new_pending_transaction_filter(&self, ext: &Extensions) -> RpcResult<U128> {
        self.inner.filters.new_pending_filter(self.installer(ext), self.inner.pool.subscribe_pending())
    }

    pub(crate) async fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges> {
        self.blocking(move |this| {
            this.inner.filters.changes(&this.inner.storage, id, &this.inner.config.logs)
        })
        .await
    }

    pub(crate) async fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>> {
        self.blocking(move |this| this.inner.filters.logs(&this.inner.storage, id, &this.inner.config.logs))
            .await
    }

    pub(crate) fn uninstall_filter(&self, id: U128) -> RpcResult<bool> {
        Ok(self.inner.filters.uninstall(id))
    }

    pub(crate) async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult {
        self.spawn_subscription(pending, kind, params).await
    }
}
