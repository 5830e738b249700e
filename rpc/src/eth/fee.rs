//! Fee suggestions and history (EIP-1559 base fee, tips).

use super::{not_found, resolve, EthRpc};
use crate::{RpcError, RpcResult};
use alloy_consensus::{Header, Transaction as _};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, U256, U64};
use alloy_rpc_types_eth::FeeHistory;
use fogchain_storage::{ChainReader, KvRead};

impl EthRpc {
    /// `[rpc] suggested-tip`, never below the pool's price limit; on a zero-base-fee network
    /// just the price limit (0 by default).
    pub(crate) fn suggested_tip(&self) -> u128 {
        let min = self.inner.pool.min_tip();
        if self.inner.chain.fogchain.zero_base_fee {
            min
        } else {
            self.inner.config.suggested_tip.max(min)
        }
    }

    pub(crate) fn gas_price(&self) -> RpcResult<U256> {
        let (_, head) = self.inner.storage.head()?;
        let base = fogchain_evm::next_base_fee(&self.inner.chain, &head).unwrap_or_default();
        Ok(U256::from(base as u128 + self.suggested_tip()))
    }

    pub(crate) fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        Ok(U256::from(self.suggested_tip()))
    }

    pub(crate) fn fee_history(
        &self,
        block_count: U64,
        newest_block: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let snapshot = self.inner.storage.snapshot();
        let (_, newest) = resolve(&snapshot, BlockId::Number(newest_block))?;
        let limits = &self.inner.config;
        let count = block_count.to::<u64>().min(limits.fee_history_max_blocks).min(newest.number + 1);
        if let Some(p) = &reward_percentiles {
            // geth's `errInvalidPercentile` wording.
            if p.len() > limits.fee_history_max_percentiles {
                return Err(RpcError::Server(format!(
                    "invalid reward percentile: over the query limit {}",
                    limits.fee_history_max_percentiles
                )));
            }
            if p.iter().any(|x| !(0.0..=100.0).contains(x)) || p.windows(2).any(|w| w[0] > w[1]) {
                return Err(RpcError::InvalidParams("invalid reward percentiles".into()));
            }
        }
        let oldest = newest.number + 1 - count;
        let mut history = FeeHistory { oldest_block: oldest, ..Default::default() };
        let mut rewards = Vec::new();
        for number in oldest..=newest.number {
            let (hash, header) = snapshot.header_by_number(number)?.ok_or_else(not_found)?;
            history.base_fee_per_gas.push(header.base_fee_per_gas.unwrap_or_default() as u128);
            history.gas_used_ratio.push(if header.gas_limit == 0 {
                0.0
            } else {
                header.gas_used as f64 / header.gas_limit as f64
            });
            history.base_fee_per_blob_gas.push(0);
            history.blob_gas_used_ratio.push(0.0);
            if let Some(percentiles) = &reward_percentiles {
                rewards.push(block_rewards(&snapshot, hash, &header, percentiles)?);
            }
        }
        let next = fogchain_evm::next_base_fee(&self.inner.chain, &newest).unwrap_or_default();
        history.base_fee_per_gas.push(next as u128);
        history.base_fee_per_blob_gas.push(0);
        history.reward = reward_percentiles.map(|_| rewards);
        Ok(history)
    }
}

/// Tip percentiles of one block, weighted by gas used (geth's `eth_feeHistory` rewards).
fn block_rewards<R: KvRead + ?Sized>(
    reader: &R,
    hash: B256,
    header: &Header,
    percentiles: &[f64],
) -> RpcResult<Vec<u128>> {
    let body = reader.body(&hash)?.unwrap_or(fogchain_storage::StoredBody::default());
    let receipts = reader.receipts(&hash)?.unwrap_or_default();
    let base_fee = header.base_fee_per_gas.unwrap_or_default();
    let mut tips: Vec<(u128, u64)> = body
        .transactions
        .iter()
        .zip(&receipts)
        .scan(0u64, |previous, (tx, receipt)| {
            let used = receipt.cumulative_gas_used() - *previous;
            *previous = receipt.cumulative_gas_used();
            Some((tx.effective_tip_per_gas(base_fee).unwrap_or_default(), used))
        })
        .collect();
    if tips.is_empty() {
        return Ok(vec![0; percentiles.len()]);
    }
    tips.sort_unstable();
    let mut out = Vec::with_capacity(percentiles.len());
    let mut index = 0;
    let mut cumulative = tips[0].1;
    for p in percentiles {
        let threshold = (header.gas_used as f64 * p / 100.0) as u64;
        while cumulative < threshold && index < tips.len() - 1 {
            index += 1;
            cumulative += tips[index].1;
        }
        out.push(tips[index].0);
    }
    Ok(out)
}
