//! The frame wire format: constants, typed requests, the encoder and the streaming decoder.
//!
//! Every frame is an 8-byte header followed by `len` payload bytes:
//!
//! | offset | size | field                                   |
//! |--------|------|-----------------------------------------|
//! | 0      | 1    | magic `0x43` (`'C'`)                    |
//! | 1      | 1    | version (`0` or `1`)                    |
//! | 2      | 1    | command                                 |
//! | 3      | 1    | flags                                   |
//! | 4      | 4    | `len`, u32 little-endian                |
//! | 8      | len  | payload; first 8 bytes are the token    |
//!
//! `docs/frames.md` has the byte-exact layout of every payload.

mod decoder;
mod encode;
mod parse;

pub use decoder::{Decoder, DecoderStats, Event, Rejected};
pub use encode::{encode, EncodeError};
pub use parse::parse_payload;

/// First header byte of every frame: ASCII `'C'`.
pub const MAGIC: u8 = 0x43;
/// Length of the fixed frame header in bytes.
pub const HEADER_LEN: usize = 8;
/// Length of the token that starts every payload.
pub const TOKEN_LEN: usize = 8;
/// Largest payload a version-0 frame may carry (the seed's limit).
pub const MAX_PAYLOAD_V0: usize = 64;
/// Longest prompt a version-1 frame may carry, in bytes of UTF-8.
pub const MAX_PROMPT_V1: usize = 2048;
/// Fixed part of a version-1 `LlmInferStart` payload (token, seq, max_tokens, temperature,
/// top-p, seed) in front of the prompt.
pub const V1_INFER_FIXED: usize = 8 + 4 + 2 + 2 + 2 + 8;
/// The sampling block a version-1 `LlmInferStart` with [`FLAG_SAMPLING`] carries after the
/// seed: top-k u32, min-p u16, repeat penalty u16, repeat window u32.
pub const V1_SAMPLING_BLOCK: usize = 4 + 2 + 2 + 4;
/// Most stop strings in a version-1 `LlmInferStart` ([`FLAG_STOP`]).
pub const MAX_STOPS: usize = 4;
/// Longest stop string, in bytes of UTF-8.
pub const MAX_STOP_LEN: usize = 64;
/// Largest stop block: a count byte, then per string a length byte and its bytes.
pub const MAX_STOP_BLOCK: usize = 1 + MAX_STOPS * (1 + MAX_STOP_LEN);
/// Longest system message ([`FLAG_SYSTEM`]), in bytes of UTF-8.
pub const MAX_SYSTEM: usize = 256;
/// Largest system block: a u16 length and the message.
pub const MAX_SYSTEM_BLOCK: usize = 2 + MAX_SYSTEM;
/// Largest payload a version-1 frame may carry: a maximal `LlmInferStart`.
pub const MAX_PAYLOAD_V1: usize =
    V1_INFER_FIXED + V1_SAMPLING_BLOCK + MAX_STOP_BLOCK + MAX_SYSTEM_BLOCK + 8 + MAX_PROMPT_V1;
/// Fixed part of a version-0 `LlmInferStart` payload (token, max_tokens).
pub const V0_INFER_FIXED: usize = 8 + 2;
/// Longest prompt a version-0 frame may carry.
pub const MAX_PROMPT_V0: usize = MAX_PAYLOAD_V0 - V0_INFER_FIXED;
/// Largest whole frame (header plus payload) of any version; an encode buffer of this size
/// always suffices.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD_V1;
/// Oversize frames whose `len` is at most this are skipped exactly (the stream stays in
/// sync); a larger `len` is taken as a corrupt header and the decoder resyncs right after it.
pub const MAX_SKIP_LEN: u32 = 64 * 1024;

/// Version-1 flag on `LlmInferStart`: stream tokens back as they are produced.
pub const FLAG_STREAM: u8 = 0x01;
/// Version-1 flag on `LlmInferStart`: wrap the prompt in the model's chat template.
pub const FLAG_CHAT: u8 = 0x02;
/// Version-1 flag on `LlmInferStart`: the sampling block ([`V1_SAMPLING_BLOCK`]) follows the
/// seed. Without it, top-k, min-p and the repeat penalty are off ([`Sampling::GREEDY`]'s).
pub const FLAG_SAMPLING: u8 = 0x04;
/// Version-1 flag on `LlmInferStart`: the stop block follows (after the sampling block, if
/// any): count u8 (1..=[`MAX_STOPS`]), then per string its length u8 (1..=[`MAX_STOP_LEN`])
/// and its UTF-8 bytes.
pub const FLAG_STOP: u8 = 0x08;
/// Version-1 flag on `LlmInferStart`, only with [`FLAG_CHAT`]: a system message for the chat
/// template follows (after the stop block, if any): length u16 (1..=[`MAX_SYSTEM`]) and UTF-8.
pub const FLAG_SYSTEM: u8 = 0x10;
/// Version-1 flag on `LlmInferStart`, only with [`FLAG_CHAT`]: the turn belongs to a
/// conversation whose KV cache the LLM partition keeps; a session id u64 follows (after the
/// system block, if any): 0 opens a new conversation (its id comes back in `OK id=N
/// session=0x...`), another value continues that one.
pub const FLAG_SESSION: u8 = 0x20;

/// Temperature is carried in thousandths; this is the largest accepted (5.0).
pub const MAX_TEMPERATURE_MILLI: u16 = 5000;
/// Top-p is carried in thousandths; 1000 (1.0) disables nucleus filtering.
pub const TOP_P_OFF_MILLI: u16 = 1000;
/// Min-p is carried in thousandths, at most 1000 (1.0); 0 disables it.
pub const MAX_MIN_P_MILLI: u16 = 1000;
/// The repeat penalty is carried in thousandths, `1..=MAX_REPEAT_PENALTY_MILLI`; 1000 is off.
pub const MAX_REPEAT_PENALTY_MILLI: u16 = 10_000;
/// Largest seed (the sampler's generator is seeded with 32 bits, as llama.cpp's).
pub const MAX_SEED: u64 = u32::MAX as u64;

/// Wire format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// The seed's format: payload at most 64 bytes, no extra fields.
    V0 = 0,
    /// Extension: payload up to [`MAX_PAYLOAD_V1`], a sequence number, sampling fields and
    /// the stream/chat flags.
    V1 = 1,
}

impl Version {
    /// Parse a version byte; `None` for versions this build does not know.
    pub const fn from_u8(b: u8) -> Option<Version> {
        match b {
            0 => Some(Version::V0),
            1 => Some(Version::V1),
            _ => None,
        }
    }

    /// Largest payload this version may carry.
    pub const fn max_payload(self) -> usize {
        match self {
            Version::V0 => MAX_PAYLOAD_V0,
            Version::V1 => MAX_PAYLOAD_V1,
        }
    }

    /// Length of the common payload prefix (token, plus the sequence number in v1).
    pub const fn prefix_len(self) -> usize {
        match self {
            Version::V0 => TOKEN_LEN,
            Version::V1 => TOKEN_LEN + 4,
        }
    }
}

/// Command byte values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CommandCode {
    /// `0x10`: load the model (needs ADMIN).
    LlmLoad = 0x10,
    /// `0x11`: start an inference (needs SUBMIT or ADMIN).
    LlmInferStart = 0x11,
    /// `0x12`: poll an inference for produced tokens (needs SUBMIT or ADMIN).
    LlmInferPoll = 0x12,
    /// `0x13`: cancel an inference (needs SUBMIT or ADMIN).
    LlmCancel = 0x13,
}

impl CommandCode {
    /// Parse a command byte; `None` for unknown commands.
    pub const fn from_u8(b: u8) -> Option<CommandCode> {
        match b {
            0x10 => Some(CommandCode::LlmLoad),
            0x11 => Some(CommandCode::LlmInferStart),
            0x12 => Some(CommandCode::LlmInferPoll),
            0x13 => Some(CommandCode::LlmCancel),
            _ => None,
        }
    }
}

/// Sampling settings of an inference (llama.cpp's meaning, `docs/engine.md`). Integers in
/// thousandths keep the wire format exact and free of NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sampling {
    /// Temperature × 1000; `0` means greedy (argmax). At most [`MAX_TEMPERATURE_MILLI`].
    pub temperature_milli: u16,
    /// Top-p × 1000, in `0..=1000`; `1000` disables nucleus filtering.
    pub top_p_milli: u16,
    /// Seed of the sampler's random generator, at most [`MAX_SEED`].
    pub seed: u64,
    /// Keep the `top_k` most likely tokens; `0` = off.
    pub top_k: u32,
    /// Min-p × 1000, in `0..=1000`; `0` = off.
    pub min_p_milli: u16,
    /// Repeat penalty × 1000, in `1..=10000`; `1000` = off.
    pub repeat_penalty_milli: u16,
    /// Tokens the repeat penalty looks back over; `0` = off.
    pub repeat_last_n: u32,
}

impl Sampling {
    /// Greedy decoding: the only sampling a v0 frame can express.
    pub const GREEDY: Sampling = Sampling {
        temperature_milli: 0,
        top_p_milli: TOP_P_OFF_MILLI,
        seed: 0,
        top_k: 0,
        min_p_milli: 0,
        repeat_penalty_milli: 1000,
        repeat_last_n: 64,
    };

    /// Whether the fields of the sampling block differ from [`Sampling::GREEDY`]'s (then a v1
    /// frame carries the block, [`FLAG_SAMPLING`]).
    pub fn needs_block(&self) -> bool {
        (
            self.top_k,
            self.min_p_milli,
            self.repeat_penalty_milli,
            self.repeat_last_n,
        ) != (
            Self::GREEDY.top_k,
            Self::GREEDY.min_p_milli,
            Self::GREEDY.repeat_penalty_milli,
            Self::GREEDY.repeat_last_n,
        )
    }

    /// The first field out of its wire range, if any.
    pub fn check(&self) -> Result<(), BadFrameReason> {
        if self.temperature_milli > MAX_TEMPERATURE_MILLI {
            return Err(BadFrameReason::BadTemperature);
        }
        if self.top_p_milli > TOP_P_OFF_MILLI {
            return Err(BadFrameReason::BadTopP);
        }
        if self.seed > MAX_SEED {
            return Err(BadFrameReason::BadSeed);
        }
        if self.min_p_milli > MAX_MIN_P_MILLI {
            return Err(BadFrameReason::BadMinP);
        }
        if self.repeat_penalty_milli == 0 || self.repeat_penalty_milli > MAX_REPEAT_PENALTY_MILLI {
            return Err(BadFrameReason::BadRepeatPenalty);
        }
        Ok(())
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling::GREEDY
    }
}

/// Stop strings of an inference: at most [`MAX_STOPS`], each 1..=[`MAX_STOP_LEN`] bytes.
/// Borrowed (no allocation) and `Copy`, like the prompt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stops<'a> {
    items: [&'a str; MAX_STOPS],
    len: u8,
}

impl<'a> Stops<'a> {
    /// No stop strings.
    pub const NONE: Stops<'static> = Stops {
        items: [""; MAX_STOPS],
        len: 0,
    };

    /// The stop strings of `list`; `None` if there are more than [`MAX_STOPS`] or one is
    /// empty or longer than [`MAX_STOP_LEN`].
    pub fn new(list: &[&'a str]) -> Option<Self> {
        if list.len() > MAX_STOPS || list.iter().any(|s| s.is_empty() || s.len() > MAX_STOP_LEN) {
            return None;
        }
        let mut items = [""; MAX_STOPS];
        items[..list.len()].copy_from_slice(list);
        Some(Stops {
            items,
            len: list.len() as u8,
        })
    }

    /// The strings.
    pub fn as_slice(&self) -> &[&'a str] {
        &self.items[..usize::from(self.len)]
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the stop block on the wire (0 when empty).
    pub fn wire_len(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            1 + self.as_slice().iter().map(|s| 1 + s.len()).sum::<usize>()
        }
    }
}

/// Parameters of an `LlmInferStart` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferParams<'a> {
    /// The prompt text; never empty.
    pub prompt: &'a str,
    /// Upper bound on generated tokens; at least 1.
    pub max_tokens: u16,
    /// Sampling settings (v0: always [`Sampling::GREEDY`]).
    pub sampling: Sampling,
    /// Apply the model's chat template (v1 flag [`FLAG_CHAT`]).
    pub chat: bool,
    /// Stream tokens back as they are produced (v1 flag [`FLAG_STREAM`]).
    pub stream: bool,
    /// Stop strings (v1 flag [`FLAG_STOP`]).
    pub stop: Stops<'a>,
    /// System message of the chat template; empty = none (v1 flag [`FLAG_SYSTEM`], needs
    /// `chat`).
    pub system: &'a str,
    /// The conversation (v1 flag [`FLAG_SESSION`], needs `chat`): `Some(0)` opens one,
    /// `Some(id)` continues it.
    pub session: Option<u64>,
}

/// A decoded command with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `0x10`: load the model, optionally declaring the per-step WCET in cycles.
    LlmLoad {
        /// Declared worst-case execution time per step, in CPU cycles.
        wcet_cycles: Option<u64>,
    },
    /// `0x11`: start an inference.
    LlmInferStart(InferParams<'a>),
    /// `0x12`: fetch tokens produced by an inference.
    LlmInferPoll {
        /// Inference id returned by `LlmInferStart`.
        infer_id: u32,
        /// At most this many tokens in the reply.
        max: Option<u16>,
    },
    /// `0x13`: cancel an inference.
    LlmCancel {
        /// Inference id returned by `LlmInferStart`.
        infer_id: u32,
    },
}

/// Rights a command needs, checked by [`crate::auth::Authenticator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Only an ADMIN token is accepted.
    Admin,
    /// A SUBMIT or an ADMIN token is accepted.
    SubmitOrAdmin,
}

impl Command<'_> {
    /// The command byte of this command.
    pub const fn code(&self) -> CommandCode {
        match self {
            Command::LlmLoad { .. } => CommandCode::LlmLoad,
            Command::LlmInferStart(_) => CommandCode::LlmInferStart,
            Command::LlmInferPoll { .. } => CommandCode::LlmInferPoll,
            Command::LlmCancel { .. } => CommandCode::LlmCancel,
        }
    }

    /// Rights needed to run this command: `0x10` needs ADMIN, the others SUBMIT or ADMIN.
    pub const fn requirement(&self) -> Requirement {
        match self {
            Command::LlmLoad { .. } => Requirement::Admin,
            _ => Requirement::SubmitOrAdmin,
        }
    }
}

/// A well-formed request: version, token, optional sequence number and command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Version the request was (or is to be) encoded with.
    pub version: Version,
    /// The token (first 8 payload bytes, u64 little-endian).
    pub token: u64,
    /// v1 only: request sequence number chosen by the host, the same on every retry of one
    /// request so the guest may answer a duplicate from a cache. `0` = no deduplication.
    /// Always `0` in v0.
    pub seq: u32,
    /// The command and its arguments.
    pub command: Command<'a>,
}

impl Request<'_> {
    /// The oldest version able to carry this request (v0 whenever possible, for seed
    /// compatibility), or `None` if no version can (e.g. an oversize prompt).
    pub fn min_version(&self) -> Option<Version> {
        [Version::V0, Version::V1]
            .into_iter()
            .find(|&v| encode::check_representable(self, v).is_ok())
    }
}

/// Why a delimited frame was not a well-formed request. Each maps to one reply code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The payload does not match the command's layout (reply `ERR 0x01`).
    BadFrame(BadFrameReason),
    /// Unknown command byte (reply `ERR 0x02`).
    Unsupported,
    /// `len` exceeds the version's limit (reply `ERR 0x04`).
    Oversize {
        /// The declared payload length.
        len: u32,
    },
}

/// Detail of a [`FrameError::BadFrame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadFrameReason {
    /// Payload shorter than the token (and sequence number in v1).
    MissingToken,
    /// Payload length is not one the command allows.
    BadLength,
    /// Flags set that this version/command does not define.
    BadFlags,
    /// `max_tokens` is zero.
    ZeroMaxTokens,
    /// Prompt is empty.
    EmptyPrompt,
    /// Prompt is not valid UTF-8.
    BadUtf8,
    /// Temperature above [`MAX_TEMPERATURE_MILLI`].
    BadTemperature,
    /// Top-p above 1000.
    BadTopP,
    /// Seed above [`MAX_SEED`].
    BadSeed,
    /// Min-p above [`MAX_MIN_P_MILLI`].
    BadMinP,
    /// Repeat penalty outside `1..=`[`MAX_REPEAT_PENALTY_MILLI`].
    BadRepeatPenalty,
    /// A stop block with no or too many strings, an empty or too long one, or bad UTF-8.
    BadStop,
    /// A system message that is empty, longer than [`MAX_SYSTEM`], not UTF-8, or given
    /// without [`FLAG_CHAT`].
    BadSystem,
    /// A session without [`FLAG_CHAT`].
    BadSession,
}

impl FrameError {
    /// The reply error code for this frame error.
    pub const fn code(&self) -> crate::reply::ErrorCode {
        use crate::reply::ErrorCode;
        match self {
            FrameError::BadFrame(_) => ErrorCode::BadFrame,
            FrameError::Unsupported => ErrorCode::Unsupported,
            FrameError::Oversize { .. } => ErrorCode::Oversize,
        }
    }
}
