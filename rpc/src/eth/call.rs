//! EVM work on the blocking pool: `eth_call`, `eth_estimateGas`, `eth_createAccessList` and
//! the geth tracers (`debug_traceTransaction`, `debug_traceCall`).

use super::{not_found, DebugTraceApiServer, EthRpc};
use crate::{RpcError, RpcResult};
use alloy_consensus::{transaction::Recovered, TxEnvelope};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Bytes, B256, U256, U64};
use alloy_rpc_types_eth::{AccessListResult, TransactionRequest};
use alloy_rpc_types_trace::geth::{GethDebugTracingCallOptions, GethDebugTracingOptions, GethTrace};
use fogchain_evm::{CallOutcome, CallParams};
use fogchain_storage::{ChainReader, StateAt};
use jsonrpsee::core::async_trait;

impl EthRpc {
    pub(crate) fn call_params(request: TransactionRequest) -> RpcResult<CallParams> {
        let to = match request.to {
            Some(alloy_primitives::TxKind::Call(a)) => Some(a),
            _ => None,
        };
        if request.input.input.is_some()
            && request.input.data.is_some()
            && request.input.input != request.input.data
        {
            return Err(RpcError::InvalidParams(
                "both \"data\" and \"input\" are set and not equal. Please use \"input\" to pass transaction call data".into(),
            ));
        }
        Ok(CallParams {
            from: request.from,
            to,
            gas: request.gas,
            gas_price: request.gas_price,
            max_fee_per_gas: request.max_fee_per_gas,
            max_priority_fee_per_gas: request.max_priority_fee_per_gas,
            value: request.value,
            input: request.input.into_input().unwrap_or_default(),
            nonce: request.nonce,
            access_list: request.access_list,
        })
    }

    pub(crate) async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<U64> {
        let params = Self::call_params(request)?;
        // As Hardhat and Anvil: estimate for the next block unless a block is given.
        let block = Some(block.unwrap_or(BlockId::Number(BlockNumberOrTag::Pending)));
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                Ok(U64::from(fogchain_evm::estimate_gas(
                    &this.inner.chain,
                    state,
                    header,
                    &params,
                    cap,
                    this.budget(),
                )?))
            })
        })
        .await
    }

    pub(crate) async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes> {
        let params = Self::call_params(request)?;
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                match fogchain_evm::call(&this.inner.chain, state, header, &params, cap, this.budget())? {
                    CallOutcome::Success { output, .. } => Ok(output),
                    CallOutcome::Revert { output, .. } => Err(RpcError::Reverted(output)),
                    CallOutcome::Halt { reason, gas_used } => {
                        Err(RpcError::Server(halt_message(&reason, gas_used)))
                    }
                }
            })
        })
        .await
    }

    pub(crate) async fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<AccessListResult> {
        let params = Self::call_params(request)?;
        let block = Some(block.unwrap_or(BlockId::Number(BlockNumberOrTag::Pending)));
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                let (access_list, gas_used, error) = fogchain_evm::create_access_list(
                    &this.inner.chain,
                    state,
                    header,
                    &params,
                    cap,
                    this.budget(),
                )
                .map_err(trace_error)?;
                Ok(AccessListResult { access_list, gas_used: U256::from(gas_used), error })
            })
        })
        .await
    }
}

/// geth's message for a call that halted.
fn halt_message(reason: &fogchain_evm::HaltReason, gas_used: u64) -> String {
    match reason {
        fogchain_evm::HaltReason::OutOfGas(_) => {
            format!("out of gas: gas required exceeds allowance ({gas_used})")
        }
        other => format!("execution halted: {other:?}"),
    }
}

fn trace_error(e: fogchain_evm::TraceError) -> RpcError {
    match e {
        fogchain_evm::TraceError::Options(m) => RpcError::InvalidParams(m),
        fogchain_evm::TraceError::Invalid(m) => RpcError::Server(m),
        fogchain_evm::TraceError::Budget(e) => RpcError::Server(e.to_string()),
        fogchain_evm::TraceError::Exec(e) => RpcError::Internal(e.to_string()),
    }
}

#[async_trait]
impl DebugTraceApiServer for EthRpc {
    async fn trace_transaction(
        &self,
        hash: B256,
        opts: Option<GethDebugTracingOptions>,
    ) -> RpcResult<GethTrace> {
        let opts = opts.unwrap_or_default();
        self.blocking(move |this| {
            let Some((_, header, body, index)) = this.located_transaction(hash)? else {
                return Err(RpcError::Server(format!("transaction {hash} not found")));
            };
            let snapshot = this.inner.storage.snapshot();
            let parent = snapshot.header(&header.parent_hash)?.ok_or_else(not_found)?;
            let state = StateAt::new(&snapshot, parent.state_root);
            let txs: Vec<Recovered<TxEnvelope>> = body
                .transactions
                .into_iter()
                .zip(body.senders)
                .map(|(tx, sender)| Recovered::new_unchecked(tx, sender))
                .collect();
            fogchain_evm::trace_transaction(
                &this.inner.chain,
                &state,
                &header,
                &txs,
                index,
                &opts,
                this.budget(),
            )
            .map_err(trace_error)
        })
        .await
    }

    async fn trace_call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        opts: Option<GethDebugTracingCallOptions>,
    ) -> RpcResult<GethTrace> {
        let params = Self::call_params(request)?;
        let opts = opts.unwrap_or_default();
        if opts.state_overrides.is_some() || opts.block_overrides.is_some() {
            return Err(RpcError::InvalidParams("state and block overrides are not supported".into()));
        }
        self.blocking(move |this| {
            let cap = this.inner.config.gas_cap;
            this.with_state(block, |state, header| {
                fogchain_evm::trace_call(
                    &this.inner.chain,
                    state,
                    header,
                    &params,
                    cap,
                    &opts.tracing_options,
                    this.budget(),
                )
                .map_err(trace_error)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::halt_message;
    use fogchain_evm::{HaltReason, OutOfGasError};

    #[test]
    fn halts_are_worded_as_geth_by_their_typed_reason() {
        for oog in [OutOfGasError::Basic, OutOfGasError::Memory, OutOfGasError::Precompile] {
            assert_eq!(
                halt_message(&HaltReason::OutOfGas(oog), 30_000),
                "out of gas: gas required exceeds allowance (30000)"
            );
        }
        assert_eq!(halt_message(&HaltReason::OpcodeNotFound, 1), "execution halted: OpcodeNotFound");
    }
}
