//! The pool itself: pending and queued transactions per sender, arrival order, replacement,
//! limits, and what the block builder and the forwarder take from it.
//!
//! A transaction is *pending* when every nonce from the sender's state nonce up to its own is
//! pooled (it can go into the next block), *queued* otherwise (a nonce gap). Blocks take pending
//! transactions in arrival order across senders and nonce order within a sender. The sender is
//! recovered once, at admission, and travels with the transaction from then on.
//!
//! Admission ([`TxPool::add`]) runs the checks in geth's order: the stateless ones (the
//! transaction alone, the head header and the chain spec), sender recovery, the stateful ones
//! (the sender's account), then the pool rules (duplicates, replacement, limits).

use crate::{PoolConfig, PoolError, MAX_INITCODE_SIZE, MAX_TX_SIZE};
use alloy_consensus::{
    transaction::{Recovered, SignerRecoverable},
    Header, Transaction, TxEnvelope,
};
use alloy_primitives::{Address, B256, U256};
use alloy_trie::TrieAccount;
use fogchain_evm::{intrinsic_gas, spec_for};
use fogchain_genesis::ChainSpec;
use fogchain_storage::{ChainReader, Storage};
use parking_lot::{Condvar, Mutex};
use std::{
    collections::{BTreeMap, BinaryHeap, HashMap},
    sync::Arc,
    time::Duration,
};

#[derive(Debug, Clone)]
struct PooledTx {
    tx: Recovered<TxEnvelope>,
    hash: B256,
    /// Arrival sequence number (fairness across senders).
    seq: u64,
}

#[derive(Default)]
struct Inner {
    by_hash: HashMap<B256, (Address, u64)>,
    by_sender: HashMap<Address, BTreeMap<u64, PooledTx>>,
    /// Arrival number -> (sender, nonce): what arrived after a point, without a pool scan.
    by_seq: BTreeMap<u64, (Address, u64)>,
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
        self.by_sender.entry(sender).or_default().insert(nonce, PooledTx { tx, hash, seq });
    }

    fn remove(&mut self, sender: Address, nonce: u64) {
        if let Some(txs) = self.by_sender.get_mut(&sender) {
            if let Some(tx) = txs.remove(&nonce) {
                self.by_hash.remove(&tx.hash);
                self.by_seq.remove(&tx.seq);
            }
            if txs.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }
}

/// The transaction pool of one node.
pub struct TxPool {
    chain: Arc<ChainSpec>,
    storage: Storage,
    config: PoolConfig,
    inner: Mutex<Inner>,
    changed: Condvar,
    /// Hashes of accepted transactions, for filters and subscriptions.
    accepted: tokio::sync::broadcast::Sender<B256>,
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
        }
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
        let (_, head) = self.storage.head()?;
        check_stateless(&self.chain, &head, &tx, encoded_len)?;
        let tx = recover(tx)?;
        let sender = tx.signer();
        let hash = *tx.tx_hash();
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
            let tip = |t: &TxEnvelope| t.max_priority_fee_per_gas().unwrap_or_else(|| t.max_fee_per_gas());
            let tip_ok = tip(tx.inner()) >= bumped(tip(old.tx.inner()), self.config.price_bump_percent);
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
                return Err(PoolError::PoolFull);
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
        let state_nonce = self.storage.account(&sender).ok().flatten().map_or(0, |a| a.nonce);
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

    /// Pending transactions for the next block: arrival order across senders, nonce order within
    /// each sender, at most `max` of them and at most `gas_limit` of summed gas limits.
    pub fn best(&self, max: usize, gas_limit: u64) -> Vec<Recovered<TxEnvelope>> {
        let inner = self.inner.lock();
        // Runs of consecutive nonces starting at each sender's state nonce.
        let mut runs: Vec<Vec<&PooledTx>> = Vec::new();
        for (sender, txs) in &inner.by_sender {
            let state_nonce = self.storage.account(sender).ok().flatten().map_or(0, |a| a.nonce);
            let run: Vec<&PooledTx> = txs
                .range(state_nonce..)
                .scan(state_nonce, |expected, (nonce, tx)| {
                    (*nonce == *expected).then(|| {
                        *expected += 1;
                        tx
                    })
                })
                .collect();
            if !run.is_empty() {
                runs.push(run);
            }
        }
        let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize, usize)>> =
            runs.iter().enumerate().map(|(r, run)| std::cmp::Reverse((run[0].seq, r, 0))).collect();
        let mut out = Vec::new();
        let mut gas = 0u64;
        while let Some(std::cmp::Reverse((_, r, i))) = heap.pop() {
            if out.len() >= max || gas_limit - gas < 21_000 {
                break;
            }
            let tx = &runs[r][i];
            if tx.tx.gas_limit() <= gas_limit - gas {
                gas += tx.tx.gas_limit();
                out.push(tx.tx.clone());
                if let Some(next) = runs[r].get(i + 1) {
                    heap.push(std::cmp::Reverse((next.seq, r, i + 1)));
                }
            }
        }
        out
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
            let state_nonce = self.storage.account(&sender).ok().flatten().map_or(0, |a| a.nonce);
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

    /// (pending: executable in nonce order from each sender's state nonce, queued: the rest).
    pub fn content(&self) -> (Vec<Recovered<TxEnvelope>>, Vec<Recovered<TxEnvelope>>) {
        let inner = self.inner.lock();
        let (mut pending, mut queued) = (Vec::new(), Vec::new());
        for (sender, txs) in &inner.by_sender {
            let mut expected = self.storage.account(sender).ok().flatten().map_or(0, |a| a.nonce);
            for (nonce, pooled) in txs {
                if *nonce == expected {
                    pending.push(pooled.tx.clone());
                    expected += 1;
                } else {
                    queued.push(pooled.tx.clone());
                }
            }
        }
        (pending, queued)
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

/// Checks that need neither the sender nor its account; `head` is the applied head, whose gas
/// limit and fork rules the next block will have.
fn check_stateless(
    chain: &ChainSpec,
    head: &Header,
    tx: &TxEnvelope,
    encoded_len: usize,
) -> Result<(), PoolError> {
    if encoded_len > MAX_TX_SIZE {
        return Err(PoolError::OversizedData { size: encoded_len, limit: MAX_TX_SIZE });
    }
    if tx.is_eip4844() {
        return Err(PoolError::TxTypeNotSupported);
    }
    if tx.gas_limit() > head.gas_limit {
        return Err(PoolError::GasLimitExceeded);
    }
    if tx.max_priority_fee_per_gas().is_some_and(|tip| tip > tx.max_fee_per_gas()) {
        return Err(PoolError::TipAboveFeeCap);
    }
    match tx.chain_id() {
        Some(have) if have != chain.chain_id() => {
            return Err(PoolError::InvalidChainId { have, want: chain.chain_id() })
        }
        None => return Err(PoolError::NotReplayProtected),
        _ => {}
    }
    if tx.kind().is_create() && tx.input().len() > MAX_INITCODE_SIZE {
        return Err(PoolError::MaxInitCodeSizeExceeded { size: tx.input().len(), limit: MAX_INITCODE_SIZE });
    }
    let (intrinsic, floor) = intrinsic_gas(tx, spec_for(chain, head));
    if tx.gas_limit() < intrinsic {
        return Err(PoolError::IntrinsicGasTooLow { gas: tx.gas_limit(), needed: intrinsic });
    }
    if tx.gas_limit() < floor {
        return Err(PoolError::FloorDataGasTooLow { gas: tx.gas_limit(), needed: floor });
    }
    Ok(())
}

/// Recovers the sender with libsecp256k1 (alloy-consensus' `secp256k1` feature), which refuses
/// high-s signatures (EIP-2).
fn recover(tx: TxEnvelope) -> Result<Recovered<TxEnvelope>, PoolError> {
    let sender = tx.recover_signer().map_err(|_| PoolError::InvalidSender)?;
    Ok(Recovered::new_unchecked(tx, sender))
}

/// Checks against the sender's latest account state (nonce and balance, wei).
fn check_stateful(tx: &TxEnvelope, account: &TrieAccount) -> Result<(), PoolError> {
    if tx.nonce() < account.nonce {
        return Err(PoolError::NonceTooLow { next: account.nonce, nonce: tx.nonce() });
    }
    let cost = U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value();
    if account.balance < cost {
        return Err(PoolError::InsufficientFunds { balance: account.balance, cost });
    }
    Ok(())
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

    pub(crate) struct Fixture {
        _dir: tempfile::TempDir,
        pub(crate) pool: TxPool,
        pub(crate) keys: Vec<PrivateKeySigner>,
    }

    pub(crate) fn fixture(config: PoolConfig) -> Fixture {
        let keys: Vec<PrivateKeySigner> =
            (1..=3u64).map(|i| PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap()).collect();
        let mut genesis = Genesis {
            config: fogchain_genesis::prague_chain_config(1337),
            gas_limit: 30_000_000,
            ..Default::default()
        };
        for k in &keys {
            genesis
                .alloc
                .insert(k.address(), GenesisAccount::default().with_balance(U256::from(10u128.pow(21))));
        }
        let spec = Arc::new(ChainSpec::new(genesis, Default::default()).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &spec).unwrap();
        Fixture { _dir: dir, pool: TxPool::new(spec, storage, config), keys }
    }

    pub(crate) fn signed(key: &PrivateKeySigner, nonce: u64, max_fee: u128) -> TxEnvelope {
        let mut tx = TxEip1559 {
            chain_id: 1337,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: max_fee / 10,
            to: TxKind::Call(Address::repeat_byte(1)),
            value: U256::from(1),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let sig = key.sign_transaction_sync(&mut tx).unwrap();
        tx.into_signed(sig).into()
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
        let a1 = f.pool.add(signed(a, 1, 10_000_000_000), 120).unwrap();
        let b0 = f.pool.add(signed(b, 0, 10_000_000_000), 120).unwrap();
        let a0 = f.pool.add(signed(a, 0, 10_000_000_000), 120).unwrap();
        // A queued transaction behind a nonce gap is not offered.
        f.pool.add(signed(b, 5, 10_000_000_000), 120).unwrap();
        assert_eq!(hashes(&f.pool.best(100, 30_000_000)), [b0, a0, a1]);
        assert_eq!(hashes(&f.pool.best(2, 30_000_000)), [b0, a0]);
        assert_eq!(hashes(&f.pool.best(100, 42_000)), [b0, a0], "gas bound");
        assert_eq!(f.pool.pending_nonce(a.address()), Some(2));
        assert_eq!(f.pool.pending_nonce(b.address()), Some(1));
        assert_eq!(f.pool.pending_nonce(f.keys[2].address()), None);
        assert_eq!(f.pool.len(), 4);
    }

    #[test]
    fn replacement_needs_the_price_bump() {
        let f = fixture(PoolConfig::default());
        let a = &f.keys[0];
        let first = f.pool.add(signed(a, 0, 10_000_000_000), 120).unwrap();
        assert_eq!(
            f.pool.add(signed(a, 0, 10_900_000_000), 120).unwrap_err().to_string(),
            "replacement transaction underpriced"
        );
        let second = f.pool.add(signed(a, 0, 11_000_000_000), 120).unwrap();
        assert!(f.pool.get(&first).is_none());
        assert_eq!(hashes(&f.pool.best(10, 30_000_000)), [second]);
        assert_eq!(f.pool.len(), 1);
    }

    #[test]
    fn limits_and_cleanup_after_a_block() {
        let f = fixture(PoolConfig { max_transactions: 3, max_per_sender: 2, price_bump_percent: 10 });
        let (a, b) = (&f.keys[0], &f.keys[1]);
        f.pool.add(signed(a, 0, 10_000_000_000), 120).unwrap();
        f.pool.add(signed(a, 1, 10_000_000_000), 120).unwrap();
        let err = f.pool.add(signed(a, 2, 10_000_000_000), 120).unwrap_err().to_string();
        assert!(err.starts_with("account limit exceeded"), "{err}");
        let b0 = f.pool.add(signed(b, 0, 10_000_000_000), 120).unwrap();
        assert_eq!(
            f.pool.add(signed(&f.keys[2], 0, 10_000_000_000), 120).unwrap_err().to_string(),
            "txpool is full"
        );
        // A block that drops b0 as permanently invalid, with nothing included.
        f.pool.on_block(&[], &[b0]);
        assert_eq!(f.pool.len(), 2);
        assert!(f.pool.get(&b0).is_none());
        let err = f.pool.add(signed(a, 0, 10_000_000_000), MAX_TX_SIZE + 1).unwrap_err().to_string();
        assert_eq!(err, format!("oversized data: transaction size {}, limit {MAX_TX_SIZE}", MAX_TX_SIZE + 1));
    }
}
