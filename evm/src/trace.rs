//! geth's `debug_traceTransaction` / `debug_traceCall` tracers (struct logger, `callTracer`,
//! `prestateTracer`, `noopTracer`) and `eth_createAccessList`, with revm-inspectors.
//!
//! Tracing re-executes: the block's earlier transactions run on the parent state (kept in a
//! revm `CacheDB` over the stored state), then the traced transaction runs under the
//! inspector without being committed, so the prestate tracer can read the state before it.

use crate::{
    call::{call_cfg, call_tx_env},
    env::{block_env, cfg_env, recovered_tx_env, spec_for},
    state::DbError,
    Budget, BudgetExceeded, BudgetInspector, CallParams, ExecError, StepCapture,
};
use alloy_consensus::{transaction::Recovered, Header, TxEnvelope};
use alloy_primitives::{Address, B256, U256};
use alloy_rpc_types_eth::AccessList;
use alloy_rpc_types_trace::geth::{
    GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingOptions, GethTrace, NoopFrame,
};
use alloy_trie::KECCAK_EMPTY;
use fogchain_genesis::ChainSpec;
use fogchain_storage::{ChainReader, KvRead};
use revm::{
    bytecode::Bytecode,
    context::{result::EVMError, BlockEnv, CfgEnv, TxEnv},
    database::CacheDB,
    inspector::InspectEvm,
    state::AccountInfo,
    Context, DatabaseRef, ExecuteCommitEvm, MainBuilder, MainContext,
};
use revm_inspectors::{
    access_list::AccessListInspector,
    tracing::{StackSnapshotType, TracingInspector, TracingInspectorConfig},
};

/// Errors of tracing.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Storage or EVM failure.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The transaction (or call) is invalid in this state.
    #[error("{0}")]
    Invalid(String),
    /// Tracer options are malformed or name a tracer Fogchain does not have.
    #[error("{0}")]
    Options(String),
    /// A bound of its [`Budget`] stopped it.
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
}

/// The stored state of one block as a read-only revm database.
pub struct StoredState<'a, R: ?Sized>(pub &'a R);

impl<R: KvRead + ?Sized> DatabaseRef for StoredState<'_, R> {
    type Error = DbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        Ok(self.0.account(&address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code: None,
            ..Default::default()
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        Ok(self.0.code(&code_hash)?.map(Bytecode::new_raw).unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, DbError> {
        Ok(self.0.storage(&address, &index)?)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DbError> {
        Ok(self.0.block_hash(number)?.unwrap_or_default())
    }
}

fn evm_error<E: std::fmt::Display>(e: EVMError<DbError, E>) -> TraceError {
    match e {
        EVMError::Transaction(t) => TraceError::Invalid(t.to_string()),
        EVMError::Database(DbError(e)) => TraceError::Exec(e.into()),
        other => TraceError::Exec(ExecError::Evm(other.to_string())),
    }
}

/// Runs `tx` under the tracer `opts` names, on `db` (not committed).
fn trace_one<DB: DatabaseRef<Error = DbError>>(
    db: &mut CacheDB<DB>,
    cfg: CfgEnv,
    block: BlockEnv,
    tx: TxEnv,
    opts: &GethDebugTracingOptions,
    budget: Budget,
) -> Result<GethTrace, TraceError> {
    let options = |e: serde_json::Error| TraceError::Options(format!("invalid tracerConfig: {e}"));
    let (config, kind) = match &opts.tracer {
        None => (TracingInspectorConfig::from_geth_config(&opts.config), None),
        Some(GethDebugTracerType::BuiltInTracer(builtin)) => match builtin {
            GethDebugBuiltInTracerType::CallTracer => {
                let c = opts.tracer_config.clone().into_call_config().map_err(options)?;
                (TracingInspectorConfig::from_geth_call_config(&c), Some(builtin))
            }
            GethDebugBuiltInTracerType::PreStateTracer => {
                let c = opts.tracer_config.clone().into_pre_state_config().map_err(options)?;
                (TracingInspectorConfig::from_geth_prestate_config(&c), Some(builtin))
            }
            GethDebugBuiltInTracerType::NoopTracer => return Ok(GethTrace::NoopTracer(NoopFrame::default())),
            other => return Err(TraceError::Options(format!("tracer {other:?} is not supported"))),
        },
        Some(other) => {
            return Err(TraceError::Options(format!(
                "tracer {other:?} is not supported (no JavaScript tracers)"
            )))
        }
    };
    let mut inspector = TracingInspector::new(config);
    let mut bound = if config.record_steps {
        let stack = config.record_stack_snapshots != StackSnapshotType::None;
        BudgetInspector::with_trace(budget, StepCapture { stack, memory: config.record_memory_snapshots })
    } else {
        BudgetInspector::new(budget)
    };
    let result = {
        let mut evm = Context::mainnet()
            .with_db(&mut *db)
            .with_cfg(cfg)
            .with_block(block)
            .build_mainnet_with_inspector((&mut inspector, &mut bound));
        evm.inspect_tx(tx)
    };
    bound.check()?;
    let result = result.map_err(evm_error)?;
    let gas_used = result.result.tx_gas_used();
    let output = result.result.output().cloned().unwrap_or_default();
    let builder = inspector.into_geth_builder();
    Ok(match kind {
        None => GethTrace::Default(builder.geth_traces(gas_used, output, opts.config)),
        Some(GethDebugBuiltInTracerType::CallTracer) => {
            let c = opts.tracer_config.clone().into_call_config().map_err(options)?;
            GethTrace::CallTracer(builder.geth_call_traces(c, gas_used))
        }
        Some(_) => {
            let c = opts.tracer_config.clone().into_pre_state_config().map_err(options)?;
            let frame =
                builder.geth_prestate_traces(&result, &c, &*db).map_err(|DbError(e)| ExecError::from(e))?;
            GethTrace::PreStateTracer(frame)
        }
    })
}

/// Traces transaction `index` of the block `header`, whose parent's state `reader` holds;
/// `txs` are the block's transactions.
pub fn trace_transaction<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    header: &Header,
    txs: &[Recovered<TxEnvelope>],
    index: usize,
    opts: &GethDebugTracingOptions,
    budget: Budget,
) -> Result<GethTrace, TraceError> {
    let spec_id = spec_for(chain, header);
    let mut db = CacheDB::new(StoredState(reader));
    {
        let mut evm = Context::mainnet()
            .with_db(&mut db)
            .with_cfg(cfg_env(chain, spec_id))
            .with_block(block_env(chain, header, spec_id))
            .build_mainnet();
        for tx in &txs[..index] {
            evm.transact_commit(recovered_tx_env(tx)).map_err(evm_error)?;
        }
    }
    let tx =
        txs.get(index).ok_or_else(|| TraceError::Invalid(format!("no transaction {index} in the block")))?;
    trace_one(
        &mut db,
        cfg_env(chain, spec_id),
        block_env(chain, header, spec_id),
        recovered_tx_env(tx),
        opts,
        budget,
    )
}

/// Traces a call on the state of `header` (held by `reader`), as `eth_call` would run it.
pub fn trace_call<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    header: &Header,
    params: &CallParams,
    gas_cap: u64,
    opts: &GethDebugTracingOptions,
    budget: Budget,
) -> Result<GethTrace, TraceError> {
    let spec_id = spec_for(chain, header);
    let gas = params.gas.map_or(gas_cap, |g| g.min(gas_cap));
    let mut db = CacheDB::new(StoredState(reader));
    trace_one(
        &mut db,
        call_cfg(chain, spec_id, params),
        block_env(chain, header, spec_id),
        call_tx_env(params, gas, chain.chain_id()),
        opts,
        budget,
    )
}

/// `eth_createAccessList`: the addresses and slots a call touches (without sender, recipient
/// and precompiles), and the gas it uses with that list (geth's result shape).
pub fn create_access_list<R: KvRead + ?Sized>(
    chain: &ChainSpec,
    reader: &R,
    header: &Header,
    params: &CallParams,
    gas_cap: u64,
    budget: Budget,
) -> Result<(AccessList, u64, Option<String>), TraceError> {
    let spec_id = spec_for(chain, header);
    let gas = params.gas.map_or(gas_cap, |g| g.min(gas_cap));
    let mut params = params.clone();
    let mut list = params.access_list.clone().unwrap_or_default();
    // As geth: repeat until the list stops changing (a longer list changes gas, not paths).
    for _ in 0..8 {
        params.access_list = Some(list.clone());
        let mut inspector = AccessListInspector::new(list.clone());
        let mut bound = BudgetInspector::new(budget);
        let mut db = CacheDB::new(StoredState(reader));
        let result = {
            let mut evm = Context::mainnet()
                .with_db(&mut db)
                .with_cfg(call_cfg(chain, spec_id, &params))
                .with_block(block_env(chain, header, spec_id))
                .build_mainnet_with_inspector((&mut inspector, &mut bound));
            evm.inspect_tx(call_tx_env(&params, gas, chain.chain_id()))
        };
        bound.check()?;
        let result = result.map_err(evm_error)?;
        let found = inspector.into_access_list();
        if found == list {
            let error = (!result.result.is_success()).then(|| match &result.result {
                revm::context::result::ExecutionResult::Revert { .. } => "execution reverted".to_string(),
                other => format!("{other:?}"),
            });
            return Ok((found, result.result.tx_gas_used(), error));
        }
        list = found;
    }
    Err(TraceError::Invalid("access list did not settle".into()))
}
