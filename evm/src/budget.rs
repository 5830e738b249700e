//! Work bounds of one RPC execution (`eth_call`, `eth_estimateGas`, `eth_createAccessList`,
//! `debug_trace*`): a wall-clock deadline, an opcode step budget and, for the struct logger, a
//! cap on the bytes its recorded steps take.
//!
//! The gas cap alone does not bound the work: a loop of cheap opcodes runs millions of steps,
//! and the struct logger copies the stack (and memory, if asked) at every one of them. geth
//! stops such a call with `evm.Cancel()` when `--rpc.evmtimeout` fires; here a
//! [`BudgetInspector`] runs beside the tracer and halts the interpreter from `step_end` once a
//! bound is passed. A halted frame returns to its parent, which the inspector halts at its next
//! step, so the whole call unwinds at once; the caller then answers with
//! [`BudgetExceeded`] instead of the partial result.

use revm::{
    interpreter::{interpreter::EthInterpreter, interpreter_types::MemoryTr, InstructionResult, Interpreter},
    Inspector,
};
use std::time::{Duration, Instant};

/// How often (in steps) the deadline is read: `Instant::now` costs ~20 ns, a step ~5 ns.
const CLOCK_EVERY: u64 = 4096;
/// Bytes a recorded struct-logger step takes besides its stack and memory copies (the
/// `CallTraceStep` record and its JSON), an estimate.
const STEP_RECORD_BYTES: usize = 256;

/// The bounds of one execution.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// When it started.
    pub started: Instant,
    /// Wall-clock limit (geth's `--rpc.evmtimeout`; `[rpc] call-timeout-secs`).
    pub timeout: Duration,
    /// Most interpreter steps, over all frames (`[rpc] evm-step-limit`).
    pub max_steps: u64,
    /// Most bytes the struct logger may record (`[rpc] trace-max-bytes`).
    pub max_trace_bytes: usize,
}

impl Budget {
    /// A budget that starts now.
    pub fn new(timeout: Duration, max_steps: u64, max_trace_bytes: usize) -> Self {
        Self { started: Instant::now(), timeout, max_steps, max_trace_bytes }
    }

    /// Generous bounds for tests and internal callers: 60 s, 1e9 steps, 1 GiB of trace.
    pub fn unlimited() -> Self {
        Self::new(Duration::from_secs(60), 1_000_000_000, 1 << 30)
    }
}

/// Why an execution was stopped (answered with JSON-RPC -32000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetExceeded {
    /// The deadline passed (geth's wording).
    #[error("execution aborted (timeout = {}s)", .0.as_secs())]
    Timeout(Duration),
    /// The step budget ran out.
    #[error("execution aborted (step limit = {0})")]
    Steps(u64),
    /// The struct logger would record more than allowed.
    #[error(
        "execution aborted (trace limit = {0} bytes): trace fewer steps, or without memory/stack capture"
    )]
    TraceBytes(usize),
}

/// What the struct logger copies at each step, for [`BudgetInspector::with_trace`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StepCapture {
    /// The full stack is copied.
    pub stack: bool,
    /// The memory is copied.
    pub memory: bool,
}

/// Halts execution once its [`Budget`] is spent; see the module docs.
#[derive(Debug)]
pub struct BudgetInspector {
    budget: Budget,
    steps: u64,
    trace: Option<StepCapture>,
    trace_bytes: usize,
    exceeded: Option<BudgetExceeded>,
}

impl BudgetInspector {
    /// Bounds an execution without a struct logger.
    pub fn new(budget: Budget) -> Self {
        Self { budget, steps: 0, trace: None, trace_bytes: 0, exceeded: None }
    }

    /// Bounds an execution whose struct logger records `capture` at every step.
    pub fn with_trace(budget: Budget, capture: StepCapture) -> Self {
        Self { trace: Some(capture), ..Self::new(budget) }
    }

    /// `Err` when a bound stopped the execution: its result is partial and must not be used.
    pub fn check(&self) -> Result<(), BudgetExceeded> {
        self.exceeded.clone().map_or(Ok(()), Err)
    }

    fn over(&mut self, interp: &Interpreter<EthInterpreter>) -> Option<BudgetExceeded> {
        self.steps += 1;
        if self.steps > self.budget.max_steps {
            return Some(BudgetExceeded::Steps(self.budget.max_steps));
        }
        if let Some(capture) = self.trace {
            let mut bytes = STEP_RECORD_BYTES;
            if capture.stack {
                bytes += interp.stack.len() * 32;
            }
            if capture.memory {
                bytes += interp.memory.size();
            }
            self.trace_bytes = self.trace_bytes.saturating_add(bytes);
            if self.trace_bytes > self.budget.max_trace_bytes {
                return Some(BudgetExceeded::TraceBytes(self.budget.max_trace_bytes));
            }
        }
        if self.steps.is_multiple_of(CLOCK_EVERY) && self.budget.started.elapsed() > self.budget.timeout {
            return Some(BudgetExceeded::Timeout(self.budget.timeout));
        }
        None
    }
}

impl<CTX> Inspector<CTX, EthInterpreter> for BudgetInspector {
    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        if self.exceeded.is_none() {
            self.exceeded = self.over(interp);
        }
        if self.exceeded.is_some() {
            interp.halt(InstructionResult::OutOfGas);
        }
    }
}
