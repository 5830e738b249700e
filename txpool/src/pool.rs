//! The pool itself: pending and queued transactions per sender, arrival and price order,
//! replacement, limits and eviction, and what the forwarder takes from it.
//!
//! Which pooled transactions are executable (pending) and which the builder takes is in
//! `best.rs`; the admission checks in `validate.rs`. The sender is recovered once, at
//! admission, and travels with the transaction from then on.
//!
//! When the pool is full a newcomer that pays more (fee cap, then tip) than the cheapest pooled
//! transaction evicts it, with that sender's later nonces (they could not execute behind the
//! gap); otherwise it is refused as underpriced (geth's `legacypool`).

use crate::{
    validate::{check_stateful, check_stateless, recover},
    PoolConfig, PoolError,
};
use alloy_consensus::{transaction::Recovered, Transaction, TxEnvelope};
use alloy_primitives::{Address, B256};
use alloy_trie::TrieAccount;
use fogchain_evm::Permissions;
use fogchain_genesis::ChainSpec;
use fogchain_storage::{ChainReader, Storage};
use parking_lot::{Condvar, Mutex};
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

#[derive(Debug, Clone)]
pub(crate) struct PooledTx {
    pub(crate) tx: Recovered<TxEnvelope>,
    pub(crate) hash: B256,
    /// Arrival sequence number (fairness across senders).
    pub(crate) seq: u64,
}

/// Eviction order: fee cap, then tip, cheapest first; the latest arrival first on a tie.
type PriceKey = (u128, u128, Reverse<u64>);

fn price_key(tx: &Recovered<TxEnvelope>, seq: u64) -> PriceKey {
    (tx.max_fee_per_gas(), tx.priority_fee_or_price(), Reverse(seq))
}

#[derive(Default)]
pub(crate) struct Inner {
    by_hash: HashMap<B256, (Address, u64)>,
    pub(crate) by_sender: HashMap<Address, BTreeMap<u64, PooledTx>>,
    /// Arrival number -> (sender, nonce): what arrived after a point, without a pool scan.
    by_seq: BTreeMap<u64, (Address, u64)>,
    /// Every pooled transaction by [`PriceKey`]: the eviction candidate is the first.
    by_price: BTreeSet<PriceKey>,
    next_seq: u64,
    /// Bumped on every change; the block builder waits for it to move.
    generation: u64,
}

impl Inner {
    /// Pools `tx` (its hash and nonce slot must be free) with the next arrival number.
    fn insert(&mut self, tx: Recovered<TxEnvelope>, hash: B256) {
        let (sender, nonce) = (tx.signer(), tx.nonce());
        self.next_seq += 1;
        let seq = self.next_seq;
        self.by_hash.insert(hash, (sender, nonce));
        self.by_seq.insert(seq, (sender, nonce));
        self.by_price.insert(price_key(&tx, seq));
        self.by_sender.entry(sender).or_default().insert(nonce, PooledTx { tx, hash, seq });
    }

    fn remove(&mut self, sender: Address, nonce: u64) {
        if let Some(txs) = self.by_sender.get_mut(&sender) {
            if let Some(tx) = txs.remove(&nonce) {
                self.by_hash.remove(&tx.hash);
                self.by_seq.remove(&tx.seq);
                self.by_price.remove(&price_key(&tx.tx, tx.seq));
            }
            if txs.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }

    /// Makes room for `tx` of `sender` in a full pool by evicting the cheapest pooled
    /// transaction and its sender's later nonces, if `tx` pays more.
    fn evict_for(&mut self, tx: &TxEnvelope, sender: Address) -> Result<(), PoolError> {
        let Some(&(fee_cap, tip, Reverse(seq))) = self.by_price.first() else {
            return Err(PoolError::PoolFull);
        };
        if (tx.max_fee_per_gas(), tx.priority_fee_or_price()) <= (fee_cap, tip) {
            return Err(PoolError::Underpriced);
        }
        // by_price and by_seq are kept together by insert/remove.
        let Some(&(victim, from)) = self.by_seq.get(&seq) else { return Err(PoolError::PoolFull) };
        if victim == sender {
            // Evicting its own earlier nonce would strand the newcomer behind a gap.
            return Err(PoolError::PoolFull);
        }
        let nonces: Vec<u64> = self
            .by_sender
            .get(&victim)
            .map(|t| t.range(from..).map(|(n, _)| *n).collect())
            .unwrap_or_default();
        tracing::debug!(%victim, from, count = nonces.len(), "pool full: evicting the cheapest transactions");
        metrics::counter!("fogchain_txpool_evicted_total").increment(nonces.len() as u64);
        for nonce in nonces {
            self.remove(victim, nonce);
        }
        Ok(())
    }
}

/// The transaction pool of one node.
pub struct TxPool {
    chain: Arc<ChainSpec>,
    storage: Storage,
    config: PoolConfig,
    pub(crate) inner: Mutex<Inner>,
    changed: Condvar,
    /// Hashes of accepted transactions, for filters and subscriptions.
    accepted: tokio::sync::broadcast::Sender<B256>,
    /// Whether the chain has account permissioning, read once (it never changes after genesis).
    permissioned: std::sync::OnceLock<bool>,
}

impl std::fmt::Debug for TxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxPool").field("len", &self.len()).finish()
    }
}

fn bumped(old: u128, percent: u128) -> u128 {
    old.saturating_mul(100 + percent) / 100
}

impl TxPool {
    /// An empty pool validating against the latest state in `storage`.
    pub fn new(chain: Arc<ChainSpec>, storage: Storage, config: PoolConfig) -> Self {
        let (accepted, _) = tokio::sync::broadcast::channel(16_384);
        Self {
            chain,
            storage,
            config,
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
            accepted,
            permissioned: std::sync::OnceLock::new(),
        }
    }

    /// The account-permissioning rule over the head state (see `fogchain_evm::Permissions`).
    fn permissions(&self) -> Result<Permissions<'_, Storage>, PoolError> {
        if let Some(enabled) = self.permissioned.get() {
            return Ok(Permissions::with_enabled(&self.storage, *enabled));
        }
        let permissions = Permissions::new(&self.storage)?;
        let _ = self.permissioned.set(permissions.enabled());
        Ok(permissions)
    }

    /// The minimum tip this pool admits, wei: `[txpool] price-limit`, else 1 wei (0 on a
    /// zero-base-fee network, whose transactions pay nothing).
    pub fn min_tip(&self) -> u128 {
        self.config.price_limit.unwrap_or(if self.chain.fogchain.zero_base_fee { 0 } else { 1 })
    }

    /// The latest account state of `address` (empty when absent or unreadable: the pool only
    /// uses it to order and filter; a block's execution reads state itself).
    pub(crate) fn account(&self, address: &Address) -> TrieAccount {
        self.storage.account(address).ok().flatten().unwrap_or_default()
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.inner.lock().by_hash.len()
    }

    /// True when nothing is pooled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates `tx` (of `encoded_len` bytes, its EIP-2718 encoding) and pools it; returns its
    /// hash. The checks and their errors are listed in the crate docs.
    pub fn add(&self, tx: TxEnvelope, encoded_len: usize) -> Result<B256, PoolError> {
        let outcome = self.admit(tx, encoded_len);
        match &outcome {
            Ok(_) => metrics::counter!("fogchain_txpool_admitted_total").increment(1),
            Err(e) => metrics::counter!("fogchain_txpool_refused_total", "reason" => e.reason()).increment(1),
        }
        outcome
    }

    fn admit(&self, tx: TxEnvelope, encoded_len: usize) -> Result<B256, PoolError> {
        let (_, head) = self.storage.head()?;
        check_stateless(&self.chain, &head, &tx, encoded_len, self.min_tip())?;
        let tx = recover(tx)?;
        let sender = tx.signer();
        let hash = *tx.tx_hash();
        self.permissions()?.check(sender, tx.kind())??;
        let account = self.storage.account(&sender)?.unwrap_or_default();
        check_stateful(tx.inner(), &account)?;

        let mut inner = self.inner.lock();
        if inner.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let own = inner.by_sender.get(&sender);
        let replacing = own.and_then(|txs| txs.get(&tx.nonce()));
        if let Some(old) = replacing {
            let fee_ok =
                tx.max_fee_per_gas() >= bumped(old.tx.max_fee_per_gas(), self.config.price_bump_percent);
            let tip_ok = tx.priority_fee_or_price()
                >= bumped(old.tx.priority_fee_or_price(), self.config.price_bump_percent);
            if !(fee_ok && tip_ok) {
                return Err(PoolError::ReplacementUnderpriced);
            }
        } else {
            let own_len = own.map_or(0, |t| t.len());
            if own_len >= self.config.max_per_sender
                || tx.nonce() >= account.nonce + self.config.max_per_sender as u64
            {
                return Err(PoolError::AccountLimitExceeded { max: self.config.max_per_sender });
            }
            if inner.by_hash.len() >= self.config.max_transactions {
                inner.evict_for(tx.inner(), sender)?;
            }
        }
        let nonce = tx.nonce();
        inner.remove(sender, nonce);
        inner.insert(tx, hash);
        inner.generation += 1;
        drop(inner);
        self.changed.notify_all();
        let _ = self.accepted.send(hash);
        Ok(hash)
    }

    /// Next nonce of `sender` counting its pending transactions, if it has any pooled.
    pub fn pending_nonce(&self, sender: Address) -> Option<u64> {
        let state_nonce = self.account(&sender).nonce;
        let inner = self.inner.lock();
        let txs = inner.by_sender.get(&sender)?;
        let mut next = state_nonce;
        while txs.contains_key(&next) {
            next += 1;
        }
        Some(next)
    }

    /// The sender of a pooled transaction (recovered at admission), by hash.
    pub fn sender_of(&self, hash: &B256) -> Option<Address> {
        self.inner.lock().by_hash.get(hash).map(|(sender, _)| *sender)
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<Recovered<TxEnvelope>> {
        let inner = self.inner.lock();
        let (sender, nonce) = inner.by_hash.get(hash)?;
        inner.by_sender.get(sender)?.get(nonce).map(|p| p.tx.clone())
    }

    /// After a block: drops the included transactions and every other pooled transaction whose
    /// nonce is now used (by looking at the senders of the included ones), and those the builder
    /// found permanently invalid.
    pub fn on_block(&self, included_senders: &[Address], invalid: &[B256]) {
        let mut inner = self.inner.lock();
        let mut senders = included_senders.to_vec();
        senders.sort_unstable();
        senders.dedup();
        for sender in senders {
            let state_nonce = self.account(&sender).nonce;
            let stale: Vec<u64> = inner
                .by_sender
                .get(&sender)
                .map(|txs| txs.range(..state_nonce).map(|(n, _)| *n).collect())
                .unwrap_or_default();
            for nonce in stale {
                inner.remove(sender, nonce);
            }
        }
        for hash in invalid {
            if let Some((sender, nonce)) = inner.by_hash.get(hash).copied() {
                inner.remove(sender, nonce);
            }
        }
        inner.generation += 1;
        drop(inner);
        self.changed.notify_all();
    }

    /// Puts back transactions of a block that was not applied (a stale block).
    pub fn reinsert(&self, txs: Vec<Recovered<TxEnvelope>>) {
        let mut inner = self.inner.lock();
        for tx in txs {
            let hash = *tx.inner().tx_hash();
            let (sender, nonce) = (tx.signer(), tx.nonce());
            if inner.by_hash.contains_key(&hash)
                || inner.by_sender.get(&sender).is_some_and(|t| t.contains_key(&nonce))
            {
                continue;
            }
            inner.insert(tx, hash);
        }
        inner.generation += 1;
        drop(inner);
        self.changed.notify_all();
    }

    /// Pooled transactions that arrived after arrival number `seq` (0: all; numbers start at 1),
    /// in arrival order, and the highest arrival number seen. Used to forward the pool to the
    /// leader; costs O(new transactions), not O(pool).
    pub fn arrived_after(&self, seq: u64) -> (u64, Vec<TxEnvelope>) {
        let inner = self.inner.lock();
        let mut max = seq;
        let mut txs = Vec::new();
        for (n, (sender, nonce)) in inner.by_seq.range(seq + 1..) {
            if let Some(pooled) = inner.by_sender.get(sender).and_then(|t| t.get(nonce)) {
                max = *n;
                txs.push(pooled.tx.inner().clone());
            }
        }
        (max, txs)
    }

    /// Current change counter.
    pub fn generation(&self) -> u64 {
        self.inner.lock().generation
    }

    /// Blocks until the pool changes after `generation`, or `timeout` passes.
    pub fn wait_for_change(&self, generation: u64, timeout: Duration) {
        let mut inner = self.inner.lock();
        if inner.generation == generation {
            self.changed.wait_for(&mut inner, timeout);
        }
    }

    /// Wakes every waiter (shutdown).
    pub fn wake(&self) {
        self.inner.lock().generation += 1;
        self.changed.notify_all();
    }

    /// Hashes of transactions as the pool accepts them (pending-transaction filters and
    /// subscriptions). A receiver that lags by more than 16,384 skips the oldest.
    pub fn subscribe_pending(&self) -> tokio::sync::broadcast::Receiver<B256> {
        self.accepted.subscribe()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::MAX_TX_SIZE;
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_genesis::{Genesis, GenesisAccount};
    use alloy_network::TxSignerSync;
    use alloy_primitives::{keccak256, Bytes, TxKind, U256};
    use alloy_signer_local::PrivateKeySigner;
    use fogchain_genesis::FogchainConfig;

    /// The genesis base fee of the test chains (1 gwei), wei.
    pub(crate) const BASE_FEE: u64 = 1_000_000_000;
    /// A fee cap well above [`BASE_FEE`], wei.
    pub(crate) const FEE: u128 = 10_000_000_000;

    pub(crate) struct Fixture {
        _dir: tempfile::TempDir,
        pub(crate) pool: TxPool,
        pub(crate) keys: Vec<PrivateKeySigner>,
        pub(crate) spec: Arc<ChainSpec>,
        pub(crate) storage: Storage,
    }

    pub(crate) fn key(i: u64) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&keccak256((i + 1).to_be_bytes())).unwrap()
    }

    /// A pool on a fresh chain (gas limit 30M) where key `i` holds `balances[i]` wei.
    pub(crate) fn fixture_with(config: PoolConfig, balances: &[U256], zero_base_fee: bool) -> Fixture {
        let keys: Vec<PrivateKeySigner> = (0..balances.len() as u64).map(key).collect();
        let mut genesis = Genesis {
            config: fogchain_genesis::prague_chain_config(1337),
            gas_limit: 30_000_000,
            ..Default::default()
        };
        for (k, balance) in keys.iter().zip(balances) {
            genesis.alloc.insert(k.address(), GenesisAccount::default().with_balance(*balance));
        }
        let fog = FogchainConfig { zero_base_fee, ..Default::default() };
        let spec = Arc::new(ChainSpec::new(genesis, fog).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &spec).unwrap();
        Fixture { _dir: dir, pool: TxPool::new(spec.clone(), storage.clone(), config), keys, spec, storage }
    }

    /// Three keys with 1000 ether each.
    pub(crate) fn fixture(config: PoolConfig) -> Fixture {
        fixture_with(config, &[U256::from(10u128.pow(21)); 3], false)
    }

    /// A signed EIP-1559 transfer of 1 wei.
    pub(crate) fn signed_with(
        key: &PrivateKeySigner,
        nonce: u64,
        max_fee: u128,
        tip: u128,
        gas: u64,
    ) -> TxEnvelope {
        let mut tx = TxEip1559 {
            chain_id: 1337,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::repeat_byte(1)),
            value: U256::from(1),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let sig = key.sign_transaction_sync(&mut tx).unwrap();
        tx.into_signed(sig).into()
    }

    pub(crate) fn signed(key: &PrivateKeySigner, nonce: u64, max_fee: u128) -> TxEnvelope {
        signed_with(key, nonce, max_fee, max_fee / 10, 21_000)
    }

    fn best(pool: &TxPool, max: usize, gas_limit: u64) -> Vec<B256> {
        pool.best(Some(BASE_FEE), max, gas_limit).transactions.iter().map(|t| *t.inner().tx_hash()).collect()
    }

    fn hashes(txs: &[Recovered<TxEnvelope>]) -> Vec<B256> {
        txs.iter().map(|t| *t.inner().tx_hash()).collect()
    }

    #[test]
    fn arrived_after_lists_new_transactions_in_arrival_order() {
        let f = fixture(PoolConfig::default());
        let a = f.pool.add(signed(&f.keys[0], 0, 100), 120).unwrap();
        let (first, all) = f.pool.arrived_after(0);
        assert_eq!(all.iter().map(|t| *t.tx_hash()).collect::<Vec<_>>(), vec![a]);
        let b = f.pool.add(signed(&f.keys[1], 0, 100), 120).unwrap();
        let c = f.pool.add(signed(&f.keys[0], 1, 100), 120).unwrap();
        let (last, new) = f.pool.arrived_after(first);
        assert_eq!(new.iter().map(|t| *t.tx_hash()).collect::<Vec<_>>(), vec![b, c]);
        assert!(f.pool.arrived_after(last).1.is_empty());
        // A replacement counts as a new arrival; the replaced one is gone.
        let b2 = f.pool.add(signed(&f.keys[1], 0, 200), 120).unwrap();
        let (_, all) = f.pool.arrived_after(0);
        assert_eq!(all.iter().map(|t| *t.tx_hash()).collect::<Vec<_>>(), vec![a, c, b2]);
    }

    #[test]
    fn best_keeps_nonce_order_per_sender_and_arrival_order_across_senders() {
        let f = fixture(PoolConfig::default());
        let (a, b) = (&f.keys[0], &f.keys[1]);
        let a1 = f.pool.add(signed(a, 1, FEE), 120).unwrap();
        let b0 = f.pool.add(signed(b, 0, FEE), 120).unwrap();
        let a0 = f.pool.add(signed(a, 0, FEE), 120).unwrap();
        // A queued transaction behind a nonce gap is not offered.
        let b5 = f.pool.add(signed(b, 5, FEE), 120).unwrap();
        assert_eq!(best(&f.pool, 100, 30_000_000), [b0, a0, a1]);
        assert_eq!(best(&f.pool, 2, 30_000_000), [b0, a0]);
        assert_eq!(best(&f.pool, 100, 42_000), [b0, a0], "gas bound");
        assert_eq!(f.pool.pending_nonce(a.address()), Some(2));
        assert_eq!(f.pool.pending_nonce(b.address()), Some(1));
        assert_eq!(f.pool.pending_nonce(f.keys[2].address()), None);
        assert_eq!(f.pool.len(), 4);
        let (pending, queued) = f.pool.content();
        assert_eq!(pending.len(), 3);
        assert_eq!(hashes(&queued), [b5]);
        assert_eq!(f.pool.counts(), (3, 1));
    }

    #[test]
    fn best_takes_the_highest_effective_tip_first() {
        let f = fixture(PoolConfig::default());
        let low = f.pool.add(signed_with(&f.keys[0], 0, FEE, 1, 21_000), 120).unwrap();
        // A high tip but a fee cap that leaves only 2 wei above the base fee.
        let capped =
            f.pool.add(signed_with(&f.keys[1], 0, u128::from(BASE_FEE) + 2, 1_000, 21_000), 120).unwrap();
        let high = f.pool.add(signed_with(&f.keys[2], 0, FEE, 1_000, 21_000), 120).unwrap();
        assert_eq!(best(&f.pool, 100, 30_000_000), [high, capped, low]);
    }

    #[test]
    fn transactions_that_cannot_execute_never_hold_up_others() {
        let poor = U256::from(21_000u128 * FEE + 1);
        let f = fixture_with(
            PoolConfig::default(),
            &[U256::from(10u128.pow(21)), poor, U256::from(10u128.pow(21))],
            false,
        );
        let (rich, poor, other) = (&f.keys[0], &f.keys[1], &f.keys[2]);
        // Below the base fee, with the whole block's gas: first to arrive, left out.
        let waiting = f.pool.add(signed_with(rich, 0, 100, 1, 30_000_000), 120).unwrap();
        // The balance covers the first transfer, not the second.
        let paid = f.pool.add(signed(poor, 0, FEE), 120).unwrap();
        let unpaid = f.pool.add(signed(poor, 1, FEE), 120).unwrap();
        let fine = f.pool.add(signed(other, 0, FEE), 120).unwrap();
        let best_txs = f.pool.best(Some(BASE_FEE), 100, 30_000_000);
        assert_eq!(hashes(&best_txs.transactions), [paid, fine]);
        assert_eq!(best_txs.waiting_for_base_fee, Some(100));
        let (pending, queued) = f.pool.content();
        assert_eq!(hashes(&pending).len(), 3, "the base fee does not demote");
        assert!(hashes(&pending).contains(&waiting));
        assert_eq!(hashes(&queued), [unpaid]);
        assert_eq!(f.pool.counts(), (3, 1));
    }

    #[test]
    fn the_price_limit_refuses_a_low_tip_unless_the_base_fee_is_zero() {
        let f = fixture(PoolConfig::default());
        let err = f.pool.add(signed_with(&f.keys[0], 0, 0, 0, 21_000), 120).unwrap_err();
        assert_eq!(err.to_string(), "transaction underpriced: gas tip cap 0, minimum needed 1");
        let f = fixture(PoolConfig { price_limit: Some(5), ..Default::default() });
        let err = f.pool.add(signed_with(&f.keys[0], 0, FEE, 4, 21_000), 120).unwrap_err();
        assert_eq!(err.to_string(), "transaction underpriced: gas tip cap 4, minimum needed 5");
        f.pool.add(signed_with(&f.keys[0], 0, FEE, 5, 21_000), 120).unwrap();
        let f = fixture_with(PoolConfig::default(), &[U256::ZERO], true);
        assert_eq!(f.pool.min_tip(), 0);
        let free = f.pool.add(signed_with(&f.keys[0], 0, 0, 0, 21_000), 120);
        // Free gas, but the 1 wei of value is not covered by a zero balance.
        assert!(free.unwrap_err().to_string().starts_with("insufficient funds"));
    }

    #[test]
    fn replacement_needs_the_price_bump() {
        let f = fixture(PoolConfig::default());
        let a = &f.keys[0];
        let first = f.pool.add(signed(a, 0, FEE), 120).unwrap();
        assert_eq!(
            f.pool.add(signed(a, 0, FEE * 109 / 100), 120).unwrap_err().to_string(),
            "replacement transaction underpriced"
        );
        let second = f.pool.add(signed(a, 0, FEE * 110 / 100), 120).unwrap();
        assert!(f.pool.get(&first).is_none());
        assert_eq!(best(&f.pool, 10, 30_000_000), [second]);
        assert_eq!(f.pool.len(), 1);
    }

    #[test]
    fn limits_eviction_and_cleanup_after_a_block() {
        let f = fixture(PoolConfig { max_transactions: 3, max_per_sender: 2, ..Default::default() });
        let (a, b, c) = (&f.keys[0], &f.keys[1], &f.keys[2]);
        let a0 = f.pool.add(signed(a, 0, FEE), 120).unwrap();
        let a1 = f.pool.add(signed(a, 1, FEE * 2), 120).unwrap();
        let err = f.pool.add(signed(a, 2, FEE * 2), 120).unwrap_err().to_string();
        assert!(err.starts_with("account limit exceeded"), "{err}");
        let b0 = f.pool.add(signed(b, 0, FEE * 2), 120).unwrap();
        // Full: no more than the cheapest (a0) cannot evict anything.
        assert_eq!(f.pool.add(signed(c, 0, FEE), 120).unwrap_err().to_string(), "transaction underpriced");
        // A higher price evicts the cheapest, a0, and a1 with it (it could not execute behind
        // the gap).
        let c0 = f.pool.add(signed(c, 0, FEE * 3), 120).unwrap();
        assert!(f.pool.get(&a0).is_none() && f.pool.get(&a1).is_none());
        assert_eq!(f.pool.len(), 2);
        // On a tie the latest arrival is the cheapest.
        f.pool.add(signed(a, 0, FEE * 2), 120).unwrap();
        f.pool.add(signed(c, 1, FEE * 3), 120).unwrap();
        assert!(f.pool.get(&b0).is_some(), "b0 arrived before a's new nonce 0");
        assert_eq!(f.pool.len(), 3);
        assert!(f.pool.get(&c0).is_some());
        // A block that drops c0 as permanently invalid, with nothing included.
        f.pool.on_block(&[], &[c0]);
        assert_eq!(f.pool.len(), 2);
        assert!(f.pool.get(&c0).is_none());
        let err = f.pool.add(signed(a, 0, FEE), MAX_TX_SIZE + 1).unwrap_err().to_string();
        assert_eq!(err, format!("oversized data: transaction size {}, limit {MAX_TX_SIZE}", MAX_TX_SIZE + 1));
    }
}
