//! Executing a block: the same code builds a block on the leader and validates it everywhere.

use crate::{block_env, cfg_env, recovered_tx_env, spec_for, DbError, ExecError, Permissions, StateDb};
use alloy_consensus::{
    proofs::calculate_receipt_root, transaction::Recovered, Eip658Value, Header, Receipt, ReceiptEnvelope,
    ReceiptWithBloom, Transaction, TxEnvelope, TxType,
};
use alloy_eips::{eip7685::EMPTY_REQUESTS_HASH, Encodable2718};
use alloy_primitives::{Bloom, B256};
use alloy_trie::EMPTY_ROOT_HASH;
use fogchain_genesis::ChainSpec;
use fogchain_storage::{BlockWrite, KvRead, StateChanges, StoredBody};
use revm::{
    context::result::{EVMError, InvalidTransaction},
    primitives::hardfork::SpecId,
    Context, ExecuteCommitEvm, MainBuilder, MainContext,
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
            body: StoredBody { transactions, senders },
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
/// fee, mix hash, extra data). Returns the completed header and everything to persist.
pub fn execute_block<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    parent: &Header,
    template: Header,
    transactions: impl IntoIterator<Item = Recovered<TxEnvelope>>,
    mode: Mode,
) -> Result<ExecutedBlock, ExecError> {
    let spec_id = spec_for(chain, &template);
    // Account permissioning as of the parent state (see `permissions`).
    let mut permissions = Permissions::new(reader)?;
    let mut db = StateDb::new(reader, spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON));
    let mut evm = Context::mainnet()
        .with_db(&mut db)
        .with_cfg(cfg_env(chain, spec_id))
        .with_block(block_env(&template, spec_id))
        .build_mainnet();

    let max = match mode {
        Mode::Build { max_transactions } => max_transactions,
        Mode::Validate => usize::MAX,
    };
    let mut included = Vec::new();
    let mut receipts = Vec::new();
    let mut skipped = Vec::new();
    let mut gas_used = 0u64;
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
        if tx.inner().is_eip4844() {
            skipped.push(skip("transaction type not supported".into(), true)?);
            continue;
        }
        if let Err(refusal) = permissions.check(tx.signer(), tx.kind())? {
            skipped.push(skip(refusal.to_string(), true)?);
            continue;
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
    drop(evm);
    let (state_root, state) = db.finish(parent.state_root)?;

    let envelopes: Vec<&TxEnvelope> = included.iter().map(|t| t.inner()).collect();
    let header = Header {
        parent_hash: template.parent_hash,
        state_root,
        transactions_root: transactions_root(&envelopes),
        receipts_root: calculate_receipt_root(&receipts),
        logs_bloom,
        gas_used,
        withdrawals_root: spec_id.is_enabled_in(SpecId::SHANGHAI).then_some(EMPTY_ROOT_HASH),
        blob_gas_used: spec_id.is_enabled_in(SpecId::CANCUN).then_some(0),
        excess_blob_gas: spec_id.is_enabled_in(SpecId::CANCUN).then_some(0),
        parent_beacon_block_root: spec_id.is_enabled_in(SpecId::CANCUN).then_some(B256::ZERO),
        requests_hash: spec_id.is_enabled_in(SpecId::PRAGUE).then_some(EMPTY_REQUESTS_HASH),
        ..template
    };
    Ok(ExecutedBlock { header, transactions: included, receipts, state, skipped })
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
/// state root, transactions root, receipts root, logs bloom and gas used.
pub fn validate_block<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    parent: &Header,
    header: &Header,
    transactions: Vec<Recovered<TxEnvelope>>,
) -> Result<ExecutedBlock, ExecError> {
    let executed = execute_block(chain, reader, parent, header.clone(), transactions, Mode::Validate)?;
    let got = &executed.header;
    let checks = [
        ("stateRoot", header.state_root, got.state_root),
        ("transactionsRoot", header.transactions_root, got.transactions_root),
        ("receiptsRoot", header.receipts_root, got.receipts_root),
    ];
    for (field, expected, got) in checks {
        if expected != got {
            return Err(ExecError::Mismatch { field, expected: expected.to_string(), got: got.to_string() });
        }
    }
    if header.gas_used != got.gas_used {
        return Err(ExecError::Mismatch {
            field: "gasUsed",
            expected: header.gas_used.to_string(),
            got: got.gas_used.to_string(),
        });
    }
    if header.logs_bloom != got.logs_bloom {
        return Err(ExecError::Mismatch {
            field: "logsBloom",
            expected: "header".into(),
            got: "executed".into(),
        });
    }
    if header != got {
        return Err(ExecError::Mismatch {
            field: "header",
            expected: format!("{header:?}"),
            got: format!("{got:?}"),
        });
    }
    Ok(executed)
}
