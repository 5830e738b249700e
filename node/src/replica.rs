//! The node's chain as Raft's replicated state machine: committed entries are blocks.

use crate::chain::{Applied, Chain, SealedBlock, StaleBlock};
use alloy_primitives::B256;
use fogchain_consensus::{AppliedBlock, ApplyError, CommittedBlock, Directory, StateMachine};
use fogchain_evm::ExecutedBlock;
use fogchain_storage::Storage;
use fogchain_txpool::TxPool;
use parking_lot::Mutex;
use std::sync::Arc;

/// Applies committed blocks to the chain and keeps the pool in step.
pub struct Replica {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    /// The minter's own execution of the block it proposed last, reused when that very block
    /// is committed (the leader does not execute its blocks twice).
    minted: Mutex<Option<(B256, ExecutedBlock)>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("head", &self.chain.head()).finish()
    }
}

impl Replica {
    /// Over `chain` and `pool`.
    pub fn new(chain: Arc<Chain>, pool: Arc<TxPool>) -> Self {
        Self { chain, pool, minted: Mutex::new(None) }
    }

    /// Remembers the minter's execution of block `hash` until it is committed.
    pub fn set_minted(&self, hash: B256, executed: ExecutedBlock) {
        *self.minted.lock() = Some((hash, executed));
    }

    /// Forgets the minter's execution (its proposal was dropped).
    pub fn clear_minted(&self) {
        self.minted.lock().take();
    }

    fn take_minted(&self, hash: B256) -> Option<ExecutedBlock> {
        let mut minted = self.minted.lock();
        if minted.as_ref().is_some_and(|(h, _)| *h == hash) {
            minted.take().map(|(_, e)| e)
        } else {
            None
        }
    }
}

impl StateMachine for Replica {
    fn storage(&self) -> &Storage {
        self.chain.storage()
    }

    fn apply_block(&self, entry: CommittedBlock<'_>) -> Result<AppliedBlock, ApplyError> {
        let index = entry.index;
        let block = SealedBlock::decode(entry.data).map_err(|e| {
            tracing::warn!(index, error = %e, "committed entry is not a block; skipped");
            ApplyError::refused(e)
        })?;
        let hash = block.hash();
        let executed = self.take_minted(hash);
        let started = std::time::Instant::now();
        let number = block.header().number;
        match self.chain.apply_block(&block, executed, Some(index), |h| self.pool.sender_of(h)) {
            Ok(Applied::Head { number, hash, senders }) => {
                tracing::info!(number, %hash, txs = senders.len(), index, "block committed");
                crate::metrics::block_applied(block.header(), senders.len(), started.elapsed());
                self.pool.on_block(&senders, &[]);
                Ok(AppliedBlock { number, hash })
            }
            Ok(Applied::Stale(txs)) => {
                tracing::info!(number, %hash, index, "stale block (deposed leader) skipped; its transactions return to the pool");
                metrics::counter!("fogchain_blocks_skipped_total", "reason" => "stale").increment(1);
                let senders: Vec<_> = txs.iter().map(|t| t.signer()).collect();
                self.pool.reinsert(txs);
                // Those whose nonce the head already used can never be mined: drop them.
                self.pool.on_block(&senders, &[]);
                Err(ApplyError::refused(StaleBlock { number, head: self.chain.head().0 }))
            }
            // The database failed (also while executing): fatal, never "an invalid block".
            Err(e) if e.is_fault() => Err(e.into()),
            Err(e) => {
                // Every node runs the same checks on the same block: all skip it.
                tracing::warn!(number, %hash, index, error = %e, "invalid committed block skipped");
                metrics::counter!("fogchain_blocks_skipped_total", "reason" => "invalid").increment(1);
                Err(e.into())
            }
        }
    }

    fn head(&self) -> (u64, B256) {
        self.chain.head()
    }

    fn encoded_blocks(&self, from: u64, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut size = 0;
        let mut number = from;
        while size < max_bytes {
            match self.chain.encoded_block(number) {
                Ok(Some(block)) => {
                    size += block.len();
                    out.push(block);
                    number += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(number, error = %e, "cannot serve block for sync");
                    break;
                }
            }
        }
        out
    }

    fn import_block(&self, data: &[u8]) -> Result<AppliedBlock, ApplyError> {
        let block = SealedBlock::decode(data).map_err(ApplyError::refused)?;
        match self.chain.apply_block(&block, None, None, |h| self.pool.sender_of(h))? {
            Applied::Head { number, hash, senders } => {
                self.pool.on_block(&senders, &[]);
                Ok(AppliedBlock { number, hash })
            }
            Applied::Stale(_) => Err(ApplyError::refused(StaleBlock {
                number: block.header().number,
                head: self.chain.head().0,
            })),
        }
    }

    fn members_changed(&self, directory: &Directory) {
        self.chain.set_sealers(directory.sealers());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{chain::FogBlock, seal::seal};
    use alloy_consensus::{
        transaction::SignerRecoverable, BlockBody, SignableTransaction, TxEip1559, TxEnvelope,
    };
    use alloy_genesis::{Genesis, GenesisAccount};
    use alloy_network::TxSignerSync;
    use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
    use alloy_signer_local::PrivateKeySigner;
    use fogchain_evm::{child_header, execute_block, Mode};
    use fogchain_genesis::{ChainSpec, FogchainConfig, Member};
    use fogchain_storage::ChainReader;
    use fogchain_txpool::PoolConfig;

    struct Node {
        _dir: tempfile::TempDir,
        replica: Replica,
        chain: Arc<Chain>,
        pool: Arc<TxPool>,
    }

    fn key(i: u64) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap()
    }

    fn spec() -> Arc<ChainSpec> {
        let mut genesis = Genesis {
            config: fogchain_genesis::prague_chain_config(1337),
            gas_limit: 30_000_000,
            ..Default::default()
        };
        genesis
            .alloc
            .insert(key(1).address(), GenesisAccount::default().with_balance(U256::from(10u128.pow(21))));
        let members = vec![Member {
            raft_id: 1,
            address: key(100).address(),
            peer_id: String::new(),
            p2p: String::new(),
        }];
        Arc::new(ChainSpec::new(genesis, FogchainConfig { members, ..Default::default() }).unwrap())
    }

    fn node(spec: &Arc<ChainSpec>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), spec).unwrap();
        let chain = Arc::new(Chain::new(spec.clone(), storage.clone()).unwrap());
        let pool = Arc::new(TxPool::new(spec.clone(), storage, PoolConfig::default()));
        Node { _dir: dir, replica: Replica::new(chain.clone(), pool.clone()), chain, pool }
    }

    /// Applies `data` as the block entry committed at `index`.
    fn commit(node: &Node, index: u64, data: &[u8]) -> Result<AppliedBlock, ApplyError> {
        node.replica.apply_block(CommittedBlock { index, term: 1, data })
    }

    fn transfer(nonce: u64, wei: u64) -> TxEnvelope {
        let mut tx = TxEip1559 {
            chain_id: 1337,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(Address::repeat_byte(9)),
            value: U256::from(wei),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let sig = key(1).sign_transaction_sync(&mut tx).unwrap();
        tx.into_signed(sig).into()
    }

    /// A block on `node`'s head with `txs`, sealed by `sealer`, RLP-encoded.
    fn mint(node: &Node, txs: Vec<TxEnvelope>, sealer: &PrivateKeySigner) -> Vec<u8> {
        let spec = node.chain.spec();
        let (hash, head) = node.chain.storage().head().unwrap();
        let template = child_header(spec, hash, &head, head.timestamp + 1, sealer.address());
        let txs = txs.into_iter().map(|t| t.try_into_recovered().unwrap());
        let executed = execute_block(
            spec,
            node.chain.storage(),
            &head,
            template,
            txs,
            None,
            Mode::Build { max_transactions: 100 },
        )
        .unwrap();
        let mut header = executed.header.clone();
        seal(&mut header, sealer).unwrap();
        let body = BlockBody {
            transactions: executed.transactions.iter().map(|t| t.inner().clone()).collect(),
            ommers: vec![],
            withdrawals: header.withdrawals_root.map(|_| Default::default()),
        };
        SealedBlock::new(FogBlock { header, body }).encode()
    }

    #[test]
    fn committed_blocks_apply_stale_and_invalid_ones_are_no_ops_everywhere() {
        let spec = spec();
        let (a, b) = (node(&spec), node(&spec));
        let leader = key(100);
        // Both nodes hold the tx in their pools (a follower keeps what it forwarded).
        for n in [&a, &b] {
            n.pool.add(transfer(0, 1), 120).unwrap();
        }
        let block1 = mint(&a, vec![transfer(0, 1)], &leader);
        // A deposed leader built another block 1 on the same parent; it is committed second.
        let stale = mint(&a, vec![transfer(0, 2)], &leader);
        // A block sealed by a non-member.
        let block2_bad = {
            let n = node(&spec);
            commit(&n, 2, &block1).unwrap();
            mint(&n, vec![transfer(1, 1)], &key(7))
        };
        for n in [&a, &b] {
            assert_eq!(commit(n, 2, &block1).unwrap().number, 1);
            assert!(n.pool.is_empty(), "the mined tx left the pool");
            let refused = |result: Result<AppliedBlock, ApplyError>| match result {
                Err(ApplyError::Refused(reason)) => reason.to_string(),
                other => panic!("not refused: {other:?}"),
            };
            assert!(refused(commit(n, 3, &stale)).contains("does not extend the head"));
            assert!(n.pool.is_empty(), "the stale block's tx reused a mined nonce and was dropped");
            assert!(refused(commit(n, 4, &block2_bad)).contains("seal"));
            refused(commit(n, 5, b"not a block"));
            assert_eq!(n.chain.head().0, 1);
            // Refused entries write nothing: consensus records their index.
            assert_eq!(n.chain.storage().applied_index().unwrap(), 2);
        }
        assert_eq!(a.chain.head(), b.chain.head());
        assert_eq!(
            a.chain.storage().head().unwrap().1.state_root,
            b.chain.storage().head().unwrap().1.state_root
        );
    }

    #[test]
    fn block_sync_imports_what_another_node_serves() {
        let spec = spec();
        let (a, b) = (node(&spec), node(&spec));
        let leader = key(100);
        for nonce in 0..5 {
            let block = mint(&a, vec![transfer(nonce, 1)], &leader);
            commit(&a, nonce + 2, &block).unwrap();
        }
        let served = a.replica.encoded_blocks(1, 1 << 20);
        assert_eq!(served.len(), 5);
        assert_eq!(a.replica.encoded_blocks(2, 1).len(), 1, "at least one block even over the size bound");
        for block in &served {
            b.replica.import_block(block).unwrap();
        }
        assert_eq!(a.chain.head(), b.chain.head());
        // Out of order or foreign blocks are refused.
        assert!(b.replica.import_block(&served[0]).is_err());
        assert!(b.replica.import_block(b"junk").is_err());
    }

    #[test]
    fn block_sync_checks_each_seal_against_the_membership_at_its_height() {
        let spec = spec();
        let (a, b) = (node(&spec), node(&spec));
        let (first, second) = (key(100), key(101));
        let tenures = |until: Option<u64>| {
            fogchain_genesis::Sealers::new([
                (first.address(), fogchain_genesis::Tenure { from: 1, until }),
                (second.address(), fogchain_genesis::Tenure::starting_after(1)),
            ])
        };
        // On the serving node, `first` sealed block 1 and was removed there; `second` sealed
        // block 2.
        a.chain.set_sealers(tenures(Some(1)));
        let block1 = mint(&a, vec![transfer(0, 1)], &first);
        commit(&a, 2, &block1).unwrap();
        let block2 = mint(&a, vec![transfer(1, 1)], &second);
        commit(&a, 3, &block2).unwrap();
        assert_eq!(a.chain.head().0, 2);
        // The removed member's key signs another block 2: a syncing node that got the
        // membership from a snapshot refuses it and takes the genuine one.
        b.chain.set_sealers(tenures(Some(1)));
        b.replica.import_block(&block1).unwrap();
        let forged = mint(&b, vec![transfer(1, 2)], &first);
        match b.replica.import_block(&forged) {
            Err(ApplyError::Refused(reason)) => {
                assert!(reason.to_string().contains("not a member at block 2"), "{reason}")
            }
            other => panic!("a block past its sealer's tenure was not refused: {other:?}"),
        }
        b.replica.import_block(&block2).unwrap();
        assert_eq!(a.chain.head(), b.chain.head());
    }
}
