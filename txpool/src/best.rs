//! What the block builder takes from the pool, and which pooled transactions are executable.
//!
//! A sender's transactions are *executable* from its state nonce up while the nonces are
//! contiguous and the balance covers each one's gas × fee cap + value, summed (geth's
//! `legacypool` promotes exactly those to pending; the rest are queued). For a block they must
//! also pay the block's base fee: the first that does not ends its sender's run, because the
//! later nonces cannot go before it. Among the senders' next transactions the builder takes
//! the highest effective tip first (`min(tip, fee cap − base fee)`), the earliest arrival on a
//! tie, as geth's miner does (`transactionsByPriceAndNonce`). So a transaction that cannot
//! execute now never holds up others, and a well-priced one goes first.

use crate::{pool::PooledTx, validate::cost, TxPool};
use alloy_consensus::{transaction::Recovered, Transaction, TxEnvelope};
use alloy_primitives::{Address, U256};
use alloy_trie::TrieAccount;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
};

/// The lowest base fee EIP-1559 reaches by empty blocks: each lowers it by ⌊b/8⌋, which is 0
/// from 7 wei down, wei.
pub const LOWEST_BASE_FEE: u64 = 7;

/// Transactions for the next block and what the builder needs to decide on an empty block.
#[derive(Debug, Default)]
pub struct BestTransactions {
    /// Executable transactions in block order, at most `max` and at most the block gas limit
    /// of summed gas limits.
    pub transactions: Vec<Recovered<TxEnvelope>>,
    /// The highest fee cap (wei) among executable transactions left out only because it is
    /// below the base fee; they fit once the base fee falls.
    pub waiting_for_base_fee: Option<u128>,
}

/// The executable prefix of one sender's pooled transactions (`txs`, by nonce) against its
/// account state; with `base_fee`, it also stops at the first that cannot pay it, and returns
/// that transaction's fee cap.
pub(crate) fn executable<'a>(
    txs: &'a BTreeMap<u64, PooledTx>,
    account: &TrieAccount,
    base_fee: Option<u64>,
) -> (Vec<&'a PooledTx>, Option<u128>) {
    let mut run = Vec::new();
    let mut spent = U256::ZERO;
    for (expected, (nonce, pooled)) in (account.nonce..).zip(txs.range(account.nonce..)) {
        if *nonce != expected {
            break;
        }
        spent = spent.saturating_add(cost(pooled.tx.inner()));
        if spent > account.balance {
            break;
        }
        if let Some(base_fee) = base_fee {
            if pooled.tx.max_fee_per_gas() < u128::from(base_fee) {
                return (run, Some(pooled.tx.max_fee_per_gas()));
            }
        }
        run.push(pooled);
    }
    (run, None)
}

impl TxPool {
    /// Executable transactions for a block with base fee `base_fee` (wei; `None` before
    /// London), ordered by effective tip then arrival, nonce order within a sender; at most
    /// `max` of them and at most `gas_limit` of summed gas limits (a transaction that does not
    /// fit ends its sender's run, others may still fit).
    pub fn best(&self, base_fee: Option<u64>, max: usize, gas_limit: u64) -> BestTransactions {
        let inner = self.inner.lock();
        let mut runs: Vec<Vec<&PooledTx>> = Vec::new();
        let mut waiting_for_base_fee: Option<u128> = None;
        for (sender, txs) in &inner.by_sender {
            let account = self.account(sender);
            let (run, waiting) = executable(txs, &account, base_fee);
            if run.is_empty() {
                waiting_for_base_fee = waiting_for_base_fee.max(waiting);
            } else {
                runs.push(run);
            }
        }
        let tip = |t: &PooledTx| t.tx.effective_tip_per_gas(base_fee.unwrap_or(0)).unwrap_or(0);
        let mut heap: BinaryHeap<(u128, Reverse<u64>, usize, usize)> =
            runs.iter().enumerate().map(|(r, run)| (tip(run[0]), Reverse(run[0].seq), r, 0)).collect();
        let mut out = Vec::new();
        let mut gas = 0u64;
        while let Some((_, _, r, i)) = heap.pop() {
            if out.len() >= max || gas_limit - gas < 21_000 {
                break;
            }
            let tx = runs[r][i];
            if tx.tx.gas_limit() <= gas_limit - gas {
                gas += tx.tx.gas_limit();
                out.push(tx.tx.clone());
                if let Some(next) = runs[r].get(i + 1) {
                    heap.push((tip(next), Reverse(next.seq), r, i + 1));
                }
            }
        }
        BestTransactions { transactions: out, waiting_for_base_fee }
    }

    /// (pending: executable from each sender's state nonce, whatever the base fee; queued:
    /// the rest, behind a nonce gap or beyond the balance).
    pub fn content(&self) -> (Vec<Recovered<TxEnvelope>>, Vec<Recovered<TxEnvelope>>) {
        let inner = self.inner.lock();
        let (mut pending, mut queued) = (Vec::new(), Vec::new());
        for (sender, txs) in &inner.by_sender {
            let account = self.account(sender);
            let (run, _) = executable(txs, &account, None);
            let runs = account.nonce..account.nonce + run.len() as u64;
            for (nonce, pooled) in txs {
                if runs.contains(nonce) { &mut pending } else { &mut queued }.push(pooled.tx.clone());
            }
        }
        (pending, queued)
    }

    /// (pending, queued) counts, as [`Self::content`] splits them, without copying a
    /// transaction. The senders' accounts are read from storage outside the pool's lock (a
    /// metrics scrape or `txpool_status` must not hold up admission).
    pub fn counts(&self) -> (usize, usize) {
        let senders: Vec<Address> = self.inner.lock().by_sender.keys().copied().collect();
        let accounts: HashMap<Address, TrieAccount> =
            senders.into_iter().map(|s| (s, self.account(&s))).collect();
        let inner = self.inner.lock();
        let (mut pending, mut total) = (0, 0);
        for (sender, txs) in &inner.by_sender {
            // A sender that arrived between the two locks: its account is read now.
            let account = accounts.get(sender).cloned().unwrap_or_else(|| self.account(sender));
            pending += executable(txs, &account, None).0.len();
            total += txs.len();
        }
        (pending, total - pending)
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        pool::tests::{fixture_with, key, signed_with, BASE_FEE},
        PoolConfig,
    };
    use alloy_consensus::Transaction;
    use alloy_primitives::{Address, U256};
    use fogchain_evm::{child_header, execute_block, Mode};
    use fogchain_storage::ChainReader;
    use proptest::prelude::*;

    /// One pooled transaction of the random contents: (sender index, nonce, fee cap over or
    /// under the base fee, tip, gas limit).
    fn arbitrary_tx() -> impl Strategy<Value = (usize, u64, u128, u128, u64)> {
        (
            0usize..6,
            0u64..6,
            prop_oneof![Just(1u128), 0u128..2 * u128::from(BASE_FEE), Just(10 * u128::from(BASE_FEE))],
            0u128..1_000,
            prop_oneof![Just(21_000u64), 21_000u64..3_000_000, Just(30_000_000u64)],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// For any pool contents (random senders, nonces, fees, gas limits and balances), a
        /// well-priced transfer from a funded account is in the next block the builder makes.
        #[test]
        fn a_well_priced_transaction_is_in_the_next_block(
            balances in proptest::collection::vec(
                prop_oneof![Just(0u128), 0u128..10u128.pow(15), Just(10u128.pow(21))], 6),
            txs in proptest::collection::vec(arbitrary_tx(), 0..60),
        ) {
            // Key 6 is the honest user: funded, with nothing pooled yet.
            let mut funds: Vec<U256> = balances.into_iter().map(U256::from).collect();
            funds.push(U256::from(10u128.pow(21)));
            let config = PoolConfig { max_transactions: 40, max_per_sender: 8, ..Default::default() };
            let f = fixture_with(config, &funds, false);
            let mut max_tip = 0u128;
            for (sender, nonce, fee_cap, tip, gas) in txs {
                let tx = signed_with(&f.keys[sender], nonce, fee_cap, tip.min(fee_cap), gas);
                if f.pool.add(tx.clone(), 120).is_ok() {
                    max_tip = max_tip.max(tx.priority_fee_or_price());
                }
            }
            let honest = key(6);
            let tip = max_tip + 1;
            let tx = signed_with(&honest, 0, u128::from(BASE_FEE) * 2 + tip, tip, 21_000);
            let hash = f.pool.add(tx, 120).expect("a well-priced transaction is admitted, evicting if full");

            let (head_hash, head) = f.storage.head().unwrap();
            let template = child_header(&f.spec, head_hash, &head, head.timestamp + 1, Address::ZERO);
            let max = f.spec.fogchain.max_block_transactions;
            let best = f.pool.best(template.base_fee_per_gas, max, head.gas_limit);
            let executed = execute_block(&f.spec, &f.storage, &head, template, best.transactions, None, Mode::Build { max_transactions: max }).unwrap();
            prop_assert!(executed.transactions.iter().any(|t| *t.tx_hash() == hash));
            prop_assert!(executed.skipped.is_empty(), "the builder got only executable transactions: {:?}", executed.skipped);
        }
    }
}
