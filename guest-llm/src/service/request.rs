//! What a job is, how it ends and who hears about it: the service's request API, shared by the
//! shell, the background sources and the ring.

use alloc::string::String;

use shared_ring::audit::Op;
use shared_ring::message::{ErrorCode, Sampling, SessionRef, StopList};
use sis_engine::SamplerConfig;

use super::args::MAX_NAME;
use super::session_table::{Owner, TableError};

/// Which audit op a job is recorded under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `llminfer`, ring inference (op 3).
    Infer,
    /// `llmstream`, `llmgraph`, streamed ring inference (op 4).
    Stream,
}

impl JobKind {
    /// The audit op of the job's records.
    pub fn op(self) -> Op {
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
    /// Server to run on; empty = [`DEFAULT_SERVER`](super::DEFAULT_SERVER).
    pub server: heapless::String<MAX_NAME>,
    /// Prompt text.
    pub prompt: heapless::String<{ shared_ring::message::MAX_PROMPT }>,
    /// Tokens to generate at most (>= 1).
    pub max_tokens: u32,
    /// Sampling controls (checked against the engine's ranges at admission).
    pub sampling: Sampling,
    /// Stop strings (checked by the engine's `StopStrings::new` at admission).
    pub stop: StopList,
    /// Wrap the prompt in the chat template.
    pub chat: bool,
    /// The chat template's system message (empty = none; only with `chat`).
    pub system: heapless::String<{ shared_ring::message::MAX_SYSTEM }>,
    /// The conversation this chat turn belongs to (opened by it, or continued).
    pub session: Option<SessionRef>,
    /// Who asks (a conversation belongs to whoever opened it).
    pub owner: Owner,
    /// Recompute the conversation's whole KV cache for this turn (the benchmark's cold run).
    pub cold: bool,
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
    /// Prompt tokens whose KV cache a conversation kept from earlier turns (not computed).
    pub reused: u32,
    /// The conversation, for a chat turn in one.
    pub session: Option<u64>,
    /// Submission to the first generated token, ns (0 if none was generated).
    pub ttft_ns: u64,
    /// Forward passes of generated tokens (every token but the first, which is sampled from the
    /// prefill's logits) and the time they took, ns.
    pub decode_passes: u32,
    /// See `decode_passes`.
    pub decode_ns: u64,
    /// Its deadline, ns after submission: the server's scheduling deadline when the job was
    /// released (for a job arriving at an idle server, submission + the server's period).
    pub due_ns: u64,
    /// Whether it finished after its deadline.
    pub missed: bool,
    /// Finish minus deadline when missed, ns.
    pub lateness_ns: u64,
    /// Why generation stopped.
    pub stop: &'static str,
    /// Text held back until the end (an incomplete character, the start of a stop string
    /// that did not complete); empty after a stop string.
    pub tail: String,
}

/// Why a job did not run to completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// No model loaded.
    NoModel,
    /// The request is invalid (unknown server, a sampling value out of range, ...).
    BadRequest(String),
    /// The prompt and `max_tokens` do not fit the model's context.
    ContextFull(String),
    /// Admission refused it (quota, full queue).
    Rejected(String),
    /// Cancelled.
    Cancelled,
    /// The engine failed.
    Internal(String),
    /// The conversation cannot take this turn.
    Session(TableError),
}

impl core::fmt::Display for JobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JobError::NoModel => f.write_str("no model loaded (run 'llmctl load' first)"),
            JobError::BadRequest(m) | JobError::ContextFull(m) => f.write_str(m),
            JobError::Rejected(m) => write!(f, "rejected: {m}"),
            JobError::Cancelled => f.write_str("cancelled"),
            JobError::Internal(m) => write!(f, "engine error: {m}"),
            JobError::Session(TableError::Unknown) => f.write_str("no such session"),
            JobError::Session(TableError::Evicted) => f.write_str(
                "the session was evicted (least recently used) to make room: open a new one",
            ),
            JobError::Session(TableError::Busy) => f.write_str("a turn of that session is running"),
            JobError::Session(TableError::Exists) => f.write_str("that session id is taken"),
            JobError::Session(TableError::Full) => {
                f.write_str("every session is running a turn: none can be evicted")
            }
        }
    }
}

impl JobError {
    /// The ring's code for it (what the host sees: `docs/llm-service.md`, "Errors").
    pub fn code(&self) -> ErrorCode {
        match self {
            JobError::NoModel => ErrorCode::NoModel,
            JobError::BadRequest(_) => ErrorCode::BadRequest,
            JobError::ContextFull(_) => ErrorCode::ContextFull,
            JobError::Rejected(_) => ErrorCode::Rejected,
            JobError::Cancelled => ErrorCode::Cancelled,
            JobError::Internal(_) => ErrorCode::Internal,
            JobError::Session(TableError::Unknown) => ErrorCode::UnknownId,
            JobError::Session(TableError::Evicted) => ErrorCode::SessionEvicted,
            JobError::Session(_) => ErrorCode::Busy,
        }
    }
}

/// The engine's sampler settings for a request's controls (thousandths to fractions).
pub fn sampler_config(s: &Sampling) -> SamplerConfig {
    let f = |m: shared_ring::message::Milli| f32::from(m.0) / 1000.0;
    SamplerConfig {
        temperature: f(s.temp),
        top_k: s.top_k,
        top_p: f(s.top_p),
        min_p: f(s.min_p),
        repeat_penalty: f(s.repeat_penalty),
        repeat_last_n: s.repeat_last_n,
        seed: s.seed,
        ..SamplerConfig::default()
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

/// Why [`Service::submit`](super::Service::submit) refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The inbox is full (counted); try again after the loop has drained it.
    InboxFull,
}
