//! Reply lines sent from the guest to the host: error codes, a no-alloc formatter and a
//! zero-copy parser.
//!
//! Grammar (each line ends in `\n`; `<esc>` is escaped text, see [`Escaped`] and docs/frames.md §5.1):
//!
//! ```text
//! OK[ key=value]*                                   success, e.g. `OK`, `OK id=3`
//! ERR 0xNN[ key=value]*                             error, e.g. `ERR 0x07 retry_ms=1500`
//! OK TOK id=<u32> n=<count> done=<0|1>[ end=<reason>[ code=0xNN]] plen=<u32> model=<esc> items=<esc>[|<esc>]*
//! STREAM id=<u32> i=<u32> tok=<esc>                 one streamed token
//! END id=<u32> n=<u32> reason=<eos|max|cancel|fail>[ code=0xNN][ prompt=<u32> reused=<u32>]
//! ```
//!
//! Inline values never contain a raw space; the last field of `OK TOK` (`items=`) and of
//! `STREAM` (`tok=`) runs to the end of the line and keeps spaces literal.

mod escape;
mod format;
mod parse;
mod replay;

pub use escape::{escaped_len, Escaped, Unescape, UnescapeError};
pub use format::{
    write_end, write_err, write_ok, write_poll, write_stream_token, Field, FormatError, PollInfo,
    PollWritten, Value,
};
pub use parse::{parse_reply, Fields, Items, ParseError, Poll, Reply};
pub use replay::{ReplayCache, ReplayStats};

use crate::auth::Decision;
use crate::codec::Rejected;

/// `ERR 0xNN\n` for a rejected frame.
pub fn write_rejected(out: &mut [u8], rejected: &Rejected) -> Result<usize, FormatError> {
    write_err(out, rejected.error.code(), &[])
}

/// The refusal line for an auth decision: `ERR 0x05` for a bad token or missing rights,
/// `ERR 0x07 retry_ms=<ms>` when rate limited; `Ok(None)` when the request was allowed.
pub fn write_refusal(out: &mut [u8], decision: &Decision) -> Result<Option<usize>, FormatError> {
    match (decision, decision.error_code()) {
        (_, None) => Ok(None),
        (Decision::RateLimited { retry_after_ms }, Some(code)) => {
            write_err(out, code, &[Field::num("retry_ms", *retry_after_ms)]).map(Some)
        }
        (_, Some(code)) => write_err(out, code, &[]).map(Some),
    }
}

/// Error codes of `ERR 0xNN` replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// `0x01`: the frame is malformed (payload layout, flags, field ranges).
    BadFrame = 0x01,
    /// `0x02`: unknown command.
    Unsupported = 0x02,
    /// `0x03`: no model is loaded (send `LlmLoad` first).
    NoGraph = 0x03,
    /// `0x04`: payload longer than the version allows.
    Oversize = 0x04,
    /// `0x05`: bad token or insufficient rights (deliberately not told apart).
    AuthFailed = 0x05,
    /// `0x06`: the LLM partition is stopped or restarting; retry later.
    Unavailable = 0x06,
    /// `0x07`: too many failed auth attempts; everything is refused for a back-off period.
    RateLimited = 0x07,
    /// `0x08`: unknown inference id.
    NotFound = 0x08,
    /// `0x09`: the LLM partition cannot take more work now (queue or table full).
    Busy = 0x09,
    /// `0x0A`: the request was accepted but failed inside the guest.
    Internal = 0x0A,
    /// `0x0B`: the prompt and `max_tokens` do not fit the model's context.
    ContextFull = 0x0B,
    /// `0x0C`: the conversation was evicted (least recently used) to make room; open a new one.
    SessionEvicted = 0x0C,
}

impl ErrorCode {
    /// Every defined code, in numeric order.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::BadFrame,
        ErrorCode::Unsupported,
        ErrorCode::NoGraph,
        ErrorCode::Oversize,
        ErrorCode::AuthFailed,
        ErrorCode::Unavailable,
        ErrorCode::RateLimited,
        ErrorCode::NotFound,
        ErrorCode::Busy,
        ErrorCode::Internal,
        ErrorCode::ContextFull,
        ErrorCode::SessionEvicted,
    ];

    /// The code for a byte, if defined.
    pub fn from_u8(b: u8) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| *c as u8 == b)
    }

    /// A short human-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad frame",
            ErrorCode::Unsupported => "unsupported command",
            ErrorCode::NoGraph => "no model loaded",
            ErrorCode::Oversize => "payload too long",
            ErrorCode::AuthFailed => "authentication failed",
            ErrorCode::Unavailable => "LLM partition unavailable",
            ErrorCode::RateLimited => "rate limited",
            ErrorCode::NotFound => "unknown inference id",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal error",
            ErrorCode::ContextFull => "prompt too long for the model's context",
            ErrorCode::SessionEvicted => "session evicted (least recently used); open a new one",
        }
    }
}

/// Why a streamed inference ended (`END ... reason=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The model produced its end-of-sequence token.
    Eos,
    /// `max_tokens` were produced.
    Max,
    /// Cancelled by `LlmCancel`.
    Cancel,
    /// Failed (an `ERR` code follows in `code=`).
    Fail,
}

impl EndReason {
    /// The wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Eos => "eos",
            EndReason::Max => "max",
            EndReason::Cancel => "cancel",
            EndReason::Fail => "fail",
        }
    }

    /// Parse the wire word.
    pub fn from_wire(s: &[u8]) -> Option<EndReason> {
        [
            EndReason::Eos,
            EndReason::Max,
            EndReason::Cancel,
            EndReason::Fail,
        ]
        .into_iter()
        .find(|r| r.as_str().as_bytes() == s)
    }
}
