//! Account permissioning end to end below the RPC: the genesis `AccountPermissions` contract,
//! its M-of-N governance, the rule every node applies when it builds and validates blocks (and
//! the pool at admission), and that the rule read from storage agrees with the contract's views.

use alloy_consensus::{transaction::Recovered, BlockBody, SignableTransaction, TxEip1559, TxEnvelope};
use alloy_network::TxSignerSync;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolEvent};
use fogchain_contracts::AccountPermissions as P;
use fogchain_devnet::{genesis_spec, GenesisOrganisation, PermissionsGenesis};
use fogchain_evm::{
    call, child_header, execute_block,
    roles::{DEPLOY, TRANSACT},
    status, CallParams, ExecError, ExecutedBlock, Mode, NotPermitted, Permissions, ACCOUNT_PERMISSIONS,
};
use fogchain_genesis::{ChainSpec, Member};
use fogchain_node::{
    chain::{Chain, FogBlock, SealedBlock},
    replica::Replica,
    seal::seal,
};
use fogchain_storage::{ChainReader, Storage};
use fogchain_txpool::{PoolConfig, PoolError, TxPool};
use std::sync::Arc;

const CHAIN_ID: u64 = 1337;

fn key(i: u64) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap()
}

/// Admins are keys 1-3 (threshold 2, organisation 1 "ops", transact + deploy); key 4 may
/// transact but not deploy (organisation 2 "field"); key 5 is funded but unknown; key 100
/// seals blocks.
fn spec() -> Arc<ChainSpec> {
    let admins: Vec<Address> = (1..=3).map(|i| key(i).address()).collect();
    let permissions = PermissionsGenesis::new(
        admins.clone(),
        Some(2),
        vec![
            GenesisOrganisation {
                id: 1,
                name: "ops".into(),
                accounts: admins.iter().map(|a| (*a, TRANSACT | DEPLOY)).collect(),
            },
            GenesisOrganisation { id: 2, name: "field".into(), accounts: vec![(key(4).address(), TRANSACT)] },
        ],
    );
    let alloc: Vec<(Address, U256)> =
        (1..=6).map(|i| (key(i).address(), U256::from(10u128.pow(21)))).collect();
    let members =
        vec![Member { raft_id: 1, address: key(100).address(), peer_id: String::new(), p2p: String::new() }];
    Arc::new(genesis_spec(CHAIN_ID, 30_000_000, members, &alloc, None, Some(&permissions), false).unwrap())
}

struct Ledger {
    _dir: tempfile::TempDir,
    spec: Arc<ChainSpec>,
    storage: Storage,
}

impl Ledger {
    fn new(spec: &Arc<ChainSpec>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), spec).unwrap();
        Self { _dir: dir, spec: spec.clone(), storage }
    }

    /// A transaction from `k` with its next state nonce plus `ahead`.
    fn tx(&self, k: &PrivateKeySigner, ahead: u64, to: TxKind, input: Vec<u8>) -> Recovered<TxEnvelope> {
        let nonce = self.storage.account(&k.address()).unwrap().map_or(0, |a| a.nonce) + ahead;
        let mut tx = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: 5_000_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to,
            value: U256::ZERO,
            access_list: Default::default(),
            input: input.into(),
        };
        let sig = k.sign_transaction_sync(&mut tx).unwrap();
        Recovered::new_unchecked(tx.into_signed(sig).into(), k.address())
    }

    fn execute(&self, txs: Vec<Recovered<TxEnvelope>>, mode: Mode) -> Result<ExecutedBlock, ExecError> {
        let (hash, head) = self.storage.head().unwrap();
        let template = child_header(&self.spec, hash, &head, head.timestamp + 1, key(100).address());
        execute_block(&self.spec, &self.storage, &head, template, txs, None, mode)
    }

    /// Builds a block of `txs` as a leader would and makes it the head.
    fn mine(&self, txs: Vec<Recovered<TxEnvelope>>) -> ExecutedBlock {
        let out = self.execute(txs, Mode::Build { max_transactions: 100 }).unwrap();
        let hash = out.header.hash_slow();
        self.storage.write_block(&out.clone().into_block_write(hash, None)).unwrap();
        out
    }

    fn view(&self, input: Vec<u8>) -> Bytes {
        let (_, head) = self.storage.head().unwrap();
        let params = CallParams { to: Some(ACCOUNT_PERMISSIONS), input: input.into(), ..Default::default() };
        match call(&self.spec, &self.storage, &head, &params, 50_000_000, fogchain_evm::Budget::unlimited())
            .unwrap()
        {
            fogchain_evm::CallOutcome::Success { output, .. } => output,
            other => panic!("view failed: {other:?}"),
        }
    }

    fn rule(&self, sender: Address, kind: TxKind) -> Result<(), NotPermitted> {
        Permissions::new(&self.storage).unwrap().check(sender, kind).unwrap()
    }

    /// Admin `k` proposes `actions`; returns the proposal id.
    fn propose(&self, k: u64, actions: Vec<Vec<u8>>) -> U256 {
        let id = P::proposalCountCall::abi_decode_returns(&self.view(P::proposalCountCall {}.abi_encode()))
            .unwrap();
        let n = actions.len();
        let input = P::proposeCall { actions: actions.into_iter().map(Into::into).collect() }.abi_encode();
        let out = self.mine(vec![self.tx(&key(k), 0, TxKind::Call(ACCOUNT_PERMISSIONS), input)]);
        assert!(out.receipts[0].status(), "propose reverted");
        println!("gas: propose ({} actions) {}", n, out.receipts[0].cumulative_gas_used());
        id
    }

    /// Admin `k` approves proposal `id`; returns whether the proposal executed.
    fn approve(&self, k: u64, id: U256) -> bool {
        let input = P::approveCall { id }.abi_encode();
        let out = self.mine(vec![self.tx(&key(k), 0, TxKind::Call(ACCOUNT_PERMISSIONS), input)]);
        assert!(out.receipts[0].status(), "approve reverted");
        let executed = out.receipts[0]
            .logs()
            .iter()
            .any(|l| l.topics().first() == Some(&P::ProposalExecuted::SIGNATURE_HASH));
        println!("gas: approve (executed: {executed}) {}", out.receipts[0].cumulative_gas_used());
        executed
    }

    /// Mines `txs`; the reason the builder left the first one out, if it did.
    fn left_out(&self, txs: Vec<Recovered<TxEnvelope>>) -> Option<String> {
        self.mine(txs).skipped.first().map(|s| s.reason.clone())
    }
}

fn transfer_to(target: Address) -> TxKind {
    TxKind::Call(target)
}

#[test]
fn the_rule_read_from_storage_matches_the_contract_views() {
    let spec = spec();
    let l = Ledger::new(&spec);
    // A restricted target that admin 1 may call, and a suspended organisation with a member.
    let target = Address::repeat_byte(0x77);
    let id = l.propose(
        1,
        vec![
            P::setRestrictedCall { target, on: true }.abi_encode(),
            P::setCallPermissionCall { target, account: key(1).address(), allowed: true }.abi_encode(),
            P::setOrganisationCall { org: 3, name: "gone".into(), status: status::SUSPENDED }.abi_encode(),
            P::setAccountCall { account: key(6).address(), org: 3, roles: TRANSACT | DEPLOY }.abi_encode(),
            P::setAccountStatusCall { account: key(2).address(), status: status::SUSPENDED }.abi_encode(),
        ],
    );
    assert!(l.approve(3, id));
    for i in 1..=6u64 {
        let a = key(i).address();
        let transact =
            P::canTransactCall::abi_decode_returns(&l.view(P::canTransactCall { account: a }.abi_encode()))
                .unwrap();
        let deploy =
            P::canDeployCall::abi_decode_returns(&l.view(P::canDeployCall { account: a }.abi_encode()))
                .unwrap();
        let restricted =
            P::canCallCall::abi_decode_returns(&l.view(P::canCallCall { account: a, target }.abi_encode()))
                .unwrap();
        let open = P::canCallCall::abi_decode_returns(
            &l.view(P::canCallCall { account: a, target: Address::repeat_byte(1) }.abi_encode()),
        )
        .unwrap();
        assert_eq!(l.rule(a, TxKind::Call(Address::repeat_byte(1))).is_ok(), open, "key {i}: transact");
        assert_eq!(open, transact, "key {i}");
        assert_eq!(l.rule(a, TxKind::Create).is_ok(), deploy, "key {i}: deploy");
        assert_eq!(l.rule(a, TxKind::Call(target)).is_ok(), restricted, "key {i}: restricted call");
    }
    assert_eq!(l.rule(key(2).address(), TxKind::Create), Err(NotPermitted::AccountSuspended));
    assert_eq!(l.rule(key(5).address(), TxKind::Create), Err(NotPermitted::Transact));
    assert_eq!(l.rule(key(6).address(), TxKind::Create), Err(NotPermitted::OrganisationSuspended(3)));
    assert_eq!(l.rule(key(4).address(), TxKind::Create), Err(NotPermitted::Deploy));
    assert_eq!(l.rule(key(3).address(), TxKind::Call(target)), Err(NotPermitted::Call(target)));
    assert_eq!(l.rule(key(1).address(), TxKind::Call(target)), Ok(()));
}

#[test]
fn changes_need_m_of_n_admins_and_take_effect_at_the_next_block() {
    let spec = spec();
    let l = Ledger::new(&spec);
    let newcomer = key(5);
    let grant = P::setAccountCall { account: newcomer.address(), org: 2, roles: TRANSACT }.abi_encode();

    // Nobody, not even an admin, changes the contract directly.
    let direct = l.mine(vec![l.tx(&key(1), 0, transfer_to(ACCOUNT_PERMISSIONS), grant.clone())]);
    assert!(!direct.receipts[0].status(), "a direct call of a governed function succeeded");
    // A non-admin cannot propose (its transaction is not even admitted: key 4 is no admin but may
    // transact, so it reverts).
    let stranger = l.mine(vec![l.tx(
        &key(4),
        0,
        transfer_to(ACCOUNT_PERMISSIONS),
        P::proposeCall { actions: vec![grant.clone().into()] }.abi_encode(),
    )]);
    assert!(!stranger.receipts[0].status());

    // One admin of three (threshold 2) is not enough.
    let id = l.propose(1, vec![grant]);
    assert_eq!(
        l.left_out(vec![l.tx(&newcomer, 0, transfer_to(Address::repeat_byte(9)), vec![])]),
        Some("account not permitted to transact".into())
    );
    // The second approval executes it; the newcomer's transaction in that very block is still
    // judged by the parent state, and gets in from the next block on.
    let approve = l.tx(&key(2), 0, transfer_to(ACCOUNT_PERMISSIONS), P::approveCall { id }.abi_encode());
    let early = l.tx(&newcomer, 0, transfer_to(Address::repeat_byte(9)), vec![]);
    let out = l.mine(vec![approve, early.clone()]);
    assert!(out.receipts[0].status());
    assert_eq!(out.skipped.len(), 1, "the newcomer got into the block that permitted it");
    assert_eq!(l.left_out(vec![early]), None);
    // Transact-only: no deployments.
    assert_eq!(
        l.left_out(vec![l.tx(&newcomer, 0, TxKind::Create, vec![0x60, 0x00])]),
        Some("account not permitted to deploy contracts".into())
    );

    // A removed admin's approval stops counting: admin 3 approves a proposal, is removed (with
    // admins 1 and 2 approving), and the proposal still needs another approval.
    let pending = l.propose(
        3,
        vec![P::setAccountStatusCall { account: newcomer.address(), status: status::SUSPENDED }.abi_encode()],
    );
    let removal = l.propose(1, vec![P::removeAdminCall { admin: key(3).address() }.abi_encode()]);
    assert!(l.approve(2, removal));
    let count =
        P::approvalCountCall::abi_decode_returns(&l.view(P::approvalCountCall { id: pending }.abi_encode()))
            .unwrap();
    assert_eq!(count, U256::ZERO);
    // The threshold cannot exceed the admins left, nor can admins drop below it.
    let too_few = l.propose(1, vec![P::removeAdminCall { admin: key(2).address() }.abi_encode()]);
    let tx = l.tx(&key(2), 0, transfer_to(ACCOUNT_PERMISSIONS), P::approveCall { id: too_few }.abi_encode());
    let out = l.mine(vec![tx]);
    assert!(!out.receipts[0].status(), "admins dropped below the threshold");
    // Suspension, by two admins, bars the account from the next block.
    assert!(!l.approve(1, pending));
    assert!(l.approve(2, pending));
    assert_eq!(
        l.left_out(vec![l.tx(&newcomer, 0, transfer_to(Address::repeat_byte(9)), vec![])]),
        Some("account suspended".into())
    );
}

#[test]
fn a_block_with_an_unpermitted_transaction_is_invalid() {
    let spec = spec();
    let l = Ledger::new(&spec);
    let tx = l.tx(&key(5), 0, transfer_to(Address::repeat_byte(9)), vec![]);
    match l.execute(vec![tx.clone()], Mode::Validate) {
        Err(ExecError::InvalidTransaction { reason, .. }) => {
            assert_eq!(reason, "account not permitted to transact")
        }
        other => panic!("validation accepted an unpermitted transaction: {other:?}"),
    }
    let built = l.execute(vec![tx], Mode::Build { max_transactions: 10 }).unwrap();
    assert!(built.transactions.is_empty());
    assert!(built.skipped[0].permanent, "the builder keeps an unpermitted transaction in the pool");
}

#[test]
fn the_pool_refuses_what_the_rule_refuses() {
    let spec = spec();
    let l = Ledger::new(&spec);
    let pool = TxPool::new(spec.clone(), l.storage.clone(), PoolConfig::default());
    let encoded = |tx: &Recovered<TxEnvelope>| {
        use alloy_eips::Encodable2718;
        tx.inner().encode_2718_len()
    };
    let cases = [
        (l.tx(&key(5), 0, transfer_to(Address::repeat_byte(9)), vec![]), "account not permitted to transact"),
        (l.tx(&key(4), 0, TxKind::Create, vec![0x60, 0x00]), "account not permitted to deploy contracts"),
    ];
    for (tx, message) in cases {
        let len = encoded(&tx);
        match pool.add(tx.into_inner(), len) {
            Err(e @ PoolError::NotPermitted(_)) => assert_eq!(e.to_string(), message),
            other => panic!("the pool admitted or refused otherwise: {other:?}"),
        }
    }
    let ok = l.tx(&key(4), 0, transfer_to(Address::repeat_byte(9)), vec![]);
    let len = encoded(&ok);
    pool.add(ok.into_inner(), len).unwrap();
}

/// A leader that skips the check (a faulty or hostile build) gets its block committed to the Raft
/// log; every node's validation refuses it and they stay on one chain.
#[test]
fn every_node_refuses_a_block_built_without_the_check() {
    let spec = spec();
    let nodes: Vec<(tempfile::TempDir, Arc<Chain>, Replica)> = (0..3)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let storage = Storage::open(dir.path(), &spec).unwrap();
            let chain = Arc::new(Chain::new(spec.clone(), storage.clone()).unwrap());
            let pool = Arc::new(TxPool::new(spec.clone(), storage, PoolConfig::default()));
            (dir, chain.clone(), Replica::new(chain, pool))
        })
        .collect();
    let leader_store = nodes[0].1.storage();
    let l = Ledger { _dir: tempfile::tempdir().unwrap(), spec: spec.clone(), storage: leader_store.clone() };
    let tx = l.tx(&key(5), 0, transfer_to(Address::repeat_byte(9)), vec![]);
    let (hash, head) = leader_store.head().unwrap();
    let template = child_header(&spec, hash, &head, head.timestamp + 1, key(100).address());
    // The build reads state through a view that hides the contract: it executes as if the chain
    // were open (same state root otherwise).
    let hidden = HideContract(leader_store.clone());
    let executed =
        execute_block(&spec, &hidden, &head, template, [tx], None, Mode::Build { max_transactions: 10 })
            .unwrap();
    assert_eq!(executed.transactions.len(), 1, "the hostile build included the transaction");
    let mut header = executed.header.clone();
    seal(&mut header, &key(100)).unwrap();
    let body = BlockBody {
        transactions: executed.transactions.iter().map(|t| t.inner().clone()).collect(),
        ommers: vec![],
        withdrawals: header.withdrawals_root.map(|_| Default::default()),
    };
    let block = SealedBlock::new(FogBlock { header, body }).encode();
    for (_, chain, replica) in &nodes {
        use fogchain_consensus::{ApplyError, CommittedBlock, StateMachine};
        let applied = replica.apply_block(CommittedBlock { index: 2, term: 1, data: &block });
        assert!(matches!(applied, Err(ApplyError::Refused(_))), "{applied:?}");
        assert_eq!(chain.head().0, 0, "a node applied a block with an unpermitted transaction");
    }
}

/// Reads through to a store but shows no code at [`ACCOUNT_PERMISSIONS`].
struct HideContract(Storage);

impl fogchain_storage::KvRead for HideContract {
    fn get(&self, table: fogchain_storage::Table, key: &[u8]) -> fogchain_storage::Result<Option<Vec<u8>>> {
        if table == fogchain_storage::Table::Accounts && key == ACCOUNT_PERMISSIONS.as_slice() {
            return Ok(None);
        }
        self.0.get(table, key)
    }
}
