//! Executing a block: the same code builds a block on the leader and validates it everywhere.

use crate::{block_env, cfg_env, recovered_tx_env, DbError, ExecError, Forks, Permissions, StateDb};
use alloy_consensus::{
    proofs::calculate_receipt_root, transaction::Recovered, Eip658Value, Header, Receipt, ReceiptEnvelope,
    ReceiptWithBloom, Transaction, TxEnvelope, TxType,
};
use alloy_eips::{
    eip2935::{HISTORY_SERVE_WINDOW, HISTORY_STORAGE_ADDRESS},
    eip4788::SYSTEM_ADDRESS,
    eip4895::{Withdrawal, Withdrawals},
    eip6110::DEPOSIT_REQUEST_TYPE,
    eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    eip7685::Requests,
    Encodable2718,
};
use alloy_evm::{
    block::{state_changes::post_block_withdrawals_balance_increments, BlockValidationError, SystemCaller},
    eth::eip6110::parse_deposits_from_receipts,
    EthEvmFactory, Evm, EvmEnv, EvmFactory,
};
use alloy_primitives::{Address, Bloom, B256, U256};
use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY};
use fogchain_genesis::{ChainSpec, RuleSet};
use fogchain_storage::{BlockWrite, KvRead, StateChanges, StoredBody};
use revm::{
    context::result::{EVMError, InvalidTransaction},
    database::DatabaseCommitExt,
    primitives::hardfork::SpecId,
};

/// How [`execute_block`] treats transactions that cannot be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Building a new block: invalid transactions are left out (and reported), and the block
    /// stops growing at the gas limit or at `max_transactions`.
    Build {
        /// Upper bound on the transactions in the block.
        max_transactions: usize,
    },
    /// Validating a received block: any invalid transaction makes the block invalid.
    Validate,
}

/// A transaction [`Mode::Build`] left out of the block.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// Transaction hash.
    pub hash: B256,
    /// Why, in geth's words where geth has them.
    pub reason: String,
    /// True when the transaction can never become valid on this chain (drop it from the pool);
    /// false when it may fit a later block (block full, nonce gap, balance may grow).
    pub permanent: bool,
}

/// The result of executing a block.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    /// The full header (roots, bloom, gas used); `extra_data` as given in the template.
    pub header: Header,
    /// Included transactions with their senders.
    pub transactions: Vec<Recovered<TxEnvelope>>,
    /// One receipt per included transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// State writes and new trie nodes.
    pub state: StateChanges,
    /// Transactions left out ([`Mode::Build`] only).
    pub skipped: Vec<Skipped>,
    /// The withdrawals credited (Ethereum's rules from Shanghai on; `None` otherwise).
    pub withdrawals: Option<Withdrawals>,
}

impl ExecutedBlock {
    /// Everything to persist for this block (whose hash is `hash`), recording the consensus log
    /// index `applied_index` with it.
    pub fn into_block_write(self, hash: B256, applied_index: Option<u64>) -> BlockWrite {
        let senders = self.transactions.iter().map(|t| t.signer()).collect();
        let transactions = self.transactions.into_iter().map(|t| t.into_inner()).collect();
        BlockWrite {
            hash,
            header: self.header,
            body: StoredBody { transactions, senders, withdrawals: self.withdrawals },
            receipts: self.receipts,
            state: self.state,
            applied_index,
        }
    }
}

/// Whether a revm validation error can never be cured by later blocks.
fn is_permanent(err: &InvalidTransaction) -> bool {
    !matches!(
        err,
        InvalidTransaction::NonceTooHigh { .. }
            | InvalidTransaction::LackOfFundForMaxFee { .. }
            | InvalidTransaction::CallerGasLimitMoreThanBlock
            | InvalidTransaction::GasPriceLessThanBasefee
    )
}

/// Describes a revm validation error in geth's words.
pub fn describe_invalid(err: &InvalidTransaction) -> String {
    match err {
        InvalidTransaction::NonceTooHigh { tx, state } => {
            format!("nonce too high: address nonce {state}, tx nonce {tx}")
        }
        InvalidTransaction::NonceTooLow { tx, state } => {
            format!("nonce too low: next nonce {state}, tx nonce {tx}")
        }
        InvalidTransaction::LackOfFundForMaxFee { fee, balance } => {
            format!("insufficient funds for gas * price + value: balance {balance}, tx cost {fee}")
        }
        InvalidTransaction::CallerGasLimitMoreThanBlock => "exceeds block gas limit".into(),
        InvalidTransaction::GasPriceLessThanBasefee => "max fee per gas less than block base fee".into(),
        InvalidTransaction::PriorityFeeGreaterThanMaxFee => {
            "max priority fee per gas higher than max fee per gas".into()
        }
        InvalidTransaction::CallGasCostMoreThanGasLimit { .. } => "intrinsic gas too low".into(),
        InvalidTransaction::GasFloorMoreThanGasLimit { .. } => {
            "insufficient gas for floor data gas cost".into()
        }
        InvalidTransaction::InvalidChainId => "invalid chain id for signer".into(),
        InvalidTransaction::RejectCallerWithCode => "sender not an eoa".into(),
        other => other.to_string(),
    }
}

/// Executes `transactions` on top of the state in `reader` (the state of `parent`), in a block
/// whose environment is taken from `template` (number, timestamp, beneficiary, gas limit, base
/// fee, mix hash, extra data, excess blob gas, parent beacon root). Returns the completed header
/// and everything to persist.
///
/// The steps, and what the chain's [`RuleSet`] decides in each:
/// 1. pre-block system calls: Ethereum's EIP-4788 beacon root and EIP-2935 history calls; a
///    Fogchain network only the EIP-2935 one, when the history contract is in its state;
/// 2. the transactions with revm (Fogchain: the permissioning rule first, no blob
///    transactions; Ethereum: blob gas within the block maximum, EIP-4844 / EIP-7691);
/// 3. Ethereum only: `withdrawals` credited (EIP-4895) and, from Prague, the requests
///    (EIP-6110 deposits from the receipts, EIP-7002 and EIP-7251 system calls) whose
///    EIP-7685 hash goes into the header; a Fogchain block has none (empty requests hash).
///
/// Errors: [`ExecError::InvalidTransaction`] ([`Mode::Validate`] only), [`ExecError::System`]
/// when a system call or deposit log makes the block invalid, storage and revm faults.
pub fn execute_block<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    parent: &Header,
    template: Header,
    transactions: impl IntoIterator<Item = Recovered<TxEnvelope>>,
    withdrawals: Option<&[Withdrawal]>,
    mode: Mode,
) -> Result<ExecutedBlock, ExecError> {
    let fork = chain.fork_at(template.number, template.timestamp);
    let spec_id = crate::spec_id(fork);
    let ethereum = chain.rules == RuleSet::Ethereum;
    let cancun = spec_id.is_enabled_in(SpecId::CANCUN);
    let forks = Forks(chain);
    let mut system = SystemCaller::new(forks);
    // Account permissioning as of the parent state (see `permissions`); Fogchain's rule.
    let mut permissions = if ethereum { None } else { Some(Permissions::new(reader)?) };
    let mut db = StateDb::new(reader, spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON));
    let template = Header {
        excess_blob_gas: cancun.then(|| template.excess_blob_gas.unwrap_or_default()),
        parent_beacon_block_root: cancun.then(|| template.parent_beacon_block_root.unwrap_or_default()),
        ..template
    };
    let env = EvmEnv::new(cfg_env(chain, spec_id), block_env(chain, &template, spec_id));
    let mut evm = EthEvmFactory::default().create_evm(&mut db, env);

    if ethereum {
        system.apply_pre_execution_changes(&template, &mut evm).map_err(ExecError::from_block)?;
    } else if spec_id.is_enabled_in(SpecId::PRAGUE) && has_code(evm.db_mut(), HISTORY_STORAGE_ADDRESS)? {
        warm_history_call(evm.db_mut(), &template)?;
        system
            .apply_blockhashes_contract_call(template.parent_hash, &mut evm)
            .map_err(ExecError::from_block)?;
    }

    let max = match mode {
        Mode::Build { max_transactions } => max_transactions,
        Mode::Validate => usize::MAX,
    };
    let max_blob_gas = chain.blob_params(fork).map_or(0, |p| p.max_blob_gas_per_block());
    let mut included = Vec::new();
    let mut receipts = Vec::new();
    let mut skipped = Vec::new();
    let mut gas_used = 0u64;
    let mut blob_gas_used = 0u64;
    let mut logs_bloom = Bloom::ZERO;
    for (index, tx) in transactions.into_iter().enumerate() {
        let hash = *tx.inner().tx_hash();
        let skip = |reason: String, permanent: bool| -> Result<Skipped, ExecError> {
            match mode {
                Mode::Build { .. } => Ok(Skipped { hash, reason, permanent }),
                Mode::Validate => Err(ExecError::InvalidTransaction { index, hash, reason }),
            }
        };
        if included.len() >= max {
            break;
        }
        let blob_gas = tx.inner().blob_gas_used().unwrap_or_default();
        if tx.inner().is_eip4844() && !ethereum {
            skipped.push(skip("transaction type not supported".into(), true)?);
            continue;
        }
        if blob_gas > max_blob_gas - blob_gas_used {
            let permanent = blob_gas > max_blob_gas;
            skipped.push(skip(
                format!(
                    "blob gas used {blob_gas} exceeds the block's remaining {}",
                    max_blob_gas - blob_gas_used
                ),
                permanent,
            )?);
            continue;
        }
        if let Some(permissions) = permissions.as_mut() {
            if let Err(refusal) = permissions.check(tx.signer(), tx.kind())? {
                skipped.push(skip(refusal.to_string(), true)?);
                continue;
            }
        }
        if tx.gas_limit() > template.gas_limit - gas_used {
            let permanent = tx.gas_limit() > template.gas_limit;
            skipped.push(skip("exceeds block gas limit".into(), permanent)?);
            continue;
        }
        let result = match evm.transact_commit(recovered_tx_env(&tx)) {
            Ok(result) => result,
            Err(EVMError::Transaction(err)) => {
                skipped.push(skip(describe_invalid(&err), is_permanent(&err))?);
                continue;
            }
            Err(EVMError::Database(DbError(e))) => return Err(e.into()),
            Err(other) => return Err(ExecError::Evm(other.to_string())),
        };
        gas_used += result.tx_gas_used();
        blob_gas_used += blob_gas;
        let receipt = Receipt {
            status: Eip658Value::Eip658(result.is_success()),
            cumulative_gas_used: gas_used,
            logs: result.into_logs(),
        };
        let receipt = ReceiptWithBloom::from(receipt);
        logs_bloom |= receipt.logs_bloom;
        receipts.push(receipt_envelope(tx.inner().tx_type(), receipt));
        included.push(tx);
    }

    let mut requests = Requests::default();
    if ethereum && spec_id.is_enabled_in(SpecId::PRAGUE) {
        // EIP-7002 / EIP-7251: a block whose request contract has no code is invalid
        // (execution-specs' `SYSTEM_CONTRACT_EMPTY`); alloy-evm's call would succeed on it.
        if !has_code(evm.db_mut(), WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS)? {
            let message = format!("no code at {WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS}");
            return Err(ExecError::System(BlockValidationError::WithdrawalRequestsContractCall { message }));
        }
        if !has_code(evm.db_mut(), CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS)? {
            let message = format!("no code at {CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS}");
            return Err(ExecError::System(BlockValidationError::ConsolidationRequestsContractCall {
                message,
            }));
        }
        let deposits =
            parse_deposits_from_receipts(forks, &receipts).map_err(|e| ExecError::from_block(e.into()))?;
        if !deposits.is_empty() {
            requests.push_request_with_type(DEPOSIT_REQUEST_TYPE, deposits);
        }
        system.append_post_execution_changes(&mut evm, &mut requests).map_err(ExecError::from_block)?;
    }
    let withdrawals = if ethereum { withdrawals } else { None };
    if let Some(withdrawals) = withdrawals {
        let credits = post_block_withdrawals_balance_increments(forks, template.timestamp, withdrawals);
        evm.db_mut().increment_balances(credits).map_err(|DbError(e)| ExecError::Storage(e))?;
    }
    drop(evm);
    let (state_root, state) = db.finish(parent.state_root)?;

    let envelopes: Vec<&TxEnvelope> = included.iter().map(|t| t.inner()).collect();
    let shanghai = spec_id.is_enabled_in(SpecId::SHANGHAI);
    let withdrawals_root =
        withdrawals.map_or(EMPTY_ROOT_HASH, alloy_consensus::proofs::calculate_withdrawals_root);
    let header = Header {
        parent_hash: template.parent_hash,
        state_root,
        transactions_root: transactions_root(&envelopes),
        receipts_root: calculate_receipt_root(&receipts),
        logs_bloom,
        gas_used,
        withdrawals_root: shanghai.then_some(withdrawals_root),
        blob_gas_used: cancun.then_some(blob_gas_used),
        requests_hash: spec_id.is_enabled_in(SpecId::PRAGUE).then(|| requests.requests_hash()),
        ..template
    };
    let withdrawals =
        (ethereum && shanghai).then(|| Withdrawals::new(withdrawals.unwrap_or_default().to_vec()));
    Ok(ExecutedBlock { header, transactions: included, receipts, state, skipped, withdrawals })
}

/// Reads everything the EIP-2935 system call of a Fogchain block touches (the system account,
/// the contract's code and the slot it writes, the beneficiary) into `db`'s cache first. alloy-evm
/// reports a failed system call, a storage error included, as an invalid block; read here, a
/// storage error is a fault of this node (fail-stop) and never a reason to skip a block that
/// every other node applies.
fn warm_history_call<R: KvRead + ?Sized>(
    db: &mut StateDb<'_, R>,
    template: &Header,
) -> Result<(), ExecError> {
    use revm::Database;
    let storage = |DbError(e)| ExecError::Storage(e);
    db.basic(SYSTEM_ADDRESS).map_err(storage)?;
    db.basic(template.beneficiary).map_err(storage)?;
    if let Some(info) = db.basic(HISTORY_STORAGE_ADDRESS).map_err(storage)? {
        db.code_by_hash(info.code_hash).map_err(storage)?;
    }
    let slot = (template.number.saturating_sub(1)) % HISTORY_SERVE_WINDOW as u64;
    db.storage(HISTORY_STORAGE_ADDRESS, U256::from(slot)).map_err(storage)?;
    Ok(())
}

/// Whether `address` holds code in the state `db` executes on.
fn has_code<R: KvRead + ?Sized>(db: &mut StateDb<'_, R>, address: Address) -> Result<bool, ExecError> {
    let info = db.account_info(address).map_err(|DbError(e)| ExecError::Storage(e))?;
    Ok(info.is_some_and(|a| a.code_hash != KECCAK_EMPTY))
}

fn transactions_root(txs: &[&TxEnvelope]) -> B256 {
    if txs.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    alloy_trie::root::ordered_trie_root_with_encoder(txs, |tx, buf| tx.encode_2718(buf))
}

/// Wraps a receipt in the envelope of its transaction type (EIP-2718).
pub fn receipt_envelope(ty: TxType, receipt: ReceiptWithBloom) -> ReceiptEnvelope {
    match ty {
        TxType::Legacy => ReceiptEnvelope::Legacy(receipt),
        TxType::Eip2930 => ReceiptEnvelope::Eip2930(receipt),
        TxType::Eip1559 => ReceiptEnvelope::Eip1559(receipt),
        TxType::Eip4844 => ReceiptEnvelope::Eip4844(receipt),
        TxType::Eip7702 => ReceiptEnvelope::Eip7702(receipt),
    }
}

/// Re-executes a received block and checks that its header commits to exactly the result:
/// state root, transactions root, receipts root, logs bloom, gas used, and every other field
/// execution computes (withdrawals root, blob gas used, requests hash).
pub fn validate_block<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    parent: &Header,
    header: &Header,
    transactions: Vec<Recovered<TxEnvelope>>,
    withdrawals: Option<&[Withdrawal]>,
) -> Result<ExecutedBlock, ExecError> {
    let executed =
        execute_block(chain, reader, parent, header.clone(), transactions, withdrawals, Mode::Validate)?;
    let got = &executed.header;
    let mismatch = |field: &'static str, expected: String, got: String| {
        Err(ExecError::Mismatch { field, expected, got })
    };
    let roots = [
        ("stateRoot", header.state_root, got.state_root),
        ("transactionsRoot", header.transactions_root, got.transactions_root),
        ("receiptsRoot", header.receipts_root, got.receipts_root),
    ];
    for (field, expected, got) in roots {
        if expected != got {
            return mismatch(field, expected.to_string(), got.to_string());
        }
    }
    if header.gas_used != got.gas_used {
        return mismatch("gasUsed", header.gas_used.to_string(), got.gas_used.to_string());
    }
    if header.logs_bloom != got.logs_bloom {
        return mismatch("logsBloom", "header".into(), "executed".into());
    }
    let optional = [
        ("withdrawalsRoot", header.withdrawals_root, got.withdrawals_root),
        ("requestsHash", header.requests_hash, got.requests_hash),
    ];
    for (field, expected, got) in optional {
        if expected != got {
            return mismatch(field, format!("{expected:?}"), format!("{got:?}"));
        }
    }
    if header.blob_gas_used != got.blob_gas_used {
        return mismatch(
            "blobGasUsed",
            format!("{:?}", header.blob_gas_used),
            format!("{:?}", got.blob_gas_used),
        );
    }
    if header != got {
        return mismatch("header", format!("{header:?}"), format!("{got:?}"));
    }
    Ok(executed)
}
