//! Payload parsing: turns a delimited frame (version, command, flags, payload) into a typed
//! [`Request`] or says exactly why it is not one.

use super::{
    BadFrameReason, Command, CommandCode, FrameError, InferParams, Request, Sampling, Stops,
    Version, FLAG_CHAT, FLAG_SAMPLING, FLAG_SESSION, FLAG_STOP, FLAG_STREAM, FLAG_SYSTEM,
    MAX_PROMPT_V1, MAX_STOPS, MAX_STOP_LEN, MAX_SYSTEM,
};

/// A little-endian reader over a payload that never reads out of bounds.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take::<2>().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    /// An optional trailing field: absent if nothing is left, an error if a partial field
    /// is left.
    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Result<Option<T>, ()> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        read(self).map(Some).ok_or(())
    }
    fn finish(&self) -> Result<(), ()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(())
        }
    }
}

const fn bad(reason: BadFrameReason) -> FrameError {
    FrameError::BadFrame(reason)
}

const BAD_LEN: FrameError = bad(BadFrameReason::BadLength);

/// The stop block (see [`FLAG_STOP`]).
fn read_stops<'a>(r: &mut Reader<'a>) -> Result<Stops<'a>, FrameError> {
    let bad_stop = bad(BadFrameReason::BadStop);
    let [n] = r.take::<1>().ok_or(BAD_LEN)?;
    let n = usize::from(n);
    if n == 0 || n > MAX_STOPS {
        return Err(bad_stop);
    }
    let mut items = [""; MAX_STOPS];
    for item in items.iter_mut().take(n) {
        let [len] = r.take::<1>().ok_or(BAD_LEN)?;
        let len = usize::from(len);
        if len == 0 || len > MAX_STOP_LEN {
            return Err(bad_stop);
        }
        let bytes = r.rest.get(..len).ok_or(BAD_LEN)?;
        r.rest = &r.rest[len..];
        *item = core::str::from_utf8(bytes).map_err(|_| bad_stop)?;
    }
    Stops::new(&items[..n]).ok_or(bad_stop)
}

/// Parse the payload of a delimited frame whose `len` was within the version's limit.
///
/// Checks, in order: known command (else [`FrameError::Unsupported`]), token (and v1
/// sequence number) present, flags allowed, exact payload layout and field ranges.
pub fn parse_payload(
    version: Version,
    cmd: u8,
    flags: u8,
    payload: &[u8],
) -> Result<Request<'_>, FrameError> {
    let code = CommandCode::from_u8(cmd).ok_or(FrameError::Unsupported)?;
    if payload.len() < version.prefix_len() {
        return Err(bad(BadFrameReason::MissingToken));
    }
    let mut r = Reader { rest: payload };
    let token = r.u64().ok_or(bad(BadFrameReason::MissingToken))?;
    let seq = match version {
        Version::V0 => 0,
        Version::V1 => r.u32().ok_or(bad(BadFrameReason::MissingToken))?,
    };
    let allowed_flags = match (version, code) {
        (Version::V1, CommandCode::LlmInferStart) => {
            FLAG_STREAM | FLAG_CHAT | FLAG_SAMPLING | FLAG_STOP | FLAG_SYSTEM | FLAG_SESSION
        }
        _ => 0,
    };
    if flags & !allowed_flags != 0 {
        return Err(bad(BadFrameReason::BadFlags));
    }
    let command = match code {
        CommandCode::LlmLoad => {
            let wcet_cycles = r.optional(Reader::u64).map_err(|_| BAD_LEN)?;
            r.finish().map_err(|_| BAD_LEN)?;
            Command::LlmLoad { wcet_cycles }
        }
        CommandCode::LlmInferStart => {
            let max_tokens = r.u16().ok_or(BAD_LEN)?;
            let sampling = match version {
                Version::V0 => Sampling::GREEDY,
                Version::V1 => {
                    let mut s = Sampling {
                        temperature_milli: r.u16().ok_or(BAD_LEN)?,
                        top_p_milli: r.u16().ok_or(BAD_LEN)?,
                        seed: r.u64().ok_or(BAD_LEN)?,
                        ..Sampling::GREEDY
                    };
                    if flags & FLAG_SAMPLING != 0 {
                        s.top_k = r.u32().ok_or(BAD_LEN)?;
                        s.min_p_milli = r.u16().ok_or(BAD_LEN)?;
                        s.repeat_penalty_milli = r.u16().ok_or(BAD_LEN)?;
                        s.repeat_last_n = r.u32().ok_or(BAD_LEN)?;
                        if !s.needs_block() {
                            // Not canonical: the same request without the block is shorter.
                            return Err(bad(BadFrameReason::BadFlags));
                        }
                    }
                    s
                }
            };
            let stop = if flags & FLAG_STOP != 0 {
                read_stops(&mut r)?
            } else {
                Stops::NONE
            };
            let system = if flags & FLAG_SYSTEM != 0 {
                let bad_system = bad(BadFrameReason::BadSystem);
                let len = usize::from(r.u16().ok_or(BAD_LEN)?);
                if len == 0 || len > MAX_SYSTEM || flags & FLAG_CHAT == 0 {
                    return Err(bad_system);
                }
                let bytes = r.rest.get(..len).ok_or(BAD_LEN)?;
                r.rest = &r.rest[len..];
                core::str::from_utf8(bytes).map_err(|_| bad_system)?
            } else {
                ""
            };
            let session = if flags & FLAG_SESSION != 0 {
                if flags & FLAG_CHAT == 0 {
                    return Err(bad(BadFrameReason::BadSession));
                }
                Some(r.u64().ok_or(BAD_LEN)?)
            } else {
                None
            };
            if max_tokens == 0 {
                return Err(bad(BadFrameReason::ZeroMaxTokens));
            }
            sampling.check().map_err(bad)?;
            if r.rest.is_empty() {
                return Err(bad(BadFrameReason::EmptyPrompt));
            }
            if version == Version::V1 && r.rest.len() > MAX_PROMPT_V1 {
                return Err(BAD_LEN);
            }
            let prompt = core::str::from_utf8(r.rest).map_err(|_| bad(BadFrameReason::BadUtf8))?;
            Command::LlmInferStart(InferParams {
                prompt,
                max_tokens,
                sampling,
                chat: flags & FLAG_CHAT != 0,
                stream: flags & FLAG_STREAM != 0,
                stop,
                system,
                session,
            })
        }
        CommandCode::LlmInferPoll => {
            let infer_id = r.u32().ok_or(BAD_LEN)?;
            let max = r.optional(Reader::u16).map_err(|_| BAD_LEN)?;
            r.finish().map_err(|_| BAD_LEN)?;
            Command::LlmInferPoll { infer_id, max }
        }
        CommandCode::LlmCancel => {
            let infer_id = r.u32().ok_or(BAD_LEN)?;
            r.finish().map_err(|_| BAD_LEN)?;
            Command::LlmCancel { infer_id }
        }
    };
    Ok(Request {
        version,
        token,
        seq,
        command,
    })
}
