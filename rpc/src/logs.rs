//! `eth_getLogs`, filters (`eth_newFilter` & co.) and WebSocket subscriptions (`eth_subscribe`).
//!
//! Logs are found through the log index in storage (emitter address -> blocks, topic ->
//! blocks): only the receipts of candidate blocks are read, and each candidate is checked
//! against the header bloom first. A query without address or topics scans its block range,
//! which is capped ([`LogLimits`]).
//!
//! Filters and subscriptions never rely on a lossy channel for blocks: each keeps the next
//! block number it has to deliver and reads blocks from storage up to the head, so every block
//! (and every matching log) is delivered once, in order, however far behind a consumer is.

use crate::{
    convert::{block_logs, rpc_block},
    RpcError, RpcResult,
};
use alloy_consensus::Header;
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{B256, U128};
use alloy_rpc_types_eth::{Filter, FilterBlockOption, FilterChanges, Log};
use fogchain_storage::{ChainReader, Storage, Table};
use parking_lot::Mutex;
use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    time::{Duration, Instant},
};
use tokio::sync::broadcast;

/// Bounds on log queries and installed filters.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Most blocks one `eth_getLogs` may span.
    pub max_block_range: u64,
    /// Most logs one answer may hold.
    pub max_results: usize,
    /// Most addresses in one filter (geth: 1000).
    pub max_addresses: usize,
    /// Most alternatives at one topic position of a filter (geth: 1000).
    pub max_topics: usize,
    /// Most installed filters (`eth_new*Filter`) on the node (10,000).
    pub max_filters: usize,
    /// Most installed filters per client IP address (1,000). HTTP filters outlive the
    /// connection that made them (a client polls from any connection), so the quota follows
    /// the address rather than the connection.
    pub max_filters_per_ip: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_block_range: 100_000,
            max_results: 10_000,
            max_addresses: 1_000,
            max_topics: 1_000,
            max_filters: 10_000,
            max_filters_per_ip: 1_000,
        }
    }
}

impl LogLimits {
    /// Refuses a filter whose criteria are over the limits, in geth's words (`eth_getLogs`,
    /// `eth_newFilter`, `logs` subscriptions).
    pub fn check(&self, filter: &Filter) -> RpcResult<()> {
        if filter.address.len() > self.max_addresses {
            return Err(RpcError::InvalidParams("exceed max addresses".into()));
        }
        if filter.topics.iter().any(|t| t.len() > self.max_topics) {
            return Err(RpcError::InvalidParams("exceed max topics".into()));
        }
        Ok(())
    }
}

fn resolve_tag(tag: Option<BlockNumberOrTag>, head: u64) -> u64 {
    match tag {
        Some(BlockNumberOrTag::Number(n)) => n,
        Some(BlockNumberOrTag::Earliest) => 0,
        _ => head,
    }
}

/// Candidate blocks in `[from, to]` by the index, or `None` when the filter names neither
/// addresses nor topics.
fn candidates(storage: &Storage, filter: &Filter, from: u64, to: u64) -> RpcResult<Option<Vec<u64>>> {
    let limit = (to - from + 1) as usize;
    let mut result: Option<BTreeSet<u64>> = None;
    let mut constrain = |set: BTreeSet<u64>| {
        result = Some(match result.take() {
            None => set,
            Some(r) => r.intersection(&set).copied().collect(),
        });
    };
    if !filter.address.is_empty() {
        let mut set = BTreeSet::new();
        for address in filter.address.iter() {
            set.extend(storage.indexed_blocks(Table::LogAddresses, address.as_slice(), from, to, limit)?);
        }
        constrain(set);
    }
    for position in filter.topics.iter().filter(|t| !t.is_empty()) {
        let mut set = BTreeSet::new();
        for topic in position.iter() {
            set.extend(storage.indexed_blocks(Table::LogTopics, topic.as_slice(), from, to, limit)?);
        }
        constrain(set);
    }
    Ok(result.map(|r| r.into_iter().collect()))
}

fn push_block_logs(
    storage: &Storage,
    filter: &Filter,
    hash: B256,
    header: &Header,
    out: &mut Vec<Log>,
    limits: &LogLimits,
) -> RpcResult<()> {
    if !filter.matches_bloom(header.logs_bloom) {
        return Ok(());
    }
    let body = storage.body(&hash)?.ok_or_else(|| RpcError::Internal(format!("block {hash} has no body")))?;
    let receipts = storage.receipts(&hash)?.unwrap_or_default();
    out.extend(block_logs(hash, header, &body, &receipts, |log| filter.matches(log)));
    if out.len() > limits.max_results {
        return Err(RpcError::Server(format!("query returned more than {} results", limits.max_results)));
    }
    Ok(())
}

/// Logs matching `filter` in the blocks `[from, to]` (already resolved, `to` <= head).
fn logs_in_range(
    storage: &Storage,
    filter: &Filter,
    from: u64,
    to: u64,
    limits: &LogLimits,
) -> RpcResult<Vec<Log>> {
    let mut out = Vec::new();
    if from > to {
        return Ok(out);
    }
    let numbers: Box<dyn Iterator<Item = u64>> = match candidates(storage, filter, from, to)? {
        Some(list) => Box::new(list.into_iter()),
        None => Box::new(from..=to),
    };
    for number in numbers {
        let Some((hash, header)) = storage.header_by_number(number)? else { continue };
        push_block_logs(storage, filter, hash, &header, &mut out, limits)?;
    }
    Ok(out)
}

/// `eth_getLogs`.
pub(crate) fn get_logs(storage: &Storage, filter: &Filter, limits: &LogLimits) -> RpcResult<Vec<Log>> {
    let head = storage.head()?.1.number;
    match &filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let header = storage.header(hash)?.ok_or_else(|| RpcError::Server("unknown block".into()))?;
            let mut out = Vec::new();
            push_block_logs(storage, filter, *hash, &header, &mut out, limits)?;
            Ok(out)
        }
        FilterBlockOption::Range { from_block, to_block } => {
            let from = resolve_tag(*from_block, head);
            let to = resolve_tag(*to_block, head);
            if from > to && to_block.is_some() {
                return Err(RpcError::Server("invalid block range params".into()));
            }
            let to = to.min(head);
            if to >= from && to - from + 1 > limits.max_block_range {
                return Err(RpcError::Server(format!(
                    "block range too large: {} blocks, the limit is {}",
                    to - from + 1,
                    limits.max_block_range
                )));
            }
            logs_in_range(storage, filter, from, to, limits)
        }
    }
}

/// How long an unpolled filter lives (geth: 5 minutes).
pub const FILTER_TIMEOUT: Duration = Duration::from_secs(300);

enum Kind {
    Blocks { next: u64 },
    Logs { filter: Box<Filter>, next: u64 },
    Pending { rx: broadcast::Receiver<B256> },
}

struct Installed {
    kind: Kind,
    polled: Instant,
    /// The address that installed it (`None` when the request carried none).
    owner: Option<IpAddr>,
}

/// Installed filters, polled with `eth_getFilterChanges`.
#[derive(Default)]
pub(crate) struct Filters {
    installed: Mutex<HashMap<U128, Installed>>,
}

fn new_id() -> U128 {
    U128::from(rand::random::<u128>())
}

fn unknown() -> RpcError {
    RpcError::Server("filter not found".into())
}

/// Who installs a filter and the caps it is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Installer<'a> {
    pub(crate) owner: Option<IpAddr>,
    pub(crate) limits: &'a LogLimits,
}

impl Filters {
    fn install(&self, by: Installer<'_>, kind: Kind) -> RpcResult<U128> {
        let mut installed = self.installed.lock();
        installed.retain(|_, f| f.polled.elapsed() < FILTER_TIMEOUT);
        if installed.len() >= by.limits.max_filters {
            return Err(RpcError::LimitExceeded(format!(
                "too many filters (limit {})",
                by.limits.max_filters
            )));
        }
        if let Some(owner) = by.owner {
            let theirs = installed.values().filter(|f| f.owner == Some(owner)).count();
            if theirs >= by.limits.max_filters_per_ip {
                return Err(RpcError::LimitExceeded(format!(
                    "too many filters from this address (limit {})",
                    by.limits.max_filters_per_ip
                )));
            }
        }
        let id = new_id();
        installed.insert(id, Installed { kind, polled: Instant::now(), owner: by.owner });
        Ok(id)
    }

    pub(crate) fn new_block_filter(&self, by: Installer<'_>, head: u64) -> RpcResult<U128> {
        self.install(by, Kind::Blocks { next: head + 1 })
    }

    pub(crate) fn new_log_filter(&self, by: Installer<'_>, filter: Filter, head: u64) -> RpcResult<U128> {
        let next = match filter.block_option {
            FilterBlockOption::Range { from_block: Some(BlockNumberOrTag::Number(n)), .. } => n,
            FilterBlockOption::Range { from_block: Some(BlockNumberOrTag::Earliest), .. } => 0,
            FilterBlockOption::AtBlockHash(_) => {
                return Err(RpcError::InvalidParams("a filter cannot use blockHash; use eth_getLogs".into()))
            }
            _ => head + 1,
        };
        self.install(by, Kind::Logs { filter: Box::new(filter), next })
    }

    pub(crate) fn new_pending_filter(
        &self,
        by: Installer<'_>,
        rx: broadcast::Receiver<B256>,
    ) -> RpcResult<U128> {
        self.install(by, Kind::Pending { rx })
    }

    pub(crate) fn uninstall(&self, id: U128) -> bool {
        self.installed.lock().remove(&id).is_some()
    }

    /// What happened since the last poll.
    pub(crate) fn changes(
        &self,
        storage: &Storage,
        id: U128,
        limits: &LogLimits,
    ) -> RpcResult<FilterChanges> {
        let head = storage.head()?.1.number;
        let mut installed = self.installed.lock();
        let entry = installed.get_mut(&id).ok_or_else(unknown)?;
        entry.polled = Instant::now();
        match &mut entry.kind {
            Kind::Blocks { next } => {
                let mut hashes = Vec::new();
                while *next <= head {
                    if let Some(hash) = storage.block_hash(*next)? {
                        hashes.push(hash);
                    }
                    *next += 1;
                }
                Ok(FilterChanges::Hashes(hashes))
            }
            Kind::Logs { filter, next } => {
                let to = filter
                    .block_option
                    .get_to_block()
                    .map_or(head, |t| resolve_tag(Some(*t), head).min(head));
                let (from, to) = (*next, to.min(next.saturating_add(limits.max_block_range) - 1));
                let filter = filter.clone();
                // The scan reads storage without holding the lock every filter shares.
                drop(installed);
                let logs = logs_in_range(storage, &filter, from, to, limits)?;
                if let Some(Installed { kind: Kind::Logs { next, .. }, .. }) =
                    self.installed.lock().get_mut(&id)
                {
                    *next = (*next).max(to + 1);
                }
                Ok(FilterChanges::Logs(logs))
            }
            Kind::Pending { rx } => {
                let mut hashes = Vec::new();
                loop {
                    match rx.try_recv() {
                        Ok(hash) => hashes.push(hash),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                Ok(FilterChanges::Hashes(hashes))
            }
        }
    }

    /// `eth_getFilterLogs`: every log the filter matches, from its start.
    pub(crate) fn logs(&self, storage: &Storage, id: U128, limits: &LogLimits) -> RpcResult<Vec<Log>> {
        let filter = {
            let mut installed = self.installed.lock();
            let entry = installed.get_mut(&id).ok_or_else(unknown)?;
            entry.polled = Instant::now();
            match &entry.kind {
                Kind::Logs { filter, .. } => filter.clone(),
                _ => return Err(RpcError::Server("filter is not a log filter".into())),
            }
        };
        get_logs(storage, &filter, limits)
    }
}

/// The `newHeads` notification of block `number`: the block object without transactions.
pub(crate) fn head_notification(storage: &Storage, number: u64) -> RpcResult<Option<serde_json::Value>> {
    let Some((hash, header)) = storage.header_by_number(number)? else { return Ok(None) };
    let body = storage.body(&hash)?.unwrap_or(fogchain_storage::StoredBody::default());
    let block = rpc_block(hash, header, body, false);
    serde_json::to_value(&block.header).map(Some).map_err(|e| RpcError::Internal(e.to_string()))
}

/// The logs of block `number` matching `filter`, for a `logs` subscription.
pub(crate) fn block_matching_logs(storage: &Storage, filter: &Filter, number: u64) -> RpcResult<Vec<Log>> {
    let Some((hash, header)) = storage.header_by_number(number)? else { return Ok(vec![]) };
    let mut out = Vec::new();
    let unlimited = LogLimits { max_block_range: u64::MAX, max_results: usize::MAX, ..LogLimits::default() };
    push_block_logs(storage, filter, hash, &header, &mut out, &unlimited)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::LogLimits;
    use alloy_primitives::{Address, B256};
    use alloy_rpc_types_eth::Filter;

    #[test]
    fn filter_criteria_over_the_limits_are_refused_in_geths_words() {
        let limits = LogLimits { max_addresses: 2, max_topics: 3, ..LogLimits::default() };
        let addresses = |n: u8| (0..n).map(Address::repeat_byte).collect::<Vec<_>>();
        let topics = |n: u8| (0..n).map(B256::repeat_byte).collect::<Vec<_>>();
        assert!(limits.check(&Filter::new().address(addresses(2)).event_signature(topics(3))).is_ok());
        let err = limits.check(&Filter::new().address(addresses(3))).unwrap_err();
        assert_eq!(err.to_string(), "exceed max addresses");
        let err = limits.check(&Filter::new().topic2(topics(4))).unwrap_err();
        assert_eq!(err.to_string(), "exceed max topics");
    }
}
