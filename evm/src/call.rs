//! `eth_call` and `eth_estimateGas` against a stored state, as geth runs them.

use crate::{
    block_env, cfg_env, describe_invalid, spec_for, Budget, BudgetExceeded, BudgetInspector, DbError,
    ExecError, StateDb,
};
use alloy_consensus::Header;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, Log, TxKind, U256};
use fogchain_genesis::ChainSpec;
use fogchain_storage::KvRead;
use revm::{
    context::{
        result::{EVMError, ExecutionResult, HaltReason},
        TxEnv,
    },
    inspector::InspectEvm,
    primitives::hardfork::SpecId,
    Context, MainBuilder, MainContext,
};

/// geth's default cap on the gas of one `eth_call` / `eth_estimateGas` (`--rpc.gascap`).
pub const DEFAULT_RPC_GAS_CAP: u64 = 50_000_000;

/// Gas of a plain value transfer.
const TX_GAS: u64 = 21_000;

/// The message of an `eth_call`: the fields of a transaction request.
#[derive(Debug, Clone, Default)]
pub struct CallParams {
    /// Sender (zero address when absent, as geth).
    pub from: Option<Address>,
    /// Callee; `None` runs the input as init code.
    pub to: Option<Address>,
    /// Gas limit; the RPC gas cap when absent.
    pub gas: Option<u64>,
    /// Legacy gas price in wei.
    pub gas_price: Option<u128>,
    /// EIP-1559 fee cap in wei.
    pub max_fee_per_gas: Option<u128>,
    /// EIP-1559 tip cap in wei.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Value in wei.
    pub value: Option<U256>,
    /// Calldata or init code.
    pub input: Bytes,
    /// Nonce; the nonce check is skipped when absent.
    pub nonce: Option<u64>,
    /// EIP-2930 access list.
    pub access_list: Option<AccessList>,
}

/// What a call did.
#[derive(Debug, Clone)]
pub enum CallOutcome {
    /// Returned normally.
    Success {
        /// Return data (or deployed code for a create).
        output: Bytes,
        /// Gas used after refunds.
        gas_used: u64,
        /// Logs it would emit.
        logs: Vec<Log>,
    },
    /// Hit REVERT.
    Revert {
        /// Revert data (ABI-encoded `Error(string)` / `Panic(uint256)` / custom error).
        output: Bytes,
        /// Gas used.
        gas_used: u64,
    },
    /// Halted exceptionally (out of gas, invalid opcode, ...).
    Halt {
        /// revm's halt reason.
        reason: HaltReason,
        /// Gas used (the whole limit).
        gas_used: u64,
    },
}

/// Why a call could not run.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The message is invalid against the state (geth wording, JSON-RPC -32000).
    #[error("{0}")]
    Invalid(String),
    /// The call reverted (estimateGas only; `eth_call` returns [`CallOutcome::Revert`]).
    #[error("execution reverted")]
    Reverted {
        /// Revert data.
        output: Bytes,
    },
    /// No gas limit up to the allowance lets the call succeed.
    #[error("gas required exceeds allowance ({0})")]
    GasExceedsAllowance(u64),
    /// A bound of its [`Budget`] stopped it.
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    /// Storage or EVM failure.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// The EVM settings of a call, as geth's DoCall: the message is not bound by the block gas
/// limit, the sender may be a contract, the nonce is not checked unless given, and a call that
/// names no gas price pays no base fee.
pub(crate) fn call_cfg(chain: &ChainSpec, spec_id: SpecId, params: &CallParams) -> revm::context::CfgEnv {
    let mut cfg = cfg_env(chain, spec_id);
    cfg.disable_block_gas_limit = true;
    cfg.disable_eip3607 = true;
    cfg.disable_nonce_check = params.nonce.is_none();
    let priced = params.gas_price.unwrap_or_default() > 0 || params.max_fee_per_gas.unwrap_or_default() > 0;
    cfg.disable_base_fee = !priced;
    cfg
}

pub(crate) fn call_tx_env(params: &CallParams, gas: u64, chain_id: u64) -> TxEnv {
    let eip1559 = params.max_fee_per_gas.is_some() || params.max_priority_fee_per_gas.is_some();
    let (tx_type, gas_price, priority) = if eip1559 {
        let max_fee = params.max_fee_per_gas.unwrap_or_default();
        (2, max_fee, Some(params.max_priority_fee_per_gas.unwrap_or_default().min(max_fee)))
    } else if params.access_list.is_some() {
        (1, params.gas_price.unwrap_or_default(), None)
    } else {
        (0, params.gas_price.unwrap_or_default(), None)
    };
    TxEnv {
        tx_type,
        caller: params.from.unwrap_or_default(),
        gas_limit: gas,
        gas_price,
        kind: params.to.map_or(TxKind::Create, TxKind::Call),
        value: params.value.unwrap_or_default(),
        data: params.input.clone(),
        nonce: params.nonce.unwrap_or_default(),
        // Typed transactions carry the chain id (revm refuses them without); a call is always
        // for this chain, as in geth.
        chain_id: (tx_type != 0).then_some(chain_id),
        access_list: params.access_list.clone().unwrap_or_default(),
        gas_priority_fee: priority,
        ..Default::default()
    }
}

fn run<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    header: &Header,
    params: &CallParams,
    gas: u64,
    budget: Budget,
) -> Result<CallOutcome, CallError> {
    let spec_id = spec_for(chain, header);
    let mut db = StateDb::new(reader, spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON));
    let cfg = call_cfg(chain, spec_id, params);
    let mut inspector = BudgetInspector::new(budget);
    let mut evm = Context::mainnet()
        .with_db(&mut db)
        .with_cfg(cfg)
        .with_block(block_env(chain, header, spec_id))
        .build_mainnet_with_inspector(&mut inspector);
    let outcome = evm.inspect_tx(call_tx_env(params, gas, chain.chain_id()));
    drop(evm);
    inspector.check()?;
    let result = match outcome {
        Ok(r) => r.result,
        Err(EVMError::Transaction(e)) => return Err(CallError::Invalid(describe_invalid(&e))),
        Err(EVMError::Database(DbError(e))) => return Err(ExecError::from(e).into()),
        Err(e) => return Err(ExecError::Evm(e.to_string()).into()),
    };
    let gas_used = result.tx_gas_used();
    Ok(match result {
        ExecutionResult::Success { output, logs, .. } => {
            CallOutcome::Success { output: output.into_data(), gas_used, logs }
        }
        ExecutionResult::Revert { output, .. } => CallOutcome::Revert { output, gas_used },
        ExecutionResult::Halt { reason, .. } => CallOutcome::Halt { reason, gas_used },
    })
}

/// Runs a call against the state of `header` (whose state `reader` holds), with at most
/// `gas_cap` gas, within `budget`. Nothing is persisted.
pub fn call<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    header: &Header,
    params: &CallParams,
    gas_cap: u64,
    budget: Budget,
) -> Result<CallOutcome, CallError> {
    let gas = params.gas.map_or(gas_cap, |g| g.min(gas_cap));
    run(chain, reader, header, params, gas, budget)
}

/// Estimates the gas a transaction needs, with geth's algorithm: run at the allowance, then
/// binary-search down to within 1.5% (after an optimistic first guess of `used * 64/63`).
/// Every run is bounded by `budget` (its deadline covers them all).
pub fn estimate_gas<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    header: &Header,
    params: &CallParams,
    gas_cap: u64,
    budget: Budget,
) -> Result<u64, CallError> {
    let mut hi = params.gas.unwrap_or(header.gas_limit).min(gas_cap);
    // With a fee set, the sender's balance bounds the gas it can buy.
    let fee = params.max_fee_per_gas.or(params.gas_price).unwrap_or_default();
    if fee > 0 {
        let mut db = StateDb::new(reader, true);
        let balance = db
            .account_info(params.from.unwrap_or_default())
            .map_err(|DbError(e)| ExecError::from(e))?
            .map(|a| a.balance)
            .unwrap_or_default();
        let available = balance.saturating_sub(params.value.unwrap_or_default());
        let allowance = available / U256::from(fee);
        if allowance < U256::from(hi) {
            hi = allowance.to::<u64>();
        }
    }
    let at = |gas: u64| run(chain, reader, header, params, gas, budget);
    // As geth: a plain value transfer to an account without code costs 21,000 if a run at
    // exactly that succeeds (the access list or other fields could make it cost more).
    if let (true, Some(to)) = (params.input.is_empty(), params.to) {
        let mut db = StateDb::new(reader, true);
        let code_hash = db.account_info(to).map_err(|DbError(e)| ExecError::from(e))?.map(|a| a.code_hash);
        if code_hash.is_none_or(|h| h == alloy_trie::KECCAK_EMPTY) && hi >= TX_GAS {
            if let Ok(CallOutcome::Success { .. }) = at(TX_GAS) {
                return Ok(TX_GAS);
            }
        }
    }
    let used = match at(hi)? {
        CallOutcome::Success { gas_used, .. } => gas_used,
        CallOutcome::Revert { output, .. } => return Err(CallError::Reverted { output }),
        CallOutcome::Halt { .. } => return Err(CallError::GasExceedsAllowance(hi)),
    };
    let succeeds = |gas: u64| -> Result<bool, CallError> {
        match at(gas) {
            Ok(CallOutcome::Success { .. }) => Ok(true),
            Ok(_) => Ok(false),
            // Too little gas for the intrinsic cost is a failure at this limit, not an error.
            Err(CallError::Invalid(_)) => Ok(false),
            Err(e) => Err(e),
        }
    };
    let mut lo = used.saturating_sub(1);
    let optimistic = (used + 2_300) * 64 / 63;
    if optimistic < hi {
        if succeeds(optimistic)? {
            hi = optimistic;
        } else {
            lo = optimistic;
        }
    }
    while lo + 1 < hi {
        if (hi - lo) as f64 / hi as f64 <= 0.015 {
            break;
        }
        let mid = (hi + lo) / 2;
        if succeeds(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}
