//! Forwarding allowed host requests to the LLM partition over the shared ring, and turning its
//! responses into host replies.
//!
//! - `0x10` load → `Request::Load`; `Ack` → `OK`.
//! - `0x11` infer → a job id from [`Jobs`], `Request::Infer` with the ring `STREAM` flag
//!   always set (tokens come back as they are produced); `Ack` → `OK id=<id>`. A host-streamed
//!   inference (frame `FLAG_STREAM`) gets a `STREAM` line per chunk and an `END` line; the
//!   others keep their tokens for poll.
//! - `0x12` poll → answered at once from the tokens received so far (no ring round trip).
//! - `0x13` cancel → `Request::Cancel`; `Ack` → `OK`.
//! - `Error` responses map to reply codes ([`reply_code`]). A request that cannot be sent (no
//!   channel, LLM partition stopped: the doorbell is refused) is answered `ERR 0x06` at once; a
//!   full ring `ERR 0x09`; no answer within the control loop's timeout `ERR 0x06`.
//!
//! Locks: `VCON` → `CONTROL` → [`LINK`], the same order everywhere.

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::channel::ctl::{self, ResponseHandler, SendFail};
use guest_rt::channel::doorbell::{self, DoorbellError};
use guest_rt::sync::IrqMutex;
use shared_ring::message::{ErrorCode as RingError, InferFlags, InferRequest, Milli, MAX_PROMPT};
use shared_ring::{Received, Request as RingRequest, Response, SendError};
use sis_frame::codec::{Command, Request};
use sis_frame::reply::{
    write_end, write_err, write_ok, write_stream_token, EndReason, ErrorCode, Field,
};

use crate::control::{Control, Forwarded, HostOut, LlmLink, Ticket};
use crate::hostctl::{self, CONTROL, VCON};
use crate::jobs::{Arrived, JobStats, Jobs};

/// Requests waiting for their `Ack`/`Error`.
const PENDING: usize = 64;
/// A running job that produced nothing for this long is ended `fail` (code 0x06): the LLM
/// partition stopped or restarted under it.
pub const JOB_IDLE_MS: u64 = 30_000;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Load,
    Infer { id: u32 },
    Cancel { id: u32 },
}

#[derive(Clone, Copy)]
struct Pending {
    seq: u64,
    kind: Kind,
    at_ms: u64,
}

/// Link counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkStats {
    /// Requests published on the ring.
    pub sent: u64,
    /// Requests refused at once because the LLM partition could not be reached.
    pub unreachable: u64,
    /// Requests refused because the ring was full.
    pub ring_full: u64,
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

/// The link, shared by the console interrupt, the doorbell interrupt and the tick.
pub static LINK: IrqMutex<Link> = IrqMutex::new(Link {
    pending: [None; PENDING],
    jobs: Jobs::new(),
    stats: LinkStats {
        sent: 0,
        unreachable: 0,
        ring_full: 0,
        unmatched: 0,
        forgotten: 0,
        stream_drops: 0,
    },
});

/// Responses handled.
static RESPONSES: AtomicU64 = AtomicU64::new(0);

/// The reply code for a ring error.
pub fn reply_code(e: RingError) -> ErrorCode {
    match e {
        RingError::BadRequest => ErrorCode::BadFrame,
        RingError::NoModel => ErrorCode::NoGraph,
        RingError::UnknownId => ErrorCode::NotFound,
        RingError::Rejected | RingError::Busy => ErrorCode::Busy,
        RingError::Cancelled | RingError::Internal => ErrorCode::Internal,
        RingError::Unavailable => ErrorCode::Unavailable,
    }
}

impl Link {
    /// Counters (link, jobs).
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

    fn send(&mut self, req: &RingRequest, kind: Kind, now_ms: u64) -> Forwarded {
        // Ask the hypervisor first whether the LLM VM runs (a doorbell to a stopped VM is
        // refused; an extra one to a running VM only makes it look at its ring): a request
        // published while it is stopped would run after it comes back although the host was
        // told it failed.
        if let Err(DoorbellError::PeerStopped) = doorbell::ring_peer() {
            self.stats.unreachable += 1;
            return Forwarded::Err(ErrorCode::Unavailable);
        }
        match ctl::send(req) {
            Ok(seq) => {
                self.stats.sent += 1;
                self.remember(seq, kind, now_ms);
                Forwarded::Wait(seq)
            }
            Err(SendFail::Ring(SendError::Full)) => {
                self.stats.ring_full += 1;
                Forwarded::Err(ErrorCode::Busy)
            }
            Err(SendFail::Ring(_)) => Forwarded::Err(ErrorCode::Internal),
            Err(SendFail::NotStarted | SendFail::NotDelivered { .. }) => {
                self.stats.unreachable += 1;
                Forwarded::Err(ErrorCode::Unavailable)
            }
        }
    }
}

impl LlmLink for Link {
    fn forward(&mut self, req: &Request<'_>, now_ms: u64, line: &mut [u8]) -> Forwarded {
        match req.command {
            Command::LlmLoad { wcet_cycles } => self.send(
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
                let plen = p.prompt.len() as u32;
                let Some(id) = self.jobs.start(p.stream, plen, p.max_tokens, now_ms) else {
                    return Forwarded::Err(ErrorCode::Busy);
                };
                let mut flags = InferFlags::STREAM;
                if p.chat {
                    flags |= InferFlags::CHAT;
                }
                if p.stream {
                    flags |= InferFlags::HOST_STREAM;
                }
                let ring = RingRequest::Infer(InferRequest {
                    id,
                    max_tokens: p.max_tokens,
                    temp: Milli(p.sampling.temperature_milli),
                    seed: p.sampling.seed,
                    flags: InferFlags(flags),
                    prompt,
                });
                let r = self.send(&ring, Kind::Infer { id }, now_ms);
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
                    &RingRequest::Cancel { id: infer_id },
                    Kind::Cancel { id: infer_id },
                    now_ms,
                )
            }
        }
    }
}

/// Drops lines when no console is bound.
struct Discard;

impl HostOut for Discard {
    fn send_line(&mut self, _line: &[u8]) -> bool {
        false
    }
}

struct Handler;

impl ResponseHandler for Handler {
    fn on_response(&self, response: Received<Response>) {
        on_response(response.msg);
    }
}

static HANDLER: Handler = Handler;

/// Installs the response handler on the channel endpoint.
pub fn init() {
    ctl::set_response_handler(&HANDLER);
}

fn on_response(msg: Response) {
    RESPONSES.fetch_add(1, Ordering::Relaxed);
    let now = hostctl::now();
    let mut vg = VCON.lock();
    let mut discard = Discard;
    let host: &mut dyn HostOut = match vg.as_mut() {
        Some(v) => v,
        None => &mut discard,
    };
    let mut c = CONTROL.lock();
    let mut l = LINK.lock();
    let mut line = [0u8; 512];
    match msg {
        Response::Ack { req_seq } => {
            let n = match l.take(req_seq) {
                Some(Kind::Load) => write_ok(&mut line, &[]),
                Some(Kind::Infer { id }) => write_ok(&mut line, &[Field::num("id", u64::from(id))]),
                Some(Kind::Cancel { id }) => {
                    let _ = l.jobs.finish(id, EndReason::Cancel, now.ms);
                    write_ok(&mut line, &[])
                }
                None => {
                    l.stats.unmatched += 1;
                    return;
                }
            };
            c.llm_reply(req_seq as Ticket, &line[..n.unwrap_or(0)], host);
        }
        Response::Error { req_seq, code } => {
            match l.take(req_seq) {
                Some(Kind::Infer { id }) => l.jobs.remove(id),
                Some(_) => {}
                None => {
                    l.stats.unmatched += 1;
                    return;
                }
            }
            let n = write_err(&mut line, reply_code(code), &[]).unwrap_or(0);
            c.llm_reply(req_seq as Ticket, &line[..n], host);
        }
        Response::Tokens { id, n, text } => {
            if let Arrived::Stream { index } = l.jobs.tokens(id, n, text.as_slice(), now.ms) {
                let len = write_stream_token(&mut line, id, index, text.as_slice()).unwrap_or(0);
                if len == 0 || !c.send_extra(&line[..len], host) {
                    l.stats.stream_drops += 1;
                }
            }
        }
        Response::Done(d) => {
            let failed = d.status.0 & shared_ring::message::DoneStatus::REJECT != 0;
            let reason = if failed {
                EndReason::Fail
            } else {
                l.jobs.natural_end(d.id, d.tokens)
            };
            if let Some((tokens, true)) = l.jobs.finish(d.id, reason, now.ms) {
                let end = l.jobs.end_of(d.id).unwrap_or(reason);
                let code = (end == EndReason::Fail).then_some(ErrorCode::Internal);
                let len = write_end(&mut line, d.id, tokens, end, code).unwrap_or(0);
                if len == 0 || !c.send_extra(&line[..len], host) {
                    l.stats.stream_drops += 1;
                }
            }
        }
        Response::Status(_) | Response::Pong { .. } => {}
    }
}

/// Periodic upkeep (timer tick): ends jobs the LLM partition abandoned.
pub fn tick(now_ms: u64, c: &mut Control, host: &mut dyn HostOut, l: &mut Link) {
    let Some(cutoff) = now_ms.checked_sub(JOB_IDLE_MS) else {
        return;
    };
    let mut drops = 0;
    l.jobs.expire(cutoff, |id, tokens, streamed| {
        if streamed {
            let mut line = [0u8; 96];
            let n = write_end(
                &mut line,
                id,
                tokens,
                EndReason::Fail,
                Some(ErrorCode::Unavailable),
            )
            .unwrap_or(0);
            if n == 0 || !c.send_extra(&line[..n], host) {
                drops += 1;
            }
        }
    });
    l.stats.stream_drops += drops;
}

/// Responses handled since boot.
pub fn responses() -> u64 {
    RESPONSES.load(Ordering::Relaxed)
}
