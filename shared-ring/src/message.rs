//! Messages carried by the rings (postcard-encoded, every field bounded).
//!
//! The ring slot carries the sequence number; [`Received::seq`](crate::Received) hands it to the
//! receiver, and responses name the request they answer by that number (`req_seq`).

use core::fmt;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Largest prompt in an [`InferRequest`], in bytes.
pub const MAX_PROMPT: usize = 1024;
/// Largest token-text chunk in one [`Response::Tokens`], in bytes.
pub const MAX_CHUNK: usize = 256;
/// Longest system message in an [`InferRequest`], in bytes.
pub const MAX_SYSTEM: usize = 256;
/// Most stop strings in an [`InferRequest`] (the engine's `stop::MAX_STOP_STRINGS`).
pub const MAX_STOPS: usize = 4;
/// Longest stop string, in bytes (the engine's `stop::MAX_STOP_BYTES`).
pub const MAX_STOP_LEN: usize = 64;

/// The stop strings of a request: generation ends when the text ends with one of them, which
/// is not sent (each non-empty; the LLM partition checks that at admission).
pub type StopList = heapless::Vec<heapless::String<MAX_STOP_LEN>, MAX_STOPS>;

/// At most `N` raw bytes, encoded as one postcard byte string (length + bytes).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes<const N: usize>(pub heapless::Vec<u8, N>);

impl<const N: usize> Bytes<N> {
    /// Copies `b`; `None` if it is longer than `N`.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        heapless::Vec::from_slice(b).ok().map(Self)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.escape_ascii())
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> de::Visitor<'de> for V<N> {
            type Value = Bytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Bytes::from_slice(v).ok_or_else(|| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V::<N>)
    }
}

/// Temperature in thousandths (fixed point: 700 = 0.7); 0 means greedy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milli(pub u16);

/// Sampling controls of an inference, llama.cpp's meaning (`docs/engine.md`, "Sampling").
/// Fractions travel in thousandths so the format is exact and has no NaN. The LLM partition
/// checks the values against the engine's ranges when it admits the job (out of range:
/// [`ErrorCode::BadRequest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sampling {
    /// Temperature; 0 = greedy.
    pub temp: Milli,
    /// Keep the `top_k` most likely tokens; 0 = off.
    pub top_k: u32,
    /// Nucleus mass in thousandths (0..=1000; 1000 = off).
    pub top_p: Milli,
    /// Minimum probability relative to the most likely token, thousandths (0 = off).
    pub min_p: Milli,
    /// Repetition penalty in thousandths (1000 = off).
    pub repeat_penalty: Milli,
    /// How many of the last tokens the penalty looks at (0 = off).
    pub repeat_last_n: u32,
    /// Generator seed (same seed, same output); the engine takes `0..=u32::MAX`.
    pub seed: u64,
}

impl Sampling {
    /// Greedy with llama.cpp's other defaults (top-k 40, top-p 0.95, min-p 0.05, no
    /// penalty, window 64): what a request that sets only a temperature samples with.
    pub const DEFAULT: Sampling = Sampling {
        temp: Milli(0),
        top_k: 40,
        top_p: Milli(950),
        min_p: Milli(50),
        repeat_penalty: Milli(1000),
        repeat_last_n: 64,
        seed: 0,
    };
}

impl Default for Sampling {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Flags of an inference request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferFlags(pub u8);

impl InferFlags {
    /// Wrap the prompt in the model's chat template.
    pub const CHAT: u8 = 0b01;
    /// Stream tokens back as they are produced (`Tokens` responses before `Done`).
    pub const STREAM: u8 = 0b10;
    /// The host asked for a streamed reply: audit the job as a stream (op 4), not an infer
    /// (op 3). The ring transport itself may stream either way.
    pub const HOST_STREAM: u8 = 0b100;

    /// True if the chat flag is set.
    pub fn chat(self) -> bool {
        self.0 & Self::CHAT != 0
    }
    /// True if the stream flag is set.
    pub fn stream(self) -> bool {
        self.0 & Self::STREAM != 0
    }
    /// True if the host asked for a streamed reply.
    pub fn host_stream(self) -> bool {
        self.0 & Self::HOST_STREAM != 0
    }
}

/// The conversation a chat turn belongs to: the LLM partition keeps its KV cache between
/// turns and computes only what a turn adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// The conversation's id (drawn by the opener from its entropy source: whoever knows it
    /// may continue the conversation).
    pub id: u64,
    /// Open it with this turn (else continue it).
    pub open: bool,
}

/// An inference job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferRequest {
    /// Job id chosen by the control guest (used by `Poll`, `Cancel`, `Tokens`, `Done`).
    pub id: u32,
    /// Most tokens to generate.
    pub max_tokens: u16,
    /// Sampling controls.
    pub sampling: Sampling,
    /// Chat/stream flags.
    pub flags: InferFlags,
    /// Stop strings.
    pub stop: StopList,
    /// System message for the chat template (empty = none; only with the chat flag).
    pub system: heapless::String<MAX_SYSTEM>,
    /// The conversation this chat turn belongs to, if any.
    pub session: Option<SessionRef>,
    /// Prompt text (UTF-8, at most [`MAX_PROMPT`] bytes).
    pub prompt: heapless::String<MAX_PROMPT>,
}

/// Control guest → LLM guest.
// No heap in the guests: a message lives on the stack and is encoded in place, so the
// large variant is not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Load (or reload) the model with a WCET estimate per token.
    Load {
        /// Worst-case cycles per token step.
        wcet_cycles: u64,
    },
    /// Set the inference server's budget.
    Budget {
        /// Worst-case cycles per token step.
        wcet_cycles: u64,
        /// Server period.
        period_ns: u64,
        /// Token budget per period.
        max_tokens_per_period: u32,
    },
    /// Start an inference job.
    Infer(InferRequest),
    /// Cancel a job.
    Cancel {
        /// Job id.
        id: u32,
    },
    /// Ask for up to `max` buffered tokens of a job.
    Poll {
        /// Job id.
        id: u32,
        /// Most tokens to return.
        max: u16,
    },
    /// Ask for a status snapshot.
    Status,
    /// Liveness/latency probe; answered by `Pong` with the same `t0`.
    Ping {
        /// Sender's timestamp.
        t0: u64,
    },
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The request's arguments are invalid.
    BadRequest,
    /// No model is loaded.
    NoModel,
    /// No job with that id.
    UnknownId,
    /// Admission control refused the job or budget.
    Rejected,
    /// Too many jobs in flight.
    Busy,
    /// The job was cancelled.
    Cancelled,
    /// Something failed inside the LLM guest.
    Internal,
    /// Nothing in the LLM guest serves this request (yet).
    Unavailable,
    /// The prompt and `max_tokens` do not fit the model's context.
    ContextFull,
    /// The conversation was evicted (least recently used) to make room for another.
    SessionEvicted,
}

impl ErrorCode {
    /// The `ERR 0xNN` code the control guest answers a host frame with for this error
    /// (`docs/frames.md` §5.3); the LLM shell prints the same code.
    pub const fn host_code(self) -> u8 {
        match self {
            ErrorCode::BadRequest => 0x01,
            ErrorCode::NoModel => 0x03,
            ErrorCode::Unavailable => 0x06,
            ErrorCode::UnknownId => 0x08,
            ErrorCode::Rejected | ErrorCode::Busy => 0x09,
            ErrorCode::Cancelled | ErrorCode::Internal => 0x0a,
            ErrorCode::ContextFull => 0x0b,
            ErrorCode::SessionEvicted => 0x0c,
        }
    }
}

/// Status bits of a finished job (same values as the audit status bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneStatus(pub u8);

impl DoneStatus {
    /// Completed.
    pub const OK: u8 = 0b001;
    /// Refused or aborted.
    pub const REJECT: u8 = 0b010;
    /// Missed at least one deadline.
    pub const DEADLINE_MISS: u8 = 0b100;
}

/// Final report of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Job id.
    pub id: u32,
    /// Tokens generated.
    pub tokens: u32,
    /// Prompt length in tokens.
    pub prompt_len: u32,
    /// Wall time from start to finish.
    pub elapsed_ns: u64,
    /// Cycles spent on the job.
    pub cycles: u64,
    /// Status bits ([`DoneStatus`]).
    pub status: DoneStatus,
    /// Why a job with the reject bit failed after it was accepted (`None` otherwise).
    pub error: Option<ErrorCode>,
    /// Leading prompt tokens whose KV cache a conversation turn reused (not computed again);
    /// `prompt_len - reused` were computed.
    pub reused: u32,
}

/// Snapshot of the LLM guest's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// A model is loaded.
    pub model_loaded: bool,
    /// Current WCET per token step.
    pub wcet_cycles: u64,
    /// Current server period.
    pub period_ns: u64,
    /// Current token budget per period.
    pub max_tokens_per_period: u32,
    /// Jobs running or queued.
    pub jobs: u16,
    /// Tokens generated since boot.
    pub tokens_total: u64,
    /// Deadline misses since boot.
    pub deadline_misses: u64,
    /// Requests rejected since boot.
    pub rejected: u64,
}

/// LLM guest → control guest.
// No heap in the guests: a message lives on the stack and is encoded in place, so the
// large variant is not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The request with sequence number `req_seq` was accepted.
    Ack {
        /// Sequence number of the request.
        req_seq: u64,
    },
    /// The request with sequence number `req_seq` failed.
    Error {
        /// Sequence number of the request.
        req_seq: u64,
        /// Why.
        code: ErrorCode,
    },
    /// A chunk of generated text (raw bytes: a chunk may end inside a UTF-8 sequence).
    Tokens {
        /// Job id.
        id: u32,
        /// Number of tokens in the chunk.
        n: u16,
        /// Their text.
        text: Bytes<MAX_CHUNK>,
    },
    /// A job finished.
    Done(Done),
    /// Answer to `Status`.
    Status(StatusSnapshot),
    /// Answer to `Ping`.
    Pong {
        /// The `t0` of the ping.
        t0: u64,
    },
}
