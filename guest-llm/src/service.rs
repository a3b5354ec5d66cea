//! The deterministic LLM service: inference jobs under constant-bandwidth servers dispatched
//! by EDF (`sis-sched`), executed in bounded steps (a prefill chunk or one token) by the
//! scheduler loop on the boot core, with audit records for every operation.
//!
//! Entry points:
//! - [`submit`]: queue an inference request with a [`ReplySink`] that gets its tokens and its
//!   end. Callable from any context, interrupt handlers included (no allocation, IRQ-safe
//!   lock); the shell, the background sources and the ring all use it, so every job goes
//!   through the same inbox and the same admission.
//! - [`poll`]: one unit of work (admit queued requests, release periodic jobs, run one step of
//!   the job EDF picks). The shell loop calls it whenever there is no input; a shell command
//!   waiting for its own job calls [`run_until`], which keeps serving every server.
//! - Configuration ([`load`], [`budget`], [`add_server`], ...) runs in thread context on the
//!   boot core (shell commands, or the ring handler's thread-context hook).
//!
//! Design notes and the exact semantics are in `docs/llm-service.md`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use guest_rt::sync::IrqMutex;
use guest_rt::{smp, sync, timer};
use shared_ring::audit::{AuditEntry, Op, STATUS_DEADLINE_MISS, STATUS_OK, STATUS_REJECT};
use sis_engine::{SamplerConfig, Session, SessionConfig, StopReason, Utf8Stream};
use sis_platform::BootInfo;
use sis_sched::stats::SampleRing;
use sis_sched::{
    cycles_to_ns, ns_to_cycles, Decision, DefaultScheduler, JobId, JobSpec, ServerConfig, ServerId,
    ServerStats,
};

use crate::model::{self, Loaded};
use crate::parallel::POOL;
use crate::service_args::MAX_NAME;
use crate::service_audit;

/// Prompt tokens run per prefill step (bounds the length of a step).
pub const PREFILL_CHUNK: usize = 4;
/// Requests the inbox holds before [`submit`] refuses.
pub const INBOX_CAPACITY: usize = 8;
/// Name of the server `llmctl load`/`budget` and ring jobs use.
pub const DEFAULT_SERVER: &str = "llm";
/// Period of the default server until `llmctl budget` sets one (1 s).
pub const DEFAULT_PERIOD_NS: u64 = 1_000_000_000;
/// Budget of the default server when `llmctl load` gets no `--wcet-cycles`: half the default
/// period, so other servers can still be admitted under the 85% bound.
pub const DEFAULT_BUDGET_NS: u64 = DEFAULT_PERIOD_NS / 2;

/// Which audit op a job is recorded under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `llminfer`, ring inference (op 3).
    Infer,
    /// `llmstream`, `llmgraph`, streamed ring inference (op 4).
    Stream,
}

impl JobKind {
    fn op(self) -> Op {
        match self {
            JobKind::Infer => Op::Infer,
            JobKind::Stream => Op::Stream,
        }
    }
}

/// One inference request.
#[derive(Clone, Debug)]
pub struct JobRequest {
    /// The caller's id for the job (echoed to the sink; the ring's request id).
    pub tag: u64,
    /// Server to run on; empty = [`DEFAULT_SERVER`].
    pub server: heapless::String<MAX_NAME>,
    /// Prompt text.
    pub prompt: heapless::String<{ shared_ring::message::MAX_PROMPT }>,
    /// Tokens to generate at most (>= 1).
    pub max_tokens: u32,
    /// Temperature in thousandths (0 = greedy).
    pub temp_milli: u32,
    /// Sampling seed.
    pub seed: u64,
    /// Wrap the prompt in the chat template.
    pub chat: bool,
    /// Audit op.
    pub kind: JobKind,
}

/// The end of a completed job.
#[derive(Clone, Debug)]
pub struct Report {
    /// Scheduler job id.
    pub job: u64,
    /// Tokens generated.
    pub tokens: u32,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Submission to completion, ns.
    pub response_ns: u64,
    /// CPU time charged, ns.
    pub consumed_ns: u64,
    /// Steps run.
    pub steps: u32,
    /// Time spent in prefill steps, ns.
    pub prefill_ns: u64,
    /// Forward passes of generated tokens (every token but the first, which is sampled from the
    /// prefill's logits) and the time they took, ns.
    pub decode_passes: u32,
    /// See `decode_passes`.
    pub decode_ns: u64,
    /// Whether it finished after its deadline.
    pub missed: bool,
    /// Finish minus deadline when missed, ns.
    pub lateness_ns: u64,
    /// Why generation stopped.
    pub stop: &'static str,
    /// Text still held back by the UTF-8 decoder (normally empty).
    pub tail: String,
}

/// Why a job did not run to completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// No model loaded.
    NoModel,
    /// The request is invalid (unknown server, prompt too long for the context, ...).
    BadRequest(String),
    /// Admission refused it (quota, full queue).
    Rejected(String),
    /// Cancelled.
    Cancelled,
    /// The engine failed.
    Internal(String),
}

impl core::fmt::Display for JobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JobError::NoModel => f.write_str("no model loaded (run 'llmctl load' first)"),
            JobError::BadRequest(m) => f.write_str(m),
            JobError::Rejected(m) => write!(f, "rejected: {m}"),
            JobError::Cancelled => f.write_str("cancelled"),
            JobError::Internal(m) => write!(f, "engine error: {m}"),
        }
    }
}

/// Receives what a job produces. Called from the scheduler loop (thread context, boot core),
/// with no service lock held.
pub trait ReplySink: Sync {
    /// The job was admitted as scheduler job `job` with a prompt of `prompt_tokens`.
    fn accepted(&self, tag: u64, job: u64, prompt_tokens: u32) {
        let _ = (tag, job, prompt_tokens);
    }
    /// One generated token and its text (may be empty while a UTF-8 sequence is incomplete).
    fn token(&self, tag: u64, id: u32, text: &str);
    /// The job completed.
    fn finished(&self, tag: u64, report: &Report);
    /// The job was refused or failed.
    fn failed(&self, tag: u64, error: &JobError);
}

/// Why [`submit`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The inbox is full (counted); try again after the loop has drained it.
    InboxFull,
}

struct Pending {
    req: JobRequest,
    sink: &'static dyn ReplySink,
}

static INBOX: IrqMutex<heapless::Deque<Pending, INBOX_CAPACITY>> =
    IrqMutex::new(heapless::Deque::new());
static INBOX_FULL: AtomicU64 = AtomicU64::new(0);

/// Queues a request; the scheduler loop admits it (or reports the refusal to `sink`).
pub fn submit(req: JobRequest, sink: &'static dyn ReplySink) -> Result<(), SubmitError> {
    INBOX.lock().push_back(Pending { req, sink }).map_err(|_| {
        INBOX_FULL.fetch_add(1, Ordering::Relaxed);
        SubmitError::InboxFull
    })
}

/// A job being executed.
struct Job {
    id: JobId,
    server: ServerId,
    tag: u64,
    kind: JobKind,
    sink: &'static dyn ReplySink,
    session: Session<'static, 'static>,
    loaded: &'static Loaded,
    prev: Option<u32>,
    utf8: Utf8Stream,
    prompt_tokens: u32,
    max_tokens: u32,
    prefill_ns: u64,
    decode_passes: u32,
    decode_ns: u64,
}

/// A background source releasing one job every `every_ns` on a server (tag = server id).
struct Periodic {
    prompt: heapless::String<{ shared_ring::message::MAX_PROMPT }>,
    max_tokens: u32,
    every_ns: u64,
    total: u32,
    released: u32,
    next_at_ns: u64,
}

/// A named server.
struct Server {
    name: heapless::String<MAX_NAME>,
    id: ServerId,
    wcet_cycles: u64,
    period_ns: u64,
    max_tokens: u32,
    periodic: Option<Periodic>,
    /// Background jobs finished / failed.
    bg_done: u32,
    bg_failed: u32,
}

/// Service state (boot core, thread context).
struct State {
    servers: Vec<Server>,
    jobs: Vec<Job>,
    /// Decode-pass durations (ns), for per-token latency percentiles.
    token_ns: SampleRing,
    /// Tokens generated.
    decode_tokens: u64,
    /// Forward passes of generated tokens and their time (the rate llama.cpp calls "eval").
    decode_passes: u64,
    decode_ns: u64,
    prefill_tokens: u64,
    prefill_ns: u64,
    steps: u64,
    failures: u64,
}

static STATE: IrqMutex<State> = IrqMutex::new(State {
    servers: Vec::new(),
    jobs: Vec::new(),
    token_ns: SampleRing::new(),
    decode_tokens: 0,
    decode_passes: 0,
    decode_ns: 0,
    prefill_tokens: 0,
    prefill_ns: 0,
    steps: 0,
    failures: 0,
});
static SCHED: IrqMutex<DefaultScheduler> = IrqMutex::new(DefaultScheduler::with_default_bound());

/// Counter value at which the running step's slice ends (0 = no step running).
static SLICE_END: AtomicU64 = AtomicU64::new(0);
/// Steps during which the timer saw the slice end (budget exhausted mid-step).
static SLICE_EXPIRED: AtomicU64 = AtomicU64::new(0);
static SLICE_FLAGGED: AtomicU64 = AtomicU64::new(0);
/// Whether throttled servers may use idle time (see [`set_slack`]).
static SLACK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);
/// Steps run in idle time, and their ns.
static SLACK_STEPS: AtomicU64 = AtomicU64::new(0);
static SLACK_NS: AtomicU64 = AtomicU64::new(0);

/// Idle-time reclaiming: when no server may run (EDF has nothing eligible) but throttled
/// servers have queued work, the loop runs one step of the throttled head job with the
/// earliest deadline without charging its budget (the CPU would otherwise idle). A server
/// arriving meanwhile waits for at most that one step, the same blocking any step causes.
/// Off: strict hard CBS, a throttled job waits for its replenishment.
pub fn set_slack(on: bool) {
    SLACK.store(on, Ordering::Release);
}

/// Whether idle-time reclaiming is on.
pub fn slack() -> bool {
    SLACK.load(Ordering::Acquire)
}

/// Core running the scheduler loop.
static LOOP_CORE: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Thread-context hook run by the loop (for the ring service), 0 = none.
static POLL_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Installs a function the scheduler loop calls in thread context on every pass (the ring
/// service drains requests there); `None` removes it.
pub fn set_poll_hook(hook: Option<fn()>) {
    POLL_HOOK.store(hook.map_or(0, |h| h as usize), Ordering::Release);
}

/// Virtual-timer tick on every core: on the loop's core, notices a step overrunning its slice
/// (the budget ran out while a non-preemptible step was executing). The overrun itself is
/// charged to the server when the step ends (CBS rule 4: the server is throttled and pays the
/// debt from its next budgets), so other servers keep their reservations.
fn tick(core: usize) {
    if core != LOOP_CORE.load(Ordering::Relaxed) {
        return;
    }
    let end = SLICE_END.load(Ordering::Acquire);
    if end != 0 && timer::counter() >= end && SLICE_FLAGGED.swap(1, Ordering::AcqRel) == 0 {
        SLICE_EXPIRED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Boot-time setup: the tick hook, on the calling (boot) core.
pub fn init() {
    LOOP_CORE.store(smp::core_id(), Ordering::Release);
    timer::set_tick_hook(Some(tick));
}

/// Monotonic time in ns from the virtual counter.
pub fn now_ns() -> u64 {
    let f = timer::frequency().max(1);
    (u128::from(timer::counter()) * 1_000_000_000 / u128::from(f)) as u64
}

fn cycles_ns(cycles: u64) -> Result<u64, String> {
    cycles_to_ns(cycles, timer::frequency()).map_err(|e| format!("{e}"))
}

fn reject(entry: AuditEntry) {
    service_audit::record(AuditEntry {
        status: STATUS_REJECT,
        ..entry
    });
}

/// Settings of a server as the shell shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// WCET (budget) in timer cycles.
    pub wcet_cycles: u64,
    /// Period in ns.
    pub period_ns: u64,
    /// Token quota per period (0 = unlimited).
    pub max_tokens: u32,
}

fn find_server<'a>(st: &'a mut State, name: &str) -> Option<&'a mut Server> {
    st.servers.iter_mut().find(|s| s.name == name)
}

/// Settings of server `name`.
pub fn server_settings(name: &str) -> Option<ServerSettings> {
    let mut st = STATE.lock();
    find_server(&mut st, name).map(|s| ServerSettings {
        wcet_cycles: s.wcet_cycles,
        period_ns: s.period_ns,
        max_tokens: s.max_tokens,
    })
}

/// Admits a new server or reconfigures an existing one (audited as op 2, budget).
pub fn configure_server(name: &str, s: ServerSettings) -> Result<(), String> {
    let entry = AuditEntry {
        op: Op::Budget as u16,
        wcet_cycles: s.wcet_cycles,
        period_ns: s.period_ns,
        tokens: s.max_tokens,
        ..AuditEntry::default()
    };
    let res = configure_inner(name, s);
    match &res {
        Ok(()) => service_audit::record(AuditEntry {
            status: STATUS_OK,
            ..entry
        }),
        Err(_) => reject(entry),
    }
    res
}

fn configure_inner(name: &str, s: ServerSettings) -> Result<(), String> {
    let budget_ns = cycles_ns(s.wcet_cycles)?;
    let cfg = ServerConfig::new(budget_ns, s.period_ns, s.max_tokens);
    cfg.validate().map_err(|e| format!("{e}"))?;
    let now = now_ns();
    let mut st = STATE.lock();
    let mut sched = SCHED.lock();
    if let Some(srv) = find_server(&mut st, name) {
        sched
            .reconfigure(srv.id, cfg, now)
            .map_err(|e| format!("{e}"))?;
        srv.wcet_cycles = s.wcet_cycles;
        srv.period_ns = s.period_ns;
        srv.max_tokens = s.max_tokens;
        return Ok(());
    }
    let id = sched.add_server(cfg, now).map_err(|e| format!("{e}"))?;
    st.servers.push(Server {
        name: heapless::String::try_from(name).map_err(|_| String::from("server name too long"))?,
        id,
        wcet_cycles: s.wcet_cycles,
        period_ns: s.period_ns,
        max_tokens: s.max_tokens,
        periodic: None,
        bg_done: 0,
        bg_failed: 0,
    });
    Ok(())
}

/// Removes server `name` (refused while it has jobs or a background source).
pub fn remove_server(name: &str) -> Result<(), String> {
    if name == DEFAULT_SERVER {
        return Err(format!("the '{DEFAULT_SERVER}' server cannot be removed"));
    }
    let now = now_ns();
    let mut st = STATE.lock();
    let Some(pos) = st.servers.iter().position(|s| s.name == name) else {
        return Err(format!("no server '{name}'"));
    };
    if st.servers[pos]
        .periodic
        .as_ref()
        .is_some_and(|p| p.released < p.total)
    {
        return Err(format!(
            "server '{name}' still has a background source running"
        ));
    }
    SCHED
        .lock()
        .remove_server(st.servers[pos].id, now)
        .map_err(|e| format!("{e}"))?;
    st.servers.remove(pos);
    Ok(())
}

/// Loads the model (see [`model::load`]) and sets up the default server: with `wcet_cycles`
/// its budget, otherwise [`DEFAULT_BUDGET_NS`] for a new server. Audited as op 1 (load).
pub fn load(info: &BootInfo, wcet_cycles: Option<u64>, out: &mut dyn Write) -> Result<(), String> {
    let current = server_settings(DEFAULT_SERVER);
    let wcet = match (wcet_cycles, current) {
        (Some(w), _) => w,
        (None, Some(c)) => c.wcet_cycles,
        (None, None) => ns_to_cycles(DEFAULT_BUDGET_NS, timer::frequency()).unwrap_or(0),
    };
    let period = current.map_or(DEFAULT_PERIOD_NS, |c| c.period_ns);
    let entry = AuditEntry {
        op: Op::Load as u16,
        wcet_cycles: wcet,
        period_ns: period,
        ..AuditEntry::default()
    };
    let res = model::load(info, out).and_then(|_| {
        let settings = ServerSettings {
            wcet_cycles: wcet,
            period_ns: period,
            max_tokens: current.map_or(0, |c| c.max_tokens),
        };
        if current == Some(settings) {
            return Ok(());
        }
        configure_inner(DEFAULT_SERVER, settings)
            .map_err(|e| format!("server '{DEFAULT_SERVER}': {e}"))
    });
    match &res {
        Ok(()) => service_audit::record(AuditEntry {
            status: STATUS_OK,
            ..entry
        }),
        Err(_) => reject(entry),
    }
    res
}

/// Starts a background source on server `name`: `count` jobs of `max_tokens`, one every
/// `every_ns`, the first one now. Their ends are counted in `llmctl status`.
pub fn start_periodic(
    name: &str,
    prompt: &str,
    max_tokens: u32,
    every_ns: u64,
    count: u32,
) -> Result<(), String> {
    if every_ns == 0 || count == 0 {
        return Err("--every-ns and --count must be at least 1".into());
    }
    let prompt = heapless::String::try_from(prompt).map_err(|_| String::from("prompt too long"))?;
    let now = now_ns();
    let mut st = STATE.lock();
    let Some(srv) = find_server(&mut st, name) else {
        return Err(format!(
            "no server '{name}' (add it with 'llmctl server add')"
        ));
    };
    if srv.periodic.as_ref().is_some_and(|p| p.released < p.total) {
        return Err(format!(
            "server '{name}' already has a background source running"
        ));
    }
    srv.periodic = Some(Periodic {
        prompt,
        max_tokens,
        every_ns,
        total: count,
        released: 0,
        next_at_ns: now,
    });
    srv.bg_done = 0;
    srv.bg_failed = 0;
    Ok(())
}

/// Counts background jobs (shown by `llmctl status`; nothing is printed, so the shell's
/// output is never interleaved with background work).
struct BgSink;
static BG_SINK: BgSink = BgSink;

impl ReplySink for BgSink {
    fn token(&self, _tag: u64, _id: u32, _text: &str) {}
    fn finished(&self, tag: u64, _r: &Report) {
        bg_count(tag, true);
    }
    fn failed(&self, tag: u64, _e: &JobError) {
        bg_count(tag, false);
    }
}

/// Counts a background job's end on the server whose id is `tag`.
fn bg_count(tag: u64, ok: bool) {
    let mut st = STATE.lock();
    if let Some(s) = st.servers.iter_mut().find(|s| u64::from(s.id.0) == tag) {
        if ok {
            s.bg_done += 1;
        } else {
            s.bg_failed += 1;
        }
    }
}

fn release_periodic(now: u64) {
    let mut due: heapless::Vec<JobRequest, 8> = heapless::Vec::new();
    {
        let mut st = STATE.lock();
        for s in st.servers.iter_mut() {
            let Some(p) = s.periodic.as_mut() else {
                continue;
            };
            if p.released < p.total && now >= p.next_at_ns && !due.is_full() {
                p.released += 1;
                p.next_at_ns = p.next_at_ns.saturating_add(p.every_ns).max(now);
                let _ = due.push(JobRequest {
                    tag: u64::from(s.id.0),
                    server: s.name.clone(),
                    prompt: p.prompt.clone(),
                    max_tokens: p.max_tokens,
                    temp_milli: 0,
                    seed: 0,
                    chat: false,
                    kind: JobKind::Infer,
                });
            }
        }
    }
    for r in due {
        let tag = r.tag;
        if submit(r, &BG_SINK).is_err() {
            BG_SINK.failed(tag, &JobError::Rejected("service inbox full".into()));
        }
    }
}

/// Admits one queued request (or reports why not).
fn admit(p: Pending, now: u64) {
    let Pending { req, sink } = p;
    let entry = AuditEntry {
        op: req.kind.op() as u16,
        ..AuditEntry::default()
    };
    let fail = |e: JobError, entry: AuditEntry| {
        reject(entry);
        sink.failed(req.tag, &e);
    };
    let Some(loaded) = model::get() else {
        return fail(JobError::NoModel, entry);
    };
    let server_name = if req.server.is_empty() {
        DEFAULT_SERVER
    } else {
        req.server.as_str()
    };
    let Some(settings) = server_settings(server_name) else {
        return fail(
            JobError::BadRequest(format!("no server '{server_name}'")),
            entry,
        );
    };
    let entry = AuditEntry {
        wcet_cycles: settings.wcet_cycles,
        period_ns: settings.period_ns,
        tokens: 0,
        ..entry
    };
    // ChatML markers go in by token id: text the user typed is only ever text, so an
    // `<|im_end|>` inside a prompt cannot close the turn (the same encoding as `llm-run --chat`).
    let tokens = if req.chat {
        match loaded.tokenizer.encode_chatml(None, &req.prompt) {
            Ok(t) => t,
            Err(e) => return fail(JobError::BadRequest(format!("--chat: {e}")), entry),
        }
    } else {
        loaded.tokenizer.encode_prompt(&req.prompt)
    };
    let entry = AuditEntry {
        prompt_len: tokens.len() as u32,
        ..entry
    };
    if tokens.is_empty() {
        return fail(
            JobError::BadRequest("the prompt encodes to no tokens".into()),
            entry,
        );
    }
    let ctx = loaded.model.config.max_seq_len;
    let need = tokens.len() + req.max_tokens as usize;
    if need > ctx {
        return fail(
            JobError::BadRequest(format!(
                "prompt of {} tokens + {} new tokens does not fit the model's context of {ctx}",
                tokens.len(),
                req.max_tokens
            )),
            entry,
        );
    }
    let cfg = SessionConfig {
        context: need,
        max_new_tokens: req.max_tokens as usize,
        sampler: SamplerConfig {
            temperature: req.temp_milli as f32 / 1000.0,
            top_p: 1.0,
            seed: req.seed,
        },
        stop_tokens: loaded.tokenizer.stop.clone(),
    };
    let mut session = match Session::new(&loaded.model, &POOL, cfg) {
        Ok(s) => s,
        Err(e) => return fail(JobError::Internal(format!("{e}")), entry),
    };
    if let Err(e) = session.feed(&tokens) {
        return fail(JobError::BadRequest(format!("{e}")), entry);
    }
    let mut st = STATE.lock();
    let Some(server) = find_server(&mut st, server_name).map(|s| s.id) else {
        drop(st);
        return fail(
            JobError::BadRequest(format!("no server '{server_name}'")),
            entry,
        );
    };
    let submitted = SCHED.lock().submit(
        server,
        JobSpec {
            max_tokens: req.max_tokens,
        },
        now,
    );
    let id = match submitted {
        Ok(id) => id,
        Err(e) => {
            drop(st);
            return fail(JobError::Rejected(format!("{e}")), entry);
        }
    };
    st.jobs.push(Job {
        id,
        server,
        tag: req.tag,
        kind: req.kind,
        sink,
        session,
        loaded,
        prev: tokens.last().copied(),
        utf8: Utf8Stream::new(),
        prompt_tokens: tokens.len() as u32,
        max_tokens: req.max_tokens,
        prefill_ns: 0,
        decode_passes: 0,
        decode_ns: 0,
    });
    drop(st);
    sink.accepted(req.tag, id.0, tokens.len() as u32);
}

/// Prompt tokens for the next prefill step: as many as fit the slice at the measured prefill
/// cost per token, between 1 and [`PREFILL_CHUNK`] (the full chunk before any measurement).
fn prefill_chunk(slice_ns: u64) -> usize {
    let (tokens, ns) = {
        let st = STATE.lock();
        (st.prefill_tokens, st.prefill_ns)
    };
    match ns.checked_div(tokens) {
        Some(per_token) if per_token > 0 => {
            (slice_ns / per_token).clamp(1, PREFILL_CHUNK as u64) as usize
        }
        _ => PREFILL_CHUNK,
    }
}

enum Step {
    Prefill(usize),
    Token(u32),
    Stopped(StopReason),
}

/// Runs one step of the job the scheduler picked (`charged`), or of a throttled job in idle
/// time (not charged to its budget).
fn run_step(server: ServerId, job_id: JobId, slice_ns: u64, charged: bool) {
    let taken = {
        let mut st = STATE.lock();
        st.jobs
            .iter()
            .position(|j| j.id == job_id)
            .map(|i| st.jobs.swap_remove(i))
    };
    let Some(mut job) = taken else {
        // The scheduler knows a job the service lost: cancel it so it cannot block the server.
        let _ = SCHED.lock().cancel(server, job_id, now_ns());
        STATE.lock().failures += 1;
        return;
    };
    let freq = timer::frequency();
    let t0 = timer::counter();
    SLICE_FLAGGED.store(0, Ordering::Release);
    SLICE_END.store(
        t0.saturating_add(ns_to_cycles(slice_ns, freq).unwrap_or(u64::MAX)),
        Ordering::Release,
    );
    let pass = job.session.next_token_runs_forward();
    let result = if job.session.pending() > 0 {
        let before = job.session.pending();
        job.session
            .prefill(prefill_chunk(slice_ns))
            .map(|left| Step::Prefill(before - left))
    } else {
        job.session.next_token().map(|t| match t {
            Some(id) => Step::Token(id),
            None => Step::Stopped(job.session.stop_reason().unwrap_or(StopReason::MaxTokens)),
        })
    };
    let t1 = timer::counter();
    SLICE_END.store(0, Ordering::Release);
    let elapsed_ns = cycles_to_ns(t1.wrapping_sub(t0), freq).unwrap_or(u64::MAX);
    let now = now_ns();
    if charged {
        if SCHED.lock().charge(server, elapsed_ns, now).is_err() {
            STATE.lock().failures += 1;
        }
    } else {
        SLACK_STEPS.fetch_add(1, Ordering::Relaxed);
        SLACK_NS.fetch_add(elapsed_ns, Ordering::Relaxed);
    }
    let mut st = STATE.lock();
    st.steps += 1;
    match result {
        Ok(Step::Prefill(n)) => {
            st.prefill_tokens += n as u64;
            st.prefill_ns += elapsed_ns;
            job.prefill_ns += elapsed_ns;
            st.jobs.push(job);
        }
        Ok(Step::Token(id)) => {
            st.decode_tokens += 1;
            if pass {
                count_pass(&mut st, &mut job, elapsed_ns);
            }
            drop(st);
            let _ = SCHED.lock().record_tokens(server, 1);
            let mut bytes = Vec::new();
            job.loaded.tokenizer.decode(job.prev, id, &mut bytes);
            job.prev = Some(id);
            let text = job.utf8.push(&bytes);
            job.sink.token(job.tag, id, &text);
            if job.session.generated() >= job.max_tokens as usize {
                finish(job, server, StopReason::MaxTokens, now);
            } else {
                STATE.lock().jobs.push(job);
            }
        }
        Ok(Step::Stopped(reason)) => {
            // A pass that sampled the stop token still counts towards the generation speed.
            if pass {
                count_pass(&mut st, &mut job, elapsed_ns);
            }
            drop(st);
            finish(job, server, reason, now);
        }
        Err(e) => {
            st.failures += 1;
            drop(st);
            let _ = SCHED.lock().cancel(server, job.id, now);
            reject(AuditEntry {
                op: job.kind.op() as u16,
                prompt_len: job.prompt_tokens,
                tokens: job.session.generated() as u32,
                extra: job.id.0,
                ..AuditEntry::default()
            });
            job.sink
                .failed(job.tag, &JobError::Internal(format!("{e}")));
        }
    }
}

/// Counts one forward pass of a generated token (the generation speed and latency figures).
fn count_pass(st: &mut State, job: &mut Job, ns: u64) {
    st.decode_passes += 1;
    st.decode_ns += ns;
    st.token_ns.push(ns);
    job.decode_passes += 1;
    job.decode_ns += ns;
}

fn finish(mut job: Job, server: ServerId, reason: StopReason, now: u64) {
    let done = SCHED.lock().complete(server, now);
    let (wcet, period) = {
        let st = STATE.lock();
        st.servers
            .iter()
            .find(|s| s.id == server)
            .map_or((0, 0), |s| (s.wcet_cycles, s.period_ns))
    };
    let tokens = job.session.generated() as u32;
    let c = match done {
        Ok(c) => c,
        Err(e) => {
            STATE.lock().failures += 1;
            job.sink
                .failed(job.tag, &JobError::Internal(format!("completing: {e}")));
            return;
        }
    };
    let status = STATUS_OK | if c.missed { STATUS_DEADLINE_MISS } else { 0 };
    service_audit::record(AuditEntry {
        op: job.kind.op() as u16,
        status,
        prompt_len: job.prompt_tokens,
        tokens,
        wcet_cycles: wcet,
        period_ns: period,
        extra: job.id.0,
    });
    let report = Report {
        job: job.id.0,
        tokens,
        prompt_tokens: job.prompt_tokens,
        response_ns: c.response_ns,
        consumed_ns: c.consumed_ns,
        steps: c.steps,
        prefill_ns: job.prefill_ns,
        decode_passes: job.decode_passes,
        decode_ns: job.decode_ns,
        missed: c.missed,
        lateness_ns: c.lateness_ns,
        stop: match reason {
            StopReason::StopToken => "stop token",
            StopReason::MaxTokens => "max tokens",
            StopReason::ContextFull => "context full",
        },
        tail: job.utf8.finish(),
    };
    job.sink.finished(job.tag, &report);
}

/// Cancels the job with `tag` that `sink` submitted (audited as op 5).
pub fn cancel(tag: u64, sink: &'static dyn ReplySink) -> Result<(), String> {
    let now = now_ns();
    let job = {
        let mut st = STATE.lock();
        let pos = st
            .jobs
            .iter()
            .position(|j| j.tag == tag && core::ptr::addr_eq(j.sink, sink));
        pos.map(|i| st.jobs.swap_remove(i))
    };
    let Some(job) = job else {
        return Err(format!("no job {tag}"));
    };
    let _ = SCHED.lock().cancel(job.server, job.id, now);
    service_audit::record(AuditEntry {
        op: Op::Cancel as u16,
        status: STATUS_OK,
        prompt_len: job.prompt_tokens,
        tokens: job.session.generated() as u32,
        extra: job.id.0,
        ..AuditEntry::default()
    });
    job.sink.failed(job.tag, &JobError::Cancelled);
    Ok(())
}

/// One unit of work; returns whether anything was done.
pub fn poll() -> bool {
    let hook = POLL_HOOK.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: non-zero values are only stored by `set_poll_hook` from a `fn()`.
        let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
        f();
    }
    let now = now_ns();
    release_periodic(now);
    let mut worked = false;
    loop {
        // Pop in its own statement: the IRQ-masking lock must not be held while admitting.
        let next = INBOX.lock().pop_front();
        let Some(p) = next else { break };
        admit(p, now_ns());
        worked = true;
    }
    let decision = SCHED.lock().dispatch(now_ns().max(now));
    match decision {
        Ok(Decision::Run(d)) => {
            run_step(d.server, d.job, d.slice_ns, true);
            true
        }
        Ok(Decision::Idle { .. }) if slack() => match slack_candidate() {
            Some((server, job)) => {
                run_step(server, job, u64::MAX, false);
                true
            }
            None => worked,
        },
        Ok(Decision::Idle { .. }) => worked,
        Err(_) => {
            STATE.lock().failures += 1;
            worked
        }
    }
}

/// The head job of the throttled server with queued work and the earliest deadline.
fn slack_candidate() -> Option<(ServerId, JobId)> {
    let sched = SCHED.lock();
    let mut best: Option<(u64, ServerId)> = None;
    for id in sched.server_ids() {
        let Ok(s) = sched.server_stats(id) else {
            continue;
        };
        if s.queue_depth > 0
            && s.throttled_until.is_some()
            && best.is_none_or(|b| (s.deadline_ns, id.0) < (b.0, b.1 .0))
        {
            best = Some((s.deadline_ns, id));
        }
    }
    let (_, id) = best?;
    let job = sched.head_job(id).ok()??;
    Some((id, job.id))
}

/// Whether requests wait in the inbox.
pub fn inbox_pending() -> bool {
    !INBOX.lock().is_empty()
}

/// Serves every server until `done()` holds; sleeps (WFI) when nothing can run.
pub fn run_until(mut done: impl FnMut() -> bool) {
    while !done() {
        if !poll() {
            let daif = sync::irq_save();
            if !inbox_pending() {
                aarch64_cpu::asm::wfi();
            }
            sync::irq_restore(daif);
        }
    }
}

fn pct(p: Option<sis_sched::Percentiles>) -> (u64, u64) {
    p.map_or((0, 0), |p| (p.p50, p.p99))
}

/// Prints `llmctl status`.
pub fn print_status(out: &mut dyn Write) {
    match model::get() {
        Some(l) => {
            let c = &l.model.config;
            let _ = writeln!(
                out,
                "model: loaded {} '{}' ({} bytes, dim {}, layers {}, vocab {}, context {}), load {} ms",
                l.format,
                l.name,
                l.file_len,
                c.dim,
                c.n_layers,
                c.vocab_size,
                c.max_seq_len,
                cycles_to_ns(l.load_cycles, timer::frequency()).unwrap_or(0) / 1_000_000
            );
        }
        None => {
            let _ = writeln!(out, "model: none (run 'llmctl load')");
        }
    }
    // Copy everything out first: the locks mask IRQs, printing must not happen under them.
    let (t, stats) = {
        let sched = SCHED.lock();
        let stats: heapless::Vec<ServerStats, 8> = sched
            .server_ids()
            .filter_map(|id| sched.server_stats(id).ok())
            .collect();
        (sched.totals(), stats)
    };
    let (jp50, jp99) = pct(t.jitter);
    let (rp50, rp99) = pct(t.response);
    let _ = writeln!(
        out,
        "det_admission_used_ppb={} det_admission_bound_ppb={} det_admission_accepted={} det_admission_rejected={}",
        t.admitted_ppb,
        t.bound_ppb,
        t.admission.accepted,
        t.admission.rejected()
    );
    let _ = writeln!(
        out,
        "deterministic_deadline_miss_count={} deterministic_jitter_p50_ns={jp50} deterministic_jitter_p99_ns={jp99} response_p50_ns={rp50} response_p99_ns={rp99}",
        t.counters.deadline_misses
    );
    let _ = writeln!(
        out,
        "jobs: admitted={} completed={} canceled={} rejected={} (quota {} queue {} invalid {}) queue_depth={} throttles={} overrun_ns={}",
        t.counters.jobs_admitted,
        t.counters.jobs_completed,
        t.counters.jobs_canceled,
        t.counters.jobs_rejected(),
        t.counters.rejected_quota,
        t.counters.rejected_queue_full,
        t.counters.rejected_invalid,
        t.queue_depth,
        t.counters.throttle_events,
        t.counters.overrun_ns
    );
    struct Row {
        id: ServerId,
        name: heapless::String<MAX_NAME>,
        wcet_cycles: u64,
        bg: (u32, u32, u32),
    }
    let (rows, decode, prefill, latency, steps, failures) = {
        let st = STATE.lock();
        let rows: heapless::Vec<Row, 8> = st
            .servers
            .iter()
            .take(8)
            .map(|s| Row {
                id: s.id,
                name: s.name.clone(),
                wcet_cycles: s.wcet_cycles,
                bg: (
                    s.bg_done,
                    s.bg_failed,
                    s.periodic.as_ref().map_or(0, |p| p.total),
                ),
            })
            .collect();
        (
            rows,
            (st.decode_tokens, st.decode_passes, st.decode_ns),
            (st.prefill_tokens, st.prefill_ns),
            st.token_ns.percentiles(),
            st.steps,
            st.failures,
        )
    };
    let tps = |tok: u64, ns: u64| (tok * 100_000_000_000).checked_div(ns).unwrap_or(0);
    let dec = tps(decode.1, decode.2);
    let pre = tps(prefill.0, prefill.1);
    let (lp50, lp99) = latency.map_or((0, 0), |p| (p.p50, p.p99));
    let _ = writeln!(
        out,
        "llm_tokens_per_sec={}.{:02} llm_prefill_tokens_per_sec={}.{:02} llm_tokens={} llm_decode_passes={} llm_decode_us={} llm_prefill_tokens={} llm_prefill_us={} llm_token_latency_p50_us={} llm_token_latency_p99_us={} workers={} pool_batches={} pool_busy={} steps={} shell_rejected_lines={}",
        dec / 100,
        dec % 100,
        pre / 100,
        pre % 100,
        decode.0,
        decode.1,
        decode.2 / 1000,
        prefill.0,
        prefill.1 / 1000,
        lp50 / 1000,
        lp99 / 1000,
        crate::parallel::workers_in_use(),
        crate::parallel::stats().0,
        crate::parallel::stats().1,
        steps,
        crate::service_loop::rejected_lines()
    );
    let (audited, audit_failed) = service_audit::counts();
    let _ = writeln!(
        out,
        "slack={} slack_steps={} slack_ms={} budget_timer_expiries={} inbox_full={} failures={} audit_appended={audited} audit_failed={audit_failed}",
        if slack() { "on" } else { "off" },
        SLACK_STEPS.load(Ordering::Relaxed),
        SLACK_NS.load(Ordering::Relaxed) / 1_000_000,
        SLICE_EXPIRED.load(Ordering::Relaxed),
        INBOX_FULL.load(Ordering::Relaxed),
        failures
    );
    for ss in &stats {
        let Some(srv) = rows.iter().find(|s| s.id == ss.id) else {
            continue;
        };
        let (jp50, jp99) = pct(ss.jitter);
        let _ = writeln!(
            out,
            "server {}: wcet_cycles={} budget_ns={} period_ns={} max_tokens_per_period={} util_ppb={} jobs={} done={} rejected={} misses={} throttles={} tokens={} queue={} jitter_p50_ns={jp50} jitter_p99_ns={jp99} bg_done={} bg_failed={} bg_total={}{}",
            srv.name,
            srv.wcet_cycles,
            ss.config.budget_ns,
            ss.config.period_ns,
            ss.config.max_tokens_per_period,
            ss.utilisation_ppb,
            ss.counters.jobs_admitted,
            ss.counters.jobs_completed,
            ss.counters.jobs_rejected(),
            ss.counters.deadline_misses,
            ss.counters.throttle_events,
            ss.counters.tokens,
            ss.queue_depth,
            srv.bg.0,
            srv.bg.1,
            srv.bg.2,
            if ss.throttled_until.is_some() { " throttled" } else { "" }
        );
    }
}

/// Clears the engine throughput and latency figures (not the scheduler's counters).
pub fn reset_metrics() {
    let mut st = STATE.lock();
    st.token_ns = SampleRing::new();
    st.decode_tokens = 0;
    st.decode_passes = 0;
    st.decode_ns = 0;
    st.prefill_tokens = 0;
    st.prefill_ns = 0;
}

/// Counters for the ring's `Status` answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// A model is loaded.
    pub model_loaded: bool,
    /// The default server's settings, if it exists.
    pub default: Option<ServerSettings>,
    /// Jobs queued or running.
    pub jobs: usize,
    /// Tokens generated since boot.
    pub tokens: u64,
    /// Deadline misses since boot.
    pub deadline_misses: u64,
    /// Requests refused since boot (admission, quota, queue).
    pub rejected: u64,
}

/// The service's state in a few numbers.
pub fn summary() -> Summary {
    let default = server_settings(DEFAULT_SERVER);
    let t = SCHED.lock().totals();
    Summary {
        model_loaded: model::get().is_some(),
        default,
        jobs: t.queue_depth,
        tokens: t.counters.tokens,
        deadline_misses: t.counters.deadline_misses,
        rejected: t.counters.jobs_rejected() + t.admission.rejected(),
    }
}
