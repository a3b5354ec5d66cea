//! [`Service`]: the one owner of the service's state, the constants every part shares, and the
//! service's clock.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use guest_rt::sync::IrqMutex;
use guest_rt::timer;
use sis_sched::stats::SampleRing;
use sis_sched::{cycles_to_ns, DefaultScheduler};

use sis_engine::Session;

use super::budget::BudgetWatch;
use super::inbox::Inbox;
use super::servers::Server;
use super::session_table::SessionTable;
use super::slack::Slack;
use super::step::Job;

/// Prompt tokens run per prefill step (bounds the length of a step): the engine multiplies
/// prompts 8 tokens per weight-block unpack, so a step of 8 uses its batch whole.
pub const PREFILL_CHUNK: usize = 8;
/// Requests the inbox holds before [`Service::submit`] refuses.
pub const INBOX_CAPACITY: usize = 8;
/// Name of the server `llmctl load`/`budget` and ring jobs use.
pub const DEFAULT_SERVER: &str = "llm";
/// Period of a server created with an explicit budget and no period (`llmctl load
/// --wcet-cycles N`, `llmctl server add`): 1 s. Without a budget, `llmctl load` derives both
/// from the measured cost per token (`calibration`).
pub const DEFAULT_PERIOD_NS: u64 = 1_000_000_000;

/// The service: everything it keeps, in one place.
pub struct Service {
    /// Requests queued from any context.
    pub(super) inbox: Inbox,
    /// Servers, running jobs, the scheduler and the metrics (boot core, thread context).
    pub(super) state: IrqMutex<State>,
    /// The running step's slice, watched by the timer tick.
    pub(super) budget: BudgetWatch,
    /// Idle-time reclaiming.
    pub(super) slack: Slack,
}

/// What the scheduler loop works on; one lock, taken briefly and never while a sink or
/// the engine runs.
pub(super) struct State {
    /// Named servers.
    pub(super) servers: Vec<Server>,
    /// Admitted jobs (their engine sessions), by scheduler job id.
    pub(super) jobs: Vec<Job>,
    /// CBS servers under EDF.
    pub(super) sched: DefaultScheduler,
    /// Engine throughput and latency.
    pub(super) metrics: Metrics,
    /// What a token cost when the model was loaded (the default budget's basis).
    pub(super) cost: Option<super::calibration::TokenCost>,
    /// Conversations and their KV caches (bounds set at load).
    pub(super) sessions: SessionTable<Session<'static, 'static>>,
    /// Context of a conversation, tokens.
    pub(super) session_context: usize,
    /// KV cache bytes of one conversation.
    pub(super) session_kv_bytes: usize,
}

/// Engine figures since boot (or the last `llmctl reset`).
pub(super) struct Metrics {
    /// Decode-pass durations (ns), for per-token latency percentiles.
    pub(super) token_ns: SampleRing,
    /// Tokens generated.
    pub(super) decode_tokens: u64,
    /// Forward passes of generated tokens and their time (the rate llama.cpp calls "eval").
    pub(super) decode_passes: u64,
    pub(super) decode_ns: u64,
    pub(super) prefill_tokens: u64,
    pub(super) prefill_ns: u64,
    pub(super) steps: u64,
    /// Internal failures (engine errors, scheduler inconsistencies).
    pub(super) failures: u64,
}

impl Metrics {
    pub(super) const fn new() -> Self {
        Metrics {
            token_ns: SampleRing::new(),
            decode_tokens: 0,
            decode_passes: 0,
            decode_ns: 0,
            prefill_tokens: 0,
            prefill_ns: 0,
            steps: 0,
            failures: 0,
        }
    }
}

/// The one service.
pub static SERVICE: Service = Service {
    inbox: Inbox::new(),
    state: IrqMutex::new(State {
        servers: Vec::new(),
        jobs: Vec::new(),
        sched: DefaultScheduler::with_default_bound(),
        metrics: Metrics::new(),
        cost: None,
        sessions: SessionTable::new(0),
        session_context: 0,
        session_kv_bytes: 0,
    }),
    budget: BudgetWatch::new(),
    slack: Slack::new(),
};

impl Service {
    /// Counts an internal failure.
    pub(super) fn failed_internally(&self) {
        self.state.lock().metrics.failures += 1;
    }
}

/// Monotonic time in ns from the virtual counter.
pub fn now_ns() -> u64 {
    let f = timer::frequency().max(1);
    (u128::from(timer::counter()) * 1_000_000_000 / u128::from(f)) as u64
}

/// Timer cycles to ns, as a message on overflow.
pub(super) fn cycles_ns(cycles: u64) -> Result<u64, String> {
    cycles_to_ns(cycles, timer::frequency()).map_err(|e| format!("{e}"))
}
