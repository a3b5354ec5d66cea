//! The link to the LLM partition: allowed host requests become ring requests, ring responses
//! become host replies.
//!
//! - `0x10` load → `Request::Load`; `Ack` → `OK`.
//! - `0x11` infer → a job id from [`Jobs`], `Request::Infer` with the ring `STREAM` flag
//!   always set (tokens come back as they are produced); the LLM partition answers once it has
//!   admitted the job: `Ack` → `OK id=<id>`, or `Error` (no model: `ERR 0x03`; prompt too long
//!   for the context: `ERR 0x0b`; a value out of the engine's range: `ERR 0x01`). A host-streamed
//!   inference (frame `FLAG_STREAM`) gets a `STREAM` line per chunk and an `END` line; the
//!   others keep their tokens for poll.
//!   With `FLAG_SESSION` the turn belongs to a conversation: id 0 opens one with an id drawn
//!   from the entropy source ([`RingPort::entropy`]), answered `OK id=<id> session=<id>`; the
//!   stream's `END` then says `prompt=<tokens> reused=<tokens from the KV cache>`.
//! - `0x12` poll → answered at once from the tokens received so far (no ring round trip).
//! - `0x13` cancel → `Request::Cancel`; `Ack` → `OK`. A finished job answers `OK` at once.
//! - `Error` responses map to reply codes ([`reply_code`]). A request that cannot be sent (no
//!   channel, LLM partition stopped: the doorbell is refused) is answered `ERR 0x06` at once; a
//!   full ring `ERR 0x09`; no answer within the control loop's timeout `ERR 0x06`.
//!
//! The ring itself is behind [`RingPort`]: the guest publishes on the shared ring, a test or the
//! host tool's mock answers with a stand-in LLM partition.

use shared_ring::message::{
    DoneStatus, ErrorCode as RingError, InferFlags, InferRequest, Milli, Sampling, SessionRef,
    StopList, MAX_PROMPT, MAX_STOPS,
};
use shared_ring::{Request as RingRequest, Response};
use sis_frame::codec::{Command, Request};
use sis_frame::reply::{
    write_end, write_err, write_ok, write_stream_token, EndReason, ErrorCode, Field,
};

use crate::control::{Control, Forwarded, HostOut, LlmLink, Ticket};
use crate::jobs::{Arrived, JobStats, Jobs};

/// Requests waiting for their `Ack`/`Error`.
const PENDING: usize = 64;
/// A running job that produced nothing for this long is ended `fail` (code 0x06): the LLM
/// partition stopped or restarted under it.
pub const JOB_IDLE_MS: u64 = 30_000;

/// Why a request was not published on the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendRefused {
    /// The LLM partition cannot be reached (stopped, doorbell refused, channel not started).
    Unreachable,
    /// The request ring is full.
    RingFull,
    /// The request could not be encoded or published for another reason.
    Internal,
}

/// The request direction of the shared ring, as the link sees it.
pub trait RingPort {
    /// Publishes `req` for the LLM partition (ringing its doorbell); returns the request's ring
    /// sequence number, which its `Ack`/`Error` names as `req_seq`.
    ///
    /// # Errors
    /// [`SendRefused`]: nothing was published.
    fn send(&mut self, req: &RingRequest) -> Result<u64, SendRefused>;

    /// A value nobody can guess (the control guest's virtio-rng), for the id of a conversation
    /// the host opens; `None` if there is no entropy source (then no conversation is opened).
    fn entropy(&mut self) -> Option<u64>;
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Load,
    Infer { id: u32, session: Option<u64> },
    Cancel { id: u32 },
}

#[derive(Clone, Copy)]
struct Pending {
    seq: u64,
    kind: Kind,
    at_ms: u64,
}

/// Link counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Requests published on the ring.
    pub sent: u64,
    /// Requests refused at once because the LLM partition could not be reached.
    pub unreachable: u64,
    /// Requests refused because the ring was full.
    pub ring_full: u64,
    /// Responses handled.
    pub responses: u64,
    /// `Ack`/`Error` responses for no pending request.
    pub unmatched: u64,
    /// Pending requests forgotten to make room (their frames had long been answered).
    pub forgotten: u64,
    /// `STREAM`/`END` lines the host queue dropped.
    pub stream_drops: u64,
}

/// The link's state: pending requests and the job table.
pub struct Link {
    pending: [Option<Pending>; PENDING],
    jobs: Jobs,
    stats: LinkStats,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

/// The reply code for a ring error.
pub fn reply_code(e: RingError) -> ErrorCode {
    ErrorCode::from_u8(e.host_code()).unwrap_or(ErrorCode::Internal)
}

/// The ring's stop list for a frame's (`None` if one does not fit, which the frame's own
/// limits rule out).
pub fn ring_stops(s: &sis_frame::codec::Stops<'_>) -> Option<StopList> {
    s.as_slice()
        .iter()
        .map(|t| heapless::String::try_from(*t).ok())
        .collect::<Option<heapless::Vec<_, MAX_STOPS>>>()
}

/// The ring's sampling controls for a frame's (the same values; the frame decoder checked
/// the wire ranges, the LLM partition checks the engine's).
pub fn ring_sampling(s: &sis_frame::codec::Sampling) -> Sampling {
    Sampling {
        temp: Milli(s.temperature_milli),
        top_k: s.top_k,
        top_p: Milli(s.top_p_milli),
        min_p: Milli(s.min_p_milli),
        repeat_penalty: Milli(s.repeat_penalty_milli),
        repeat_last_n: s.repeat_last_n,
        seed: s.seed,
    }
}

impl Link {
    /// No pending request, no job.
    pub const fn new() -> Self {
        Link {
            pending: [None; PENDING],
            jobs: Jobs::new(),
            stats: LinkStats {
                sent: 0,
                unreachable: 0,
                ring_full: 0,
                responses: 0,
                unmatched: 0,
                forgotten: 0,
                stream_drops: 0,
            },
        }
    }

    /// Counters: the link's, the job table's, and the jobs running.
    pub fn stats(&self) -> (LinkStats, JobStats, usize) {
        (self.stats, self.jobs.stats(), self.jobs.running())
    }

    fn remember(&mut self, seq: u64, kind: Kind, now_ms: u64) {
        let slot = match self.pending.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.stats.forgotten += 1;
                self.pending
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| p.map_or(0, |p| p.at_ms))
                    .map_or(0, |(i, _)| i)
            }
        };
        self.pending[slot] = Some(Pending {
            seq,
            kind,
            at_ms: now_ms,
        });
    }

    fn take(&mut self, seq: u64) -> Option<Kind> {
        let i = self
            .pending
            .iter()
            .position(|p| p.is_some_and(|p| p.seq == seq))?;
        self.pending[i].take().map(|p| p.kind)
    }

    fn send(
        &mut self,
        port: &mut dyn RingPort,
        req: &RingRequest,
        kind: Kind,
        now_ms: u64,
    ) -> Forwarded {
        match port.send(req) {
            Ok(seq) => {
                self.stats.sent += 1;
                self.remember(seq, kind, now_ms);
                Forwarded::Wait(seq)
            }
            Err(SendRefused::RingFull) => {
                self.stats.ring_full += 1;
                Forwarded::Err(ErrorCode::Busy)
            }
            Err(SendRefused::Internal) => Forwarded::Err(ErrorCode::Internal),
            Err(SendRefused::Unreachable) => {
                self.stats.unreachable += 1;
                Forwarded::Err(ErrorCode::Unavailable)
            }
        }
    }

    /// Handles an allowed request (see the module documentation); `line` is the reply buffer
    /// for an answer given at once.
    pub fn forward(
        &mut self,
        port: &mut dyn RingPort,
        req: &Request<'_>,
        now_ms: u64,
        line: &mut [u8],
    ) -> Forwarded {
        match req.command {
            Command::LlmLoad { wcet_cycles } => self.send(
                port,
                &RingRequest::Load {
                    wcet_cycles: wcet_cycles.unwrap_or(0),
                },
                Kind::Load,
                now_ms,
            ),
            Command::LlmInferStart(p) => {
                let Ok(prompt) = heapless::String::<MAX_PROMPT>::try_from(p.prompt) else {
                    // Valid v1 frame, but longer than a ring request carries.
                    return Forwarded::Err(ErrorCode::BadFrame);
                };
                let session = match p.session {
                    None => None,
                    // A new conversation: its id comes from the entropy source (never 0).
                    Some(0) => match port.entropy() {
                        Some(id) => Some(SessionRef {
                            id: id.max(1),
                            open: true,
                        }),
                        None => return Forwarded::Err(ErrorCode::Internal),
                    },
                    Some(id) => Some(SessionRef { id, open: false }),
                };
                let plen = p.prompt.len() as u32;
                let Some(id) = self.jobs.start(p.stream, plen, p.max_tokens, now_ms) else {
                    return Forwarded::Err(ErrorCode::Busy);
                };
                self.jobs.set_session(id, session.is_some());
                let mut flags = InferFlags::STREAM;
                if p.chat {
                    flags |= InferFlags::CHAT;
                }
                if p.stream {
                    flags |= InferFlags::HOST_STREAM;
                }
                let (Some(stop), Ok(system)) =
                    (ring_stops(&p.stop), heapless::String::try_from(p.system))
                else {
                    // Outside the ring's limits (the frame's own limits rule it out).
                    self.jobs.remove(id);
                    return Forwarded::Err(ErrorCode::BadFrame);
                };
                let ring = RingRequest::Infer(InferRequest {
                    id,
                    max_tokens: p.max_tokens,
                    sampling: ring_sampling(&p.sampling),
                    flags: InferFlags(flags),
                    stop,
                    system,
                    session,
                    prompt,
                });
                let kind = Kind::Infer {
                    id,
                    session: session.map(|s| s.id),
                };
                let r = self.send(port, &ring, kind, now_ms);
                if !matches!(r, Forwarded::Wait(_)) {
                    self.jobs.remove(id);
                }
                r
            }
            Command::LlmInferPoll { infer_id, max } => match self.jobs.poll(infer_id, max, line) {
                Ok(n) => Forwarded::Line(n),
                Err(code) => Forwarded::Err(code),
            },
            Command::LlmCancel { infer_id } => {
                if self.jobs.end_of(infer_id).is_some() {
                    // Already finished: nothing to stop, and the host learns it is over.
                    return Forwarded::Line(write_ok(line, &[]).unwrap_or(0));
                }
                self.send(
                    port,
                    &RingRequest::Cancel { id: infer_id },
                    Kind::Cancel { id: infer_id },
                    now_ms,
                )
            }
        }
    }

    /// A response from the LLM partition: completes the waiting frame's reply in `control`, or
    /// turns tokens and ends into `STREAM`/`END` lines (behind pending replies).
    pub fn on_response(
        &mut self,
        msg: Response,
        now_ms: u64,
        control: &mut Control,
        host: &mut dyn HostOut,
    ) {
        self.stats.responses += 1;
        let mut line = [0u8; 512];
        match msg {
            Response::Ack { req_seq } => {
                let n = match self.take(req_seq) {
                    Some(Kind::Load) => write_ok(&mut line, &[]),
                    Some(Kind::Infer { id, session: None }) => {
                        write_ok(&mut line, &[Field::num("id", u64::from(id))])
                    }
                    Some(Kind::Infer {
                        id,
                        session: Some(s),
                    }) => write_ok(
                        &mut line,
                        &[Field::num("id", u64::from(id)), Field::num("session", s)],
                    ),
                    Some(Kind::Cancel { id }) => {
                        let _ = self.jobs.finish(id, EndReason::Cancel, None, now_ms);
                        write_ok(&mut line, &[])
                    }
                    None => {
                        self.stats.unmatched += 1;
                        return;
                    }
                };
                control.llm_reply(req_seq as Ticket, &line[..n.unwrap_or(0)], host);
            }
            Response::Error { req_seq, code } => {
                match self.take(req_seq) {
                    Some(Kind::Infer { id, .. }) => self.jobs.remove(id),
                    Some(_) => {}
                    None => {
                        self.stats.unmatched += 1;
                        return;
                    }
                }
                let n = write_err(&mut line, reply_code(code), &[]).unwrap_or(0);
                control.llm_reply(req_seq as Ticket, &line[..n], host);
            }
            Response::Tokens { id, n, text } => {
                if let Arrived::Stream { index } = self.jobs.tokens(id, n, text.as_slice(), now_ms)
                {
                    let len =
                        write_stream_token(&mut line, id, index, text.as_slice()).unwrap_or(0);
                    if len == 0 || !control.send_extra(&line[..len], host) {
                        self.stats.stream_drops += 1;
                    }
                }
            }
            Response::Done(d) => {
                let failed = d.status.0 & DoneStatus::REJECT != 0;
                let (reason, code) = if failed {
                    (
                        EndReason::Fail,
                        Some(d.error.map_or(ErrorCode::Internal, reply_code)),
                    )
                } else {
                    (self.jobs.natural_end(d.id, d.tokens), None)
                };
                let conversation = self.jobs.has_session(d.id);
                if let Some((tokens, true)) = self.jobs.finish(d.id, reason, code, now_ms) {
                    let end = self.jobs.end_of(d.id).unwrap_or(reason);
                    let code = self.jobs.code_of(d.id);
                    let prefill = conversation.then_some((d.prompt_len, d.reused));
                    let len = write_end(&mut line, d.id, tokens, end, code, prefill).unwrap_or(0);
                    if len == 0 || !control.send_extra(&line[..len], host) {
                        self.stats.stream_drops += 1;
                    }
                }
            }
            Response::Status(_) | Response::Pong { .. } => {}
        }
    }

    /// Ends running jobs that produced nothing for [`JOB_IDLE_MS`] (the LLM partition went
    /// away without the hypervisor saying so): `END ... reason=fail code=0x06` for the
    /// host-streamed ones, `done=1 end=fail code=0x06` for a poll of the others.
    pub fn expire(&mut self, now_ms: u64, control: &mut Control, host: &mut dyn HostOut) {
        let Some(cutoff) = now_ms.checked_sub(JOB_IDLE_MS) else {
            return;
        };
        self.end_running(cutoff, control, host);
    }

    /// Ends every running job the same way: the LLM partition stopped or restarted, so none
    /// of them will produce anything more.
    pub fn fail_running(&mut self, control: &mut Control, host: &mut dyn HostOut) {
        self.end_running(u64::MAX, control, host);
    }

    fn end_running(&mut self, cutoff: u64, control: &mut Control, host: &mut dyn HostOut) {
        let mut drops = 0;
        self.jobs.expire(cutoff, |id, tokens, streamed| {
            if streamed {
                let mut line = [0u8; 96];
                let n = write_end(
                    &mut line,
                    id,
                    tokens,
                    EndReason::Fail,
                    Some(ErrorCode::Unavailable),
                    None,
                )
                .unwrap_or(0);
                if n == 0 || !control.send_extra(&line[..n], host) {
                    drops += 1;
                }
            }
        });
        self.stats.stream_drops += drops;
    }
}

/// A [`Link`] with the ring it publishes on: what the control loop forwards allowed requests to.
pub struct Forwarder<'a> {
    /// The link.
    pub link: &'a mut Link,
    /// The ring.
    pub port: &'a mut dyn RingPort,
}

impl LlmLink for Forwarder<'_> {
    fn forward(&mut self, req: &Request<'_>, now_ms: u64, line: &mut [u8]) -> Forwarded {
        self.link.forward(self.port, req, now_ms, line)
    }
}
