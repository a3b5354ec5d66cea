//! The encoder: writes a [`Request`] as one frame, refusing anything the decoder would
//! reject, so an encoded frame always decodes back to the same request.

use super::{
    BadFrameReason, Command, Request, Sampling, Version, FLAG_CHAT, FLAG_SAMPLING, FLAG_SESSION,
    FLAG_STOP, FLAG_STREAM, FLAG_SYSTEM, HEADER_LEN, MAGIC, MAX_MIN_P_MILLI, MAX_PROMPT_V1,
    MAX_REPEAT_PENALTY_MILLI, MAX_SEED, MAX_SYSTEM, MAX_TEMPERATURE_MILLI, V1_SAMPLING_BLOCK,
};

/// Why a request could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is smaller than the frame (needs this many bytes).
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
    },
    /// The payload is longer than the version allows (prompt too long).
    TooLong {
        /// Payload length the request would need.
        payload_len: usize,
        /// The version's payload limit.
        max: usize,
    },
    /// The request uses a v1-only feature (sampling, chat, stream, seq) in a v0 frame.
    NeedsV1,
    /// `max_tokens` is zero.
    ZeroMaxTokens,
    /// The prompt is empty.
    EmptyPrompt,
    /// Temperature above the maximum.
    BadTemperature,
    /// Top-p above 1000.
    BadTopP,
    /// Seed above `u32::MAX`.
    BadSeed,
    /// Min-p above 1000.
    BadMinP,
    /// Repeat penalty outside `1..=10000`.
    BadRepeatPenalty,
    /// A system message longer than 256 bytes, or without `chat`.
    BadSystem,
    /// A session without `chat`.
    BadSession,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: frame needs {needed} bytes")
            }
            EncodeError::TooLong { payload_len, max } => write!(
                f,
                "payload of {payload_len} bytes exceeds the limit of {max} bytes (prompt too long)"
            ),
            EncodeError::NeedsV1 => f.write_str(
                "sampling controls, stop strings, --chat, --stream and sequence numbers need a version-1 frame",
            ),
            EncodeError::ZeroMaxTokens => f.write_str("max tokens must be at least 1"),
            EncodeError::EmptyPrompt => f.write_str("prompt must not be empty"),
            EncodeError::BadTemperature => write!(
                f,
                "temperature must be at most {}.{:03}",
                MAX_TEMPERATURE_MILLI / 1000,
                MAX_TEMPERATURE_MILLI % 1000
            ),
            EncodeError::BadTopP => f.write_str("top-p must be in [0, 1]"),
            EncodeError::BadSeed => write!(f, "seed must be at most {MAX_SEED} (32 bits)"),
            EncodeError::BadSession => f.write_str("a session needs --chat"),
            EncodeError::BadSystem => write!(
                f,
                "a system message needs --chat and is at most {MAX_SYSTEM} bytes"
            ),
            EncodeError::BadMinP => write!(
                f,
                "min-p must be in [0, {}]",
                MAX_MIN_P_MILLI / 1000
            ),
            EncodeError::BadRepeatPenalty => write!(
                f,
                "repeat penalty must be in [0.001, {}]",
                MAX_REPEAT_PENALTY_MILLI / 1000
            ),
        }
    }
}

/// Payload length of `req` when encoded with `version`.
fn payload_len(req: &Request<'_>, version: Version) -> usize {
    version.prefix_len()
        + match req.command {
            Command::LlmLoad { wcet_cycles } => wcet_cycles.map_or(0, |_| 8),
            Command::LlmInferStart(p) => {
                2 + match version {
                    Version::V0 => 0,
                    Version::V1 => {
                        12 + if p.sampling.needs_block() {
                            V1_SAMPLING_BLOCK
                        } else {
                            0
                        } + p.stop.wire_len()
                            + if p.system.is_empty() {
                                0
                            } else {
                                2 + p.system.len()
                            }
                            + if p.session.is_some() { 8 } else { 0 }
                    }
                } + p.prompt.len()
            }
            Command::LlmInferPoll { max, .. } => 4 + max.map_or(0, |_| 2),
            Command::LlmCancel { .. } => 4,
        }
}

/// Check that `req` can be carried by a `version` frame and passes every decoder check.
pub(super) fn check_representable(req: &Request<'_>, version: Version) -> Result<(), EncodeError> {
    if let Command::LlmInferStart(p) = req.command {
        if p.max_tokens == 0 {
            return Err(EncodeError::ZeroMaxTokens);
        }
        if p.prompt.is_empty() {
            return Err(EncodeError::EmptyPrompt);
        }
        if let Err(r) = p.sampling.check() {
            return Err(match r {
                BadFrameReason::BadTemperature => EncodeError::BadTemperature,
                BadFrameReason::BadTopP => EncodeError::BadTopP,
                BadFrameReason::BadSeed => EncodeError::BadSeed,
                BadFrameReason::BadMinP => EncodeError::BadMinP,
                _ => EncodeError::BadRepeatPenalty,
            });
        }
        if p.system.len() > MAX_SYSTEM || (!p.system.is_empty() && !p.chat) {
            return Err(EncodeError::BadSystem);
        }
        if p.session.is_some() && !p.chat {
            return Err(EncodeError::BadSession);
        }
        if version == Version::V0
            && (p.sampling != Sampling::GREEDY || p.chat || p.stream || !p.stop.is_empty())
        {
            return Err(EncodeError::NeedsV1);
        }
    }
    if version == Version::V0 && req.seq != 0 {
        return Err(EncodeError::NeedsV1);
    }
    let len = payload_len(req, version);
    // A v1 prompt is at most MAX_PROMPT_V1 bytes, with or without the sampling block.
    let max = match (version, req.command) {
        (Version::V1, Command::LlmInferStart(p)) => len - p.prompt.len() + MAX_PROMPT_V1,
        _ => version.max_payload(),
    };
    if len > max {
        return Err(EncodeError::TooLong {
            payload_len: len,
            max,
        });
    }
    Ok(())
}

/// Encode `req` (with `req.version`) into `out`; returns the frame length.
///
/// Fails without writing a byte if the request is not representable in its version or
/// `out` is too small.
pub fn encode(req: &Request<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let version = req.version;
    check_representable(req, version)?;
    let plen = payload_len(req, version);
    let total = HEADER_LEN + plen;
    if out.len() < total {
        return Err(EncodeError::BufferTooSmall { needed: total });
    }
    let flags = match req.command {
        Command::LlmInferStart(p) => {
            (if p.stream { FLAG_STREAM } else { 0 })
                | (if p.chat { FLAG_CHAT } else { 0 })
                | (if p.sampling.needs_block() {
                    FLAG_SAMPLING
                } else {
                    0
                })
                | (if p.stop.is_empty() { 0 } else { FLAG_STOP })
                | (if p.system.is_empty() { 0 } else { FLAG_SYSTEM })
                | (if p.session.is_some() { FLAG_SESSION } else { 0 })
        }
        _ => 0,
    };
    let mut w = Writer {
        out: &mut out[..total],
        at: 0,
    };
    w.put(&[MAGIC, version as u8, req.command.code() as u8, flags]);
    // `plen` is at most MAX_PAYLOAD_V1, far below u32::MAX.
    w.put(&(plen as u32).to_le_bytes());
    w.put(&req.token.to_le_bytes());
    if version == Version::V1 {
        w.put(&req.seq.to_le_bytes());
    }
    match req.command {
        Command::LlmLoad { wcet_cycles } => {
            if let Some(c) = wcet_cycles {
                w.put(&c.to_le_bytes());
            }
        }
        Command::LlmInferStart(p) => {
            w.put(&p.max_tokens.to_le_bytes());
            if version == Version::V1 {
                w.put(&p.sampling.temperature_milli.to_le_bytes());
                w.put(&p.sampling.top_p_milli.to_le_bytes());
                w.put(&p.sampling.seed.to_le_bytes());
                if p.sampling.needs_block() {
                    w.put(&p.sampling.top_k.to_le_bytes());
                    w.put(&p.sampling.min_p_milli.to_le_bytes());
                    w.put(&p.sampling.repeat_penalty_milli.to_le_bytes());
                    w.put(&p.sampling.repeat_last_n.to_le_bytes());
                }
                if !p.stop.is_empty() {
                    let list = p.stop.as_slice();
                    // Lengths were checked when the `Stops` was made (at most 4 of <= 64 bytes).
                    w.put(&[list.len() as u8]);
                    for s in list {
                        w.put(&[s.len() as u8]);
                        w.put(s.as_bytes());
                    }
                }
                if !p.system.is_empty() {
                    // At most MAX_SYSTEM (256) bytes, checked above.
                    w.put(&(p.system.len() as u16).to_le_bytes());
                    w.put(p.system.as_bytes());
                }
                if let Some(id) = p.session {
                    w.put(&id.to_le_bytes());
                }
            }
            w.put(p.prompt.as_bytes());
        }
        Command::LlmInferPoll { infer_id, max } => {
            w.put(&infer_id.to_le_bytes());
            if let Some(m) = max {
                w.put(&m.to_le_bytes());
            }
        }
        Command::LlmCancel { infer_id } => w.put(&infer_id.to_le_bytes()),
    }
    debug_assert_eq!(w.at, total);
    Ok(total)
}

/// Sequential writer over a buffer already sized to the frame.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}
