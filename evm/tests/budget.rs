//! RPC executions stop at their budget: steps, deadline, struct-logger bytes.

use alloy_genesis::Genesis;
use alloy_primitives::{Address, Bytes};
use alloy_rpc_types_trace::geth::GethDebugTracingOptions;
use fogchain_evm::{Budget, BudgetExceeded, CallError, CallParams, TraceError};
use fogchain_genesis::{prague_chain_config, ChainSpec};
use fogchain_storage::{ChainReader, Storage};
use std::time::{Duration, Instant};

/// JUMPDEST PUSH1 0 JUMP: an endless loop of 3 steps and 12 gas per round.
const LOOP: [u8; 4] = [0x5b, 0x60, 0x00, 0x56];

fn chain() -> (tempfile::TempDir, ChainSpec, Storage) {
    let genesis = Genesis { config: prague_chain_config(1337), gas_limit: 30_000_000, ..Default::default() };
    let spec = ChainSpec::new(genesis, Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), &spec).unwrap();
    (dir, spec, storage)
}

/// A call that runs `code` as init code.
fn run_code(code: Vec<u8>) -> CallParams {
    CallParams { from: Some(Address::repeat_byte(9)), input: Bytes::from(code), ..Default::default() }
}

#[test]
fn an_endless_loop_stops_at_the_step_budget_and_at_the_deadline() {
    let (_dir, spec, storage) = chain();
    let (_, head) = storage.head().unwrap();
    let params = run_code(LOOP.to_vec());
    let steps = Budget::new(Duration::from_secs(60), 10_000, 1 << 30);
    let err = fogchain_evm::call(&spec, &storage, &head, &params, 50_000_000, steps).unwrap_err();
    assert!(matches!(err, CallError::Budget(BudgetExceeded::Steps(10_000))), "{err}");
    assert_eq!(err.to_string(), "execution aborted (step limit = 10000)");

    let started = Instant::now();
    let deadline = Budget::new(Duration::ZERO, u64::MAX, 1 << 30);
    let err = fogchain_evm::estimate_gas(&spec, &storage, &head, &params, 50_000_000, deadline).unwrap_err();
    assert_eq!(err.to_string(), "execution aborted (timeout = 0s)");
    assert!(started.elapsed() < Duration::from_secs(30), "stopped early, not at the gas cap");

    // Within its budget the same loop ends by running out of gas, as before.
    let outcome = fogchain_evm::call(&spec, &storage, &head, &params, 100_000, Budget::unlimited()).unwrap();
    assert!(matches!(outcome, fogchain_evm::CallOutcome::Halt { .. }));
}

#[test]
fn the_struct_logger_stops_at_its_byte_budget() {
    let (_dir, spec, storage) = chain();
    let (_, head) = storage.head().unwrap();
    // 1000 × PUSH0 (a deep stack every step copies), then the endless loop at offset 1000.
    let mut code = vec![0x5f; 1000];
    code.extend([0x5b, 0x61, 0x03, 0xe8, 0x56]);
    let params = run_code(code);
    let budget = Budget::new(Duration::from_secs(60), u64::MAX, 4 << 20);
    let opts = GethDebugTracingOptions::default();
    let err =
        fogchain_evm::trace_call(&spec, &storage, &head, &params, 50_000_000, &opts, budget).unwrap_err();
    assert!(matches!(err, TraceError::Budget(BudgetExceeded::TraceBytes(_))), "{err}");
    // Without the stack copies the same budget holds many more steps, and the call tracer
    // records no steps at all: it runs into the step budget instead.
    let opts = GethDebugTracingOptions {
        tracer: Some(alloy_rpc_types_trace::geth::GethDebugBuiltInTracerType::CallTracer.into()),
        ..Default::default()
    };
    let budget = Budget::new(Duration::from_secs(60), 100_000, 4 << 20);
    let err =
        fogchain_evm::trace_call(&spec, &storage, &head, &params, 50_000_000, &opts, budget).unwrap_err();
    assert!(matches!(err, TraceError::Budget(BudgetExceeded::Steps(100_000))), "{err}");
}
