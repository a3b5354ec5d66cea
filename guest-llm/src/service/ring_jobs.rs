//! The LLM service's ring front end: installs a [`RequestHandler`] in the ring endpoint
//! (`crate::ring_endpoint`), so requests from the control guest go through the same inbox,
//! admission and scheduler as the shell's. Protocol (see docs/llm-service.md):
//!
//! - `Infer` -> `Ack` once admitted, or `Error{code}` at once if admission refuses it (no
//!   model: `NoModel`; prompt + `max_tokens` beyond the context: `ContextFull`; a sampling value
//!   out of the engine's range: `BadRequest`; quota: `Rejected`) or the inbox is full (`Busy`).
//!   A streamed job (`InferFlags::STREAM`) then gets one `Tokens` per generated token; other
//!   jobs keep their text for `Poll`. Every admitted job ends with `Done` (status bits as the
//!   audit: ok, reject, miss); one that fails after its `Ack` carries the reject bit and the
//!   error's code.
//! - `Load`, `Budget`, `Cancel` -> `Ack` or `Error{..}`; `Status` -> `Status`;
//!   `Poll{id, max}` -> `Tokens` with up to `max` buffered tokens (0 = all) and at most
//!   `MAX_CHUNK` bytes of text (possibly none), followed by `Done` once everything was polled
//!   and the job has ended.
//!
//! The handler runs in the doorbell interrupt: it only queues. Everything else happens in
//! thread context from the scheduler loop ([`poll`]).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use guest_rt::sync::IrqMutex;
use shared_ring::message::{
    Bytes, Done, DoneStatus, ErrorCode, InferRequest, StatusSnapshot, MAX_CHUNK,
};
use shared_ring::{Request, Response};

use super::{JobError, JobKind, JobRequest, ReplySink, Report, ServerSettings, SERVICE};
use crate::ring_endpoint::{self, RequestHandler};

/// Control requests waiting for thread context.
const CONTROL_QUEUE: usize = 8;
/// Finished jobs whose text stays available to `Poll`.
const KEPT_JOBS: usize = 16;
/// Infer requests queued and not admitted yet (at most the inbox's capacity).
const AWAITING: usize = super::INBOX_CAPACITY;

/// Infer requests waiting for admission: (job id, the request's ring sequence number, which
/// their `Ack` or `Error` names).
static AWAITING_ADMISSION: IrqMutex<heapless::Vec<(u32, u64), AWAITING>> =
    IrqMutex::new(heapless::Vec::new());

/// The sequence number of `id`'s request if it still waits for admission (and forgets it).
fn take_awaiting(id: u32) -> Option<u64> {
    let mut w = AWAITING_ADMISSION.lock();
    let i = w.iter().position(|&(j, _)| j == id)?;
    Some(w.swap_remove(i).1)
}

static CONTROL: IrqMutex<heapless::Deque<(u64, Request), CONTROL_QUEUE>> =
    IrqMutex::new(heapless::Deque::new());

/// A ring job's buffered output.
struct RingJob {
    id: u32,
    stream: bool,
    /// Text of tokens not yet polled, and the byte length of each of those tokens.
    text: Vec<u8>,
    lens: VecDeque<usize>,
    done: Option<Done>,
}

static JOBS: IrqMutex<Vec<RingJob>> = IrqMutex::new(Vec::new());

struct Handler;
static HANDLER: Handler = Handler;

impl RequestHandler for Handler {
    fn on_request(&self, seq: u64, req: Request) -> Result<(), ErrorCode> {
        match req {
            Request::Infer(r) => submit_infer(seq, r),
            Request::Ping { .. } => Ok(()),
            other => CONTROL
                .lock()
                .push_back((seq, other))
                .map_err(|_| ErrorCode::Busy),
        }
    }
}

fn submit_infer(seq: u64, r: InferRequest) -> Result<(), ErrorCode> {
    if r.max_tokens == 0 || r.prompt.is_empty() {
        return Err(ErrorCode::BadRequest);
    }
    let mut prompt = heapless::String::new();
    prompt
        .push_str(&r.prompt)
        .map_err(|_| ErrorCode::BadRequest)?;
    let req = JobRequest {
        tag: u64::from(r.id) | u64::from(r.flags.stream()) << 32,
        server: heapless::String::new(),
        prompt,
        max_tokens: u32::from(r.max_tokens),
        sampling: r.sampling,
        stop: r.stop,
        chat: r.flags.chat(),
        system: r.system,
        session: r.session,
        owner: super::session_table::Owner::Host,
        cold: false,
        // The control guest streams every job over the ring; the audit op follows what the
        // host asked for: 4 (stream) for a streamed reply, 3 (infer) otherwise.
        kind: if r.flags.host_stream() {
            JobKind::Stream
        } else {
            JobKind::Infer
        },
    };
    // The same id may not wait twice (its Ack could not be told apart).
    {
        let mut w = AWAITING_ADMISSION.lock();
        if w.iter().any(|&(j, _)| j == r.id) {
            return Err(ErrorCode::BadRequest);
        }
        w.push((r.id, seq)).map_err(|_| ErrorCode::Busy)?;
    }
    if SERVICE.submit(req, &RING_SINK).is_err() {
        take_awaiting(r.id);
        return Err(ErrorCode::Busy);
    }
    // Answered when admitted (`RingSink::accepted`) or refused (`RingSink::failed`).
    Ok(())
}

fn send(r: &Response) {
    // A failed send is counted by the ring service (full queue, peer stopped).
    let _ = ring_endpoint::send(r);
}

/// Sink of ring jobs: tag = job id | stream flag << 32.
struct RingSink;
static RING_SINK: RingSink = RingSink;

fn job_entry(jobs: &mut Vec<RingJob>, tag: u64) -> &mut RingJob {
    let id = tag as u32;
    if let Some(i) = jobs.iter().position(|j| j.id == id) {
        return &mut jobs[i];
    }
    if jobs.len() >= KEPT_JOBS {
        if let Some(i) = jobs.iter().position(|j| j.done.is_some()) {
            jobs.remove(i);
        }
    }
    jobs.push(RingJob {
        id,
        stream: tag >> 32 != 0,
        text: Vec::new(),
        lens: VecDeque::new(),
        done: None,
    });
    let last = jobs.len() - 1;
    &mut jobs[last]
}

impl ReplySink for RingSink {
    fn accepted(&self, tag: u64, _job: u64, _prompt_tokens: u32) {
        job_entry(&mut JOBS.lock(), tag);
        if let Some(req_seq) = take_awaiting(tag as u32) {
            send(&Response::Ack { req_seq });
        }
    }

    fn token(&self, tag: u64, _id: u32, text: &str) {
        if tag >> 32 != 0 {
            for piece in text.as_bytes().chunks(MAX_CHUNK) {
                if let Some(b) = Bytes::from_slice(piece) {
                    send(&Response::Tokens {
                        id: tag as u32,
                        n: 1,
                        text: b,
                    });
                }
            }
            if text.is_empty() {
                send(&Response::Tokens {
                    id: tag as u32,
                    n: 1,
                    text: Bytes::default(),
                });
            }
            return;
        }
        let mut jobs = JOBS.lock();
        let j = job_entry(&mut jobs, tag);
        j.text.extend_from_slice(text.as_bytes());
        j.lens.push_back(text.len());
    }

    fn finished(&self, tag: u64, r: &Report) {
        let status = DoneStatus::OK
            | if r.missed {
                DoneStatus::DEADLINE_MISS
            } else {
                0
            };
        let done = Done {
            id: tag as u32,
            tokens: r.tokens,
            prompt_len: r.prompt_tokens,
            elapsed_ns: r.response_ns,
            cycles: sis_sched::ns_to_cycles(r.consumed_ns, guest_rt::timer::frequency())
                .unwrap_or(u64::MAX),
            status: DoneStatus(status),
            error: None,
            reused: r.reused,
        };
        end(tag, done, &r.tail);
    }

    fn failed(&self, tag: u64, e: &JobError) {
        if let Some(req_seq) = take_awaiting(tag as u32) {
            // Refused at admission: the request's answer, nothing ran.
            return send(&Response::Error {
                req_seq,
                code: e.code(),
            });
        }
        let done = Done {
            id: tag as u32,
            tokens: 0,
            prompt_len: 0,
            elapsed_ns: 0,
            cycles: 0,
            status: DoneStatus(DoneStatus::REJECT),
            error: Some(e.code()),
            reused: 0,
        };
        end(tag, done, "");
    }
}

fn end(tag: u64, done: Done, tail: &str) {
    if tag >> 32 != 0 {
        if let Some(b) = Bytes::from_slice(tail.as_bytes()).filter(|_| !tail.is_empty()) {
            send(&Response::Tokens {
                id: tag as u32,
                n: 0,
                text: b,
            });
        }
        send(&Response::Done(done));
        JOBS.lock().retain(|j| j.id != tag as u32);
        return;
    }
    let mut jobs = JOBS.lock();
    let j = job_entry(&mut jobs, tag);
    j.text.extend_from_slice(tail.as_bytes());
    match j.lens.back_mut() {
        Some(last) => *last += tail.len(),
        None if !tail.is_empty() => j.lens.push_back(tail.len()),
        None => {}
    }
    j.done = Some(done);
}

fn error(req_seq: u64, code: ErrorCode) {
    send(&Response::Error { req_seq, code });
}

fn control(seq: u64, req: Request) {
    let info = guest_rt::boot_info();
    match req {
        Request::Load { wcet_cycles } => {
            let w = (wcet_cycles != 0).then_some(wcet_cycles);
            match SERVICE.load(info, w, &mut Discard) {
                Ok(()) => send(&Response::Ack { req_seq: seq }),
                Err(_) if crate::model::get().is_none() => error(seq, ErrorCode::NoModel),
                Err(_) => error(seq, ErrorCode::Rejected),
            }
        }
        Request::Budget {
            wcet_cycles,
            period_ns,
            max_tokens_per_period,
        } => {
            let s = ServerSettings {
                wcet_cycles,
                period_ns,
                max_tokens: max_tokens_per_period,
            };
            match SERVICE.configure_server(super::DEFAULT_SERVER, s) {
                Ok(()) => send(&Response::Ack { req_seq: seq }),
                Err(_) => error(seq, ErrorCode::Rejected),
            }
        }
        Request::Cancel { id } => {
            let tag = JOBS
                .lock()
                .iter()
                .find(|j| j.id == id && j.done.is_none())
                .map(|j| u64::from(j.id) | u64::from(j.stream) << 32);
            match tag.map(|t| SERVICE.cancel(t, &RING_SINK)) {
                Some(Ok(())) => send(&Response::Ack { req_seq: seq }),
                _ => error(seq, ErrorCode::UnknownId),
            }
        }
        Request::Poll { id, max } => poll_job(seq, id, max),
        Request::Status => {
            let s = SERVICE.summary();
            let d = s.default.unwrap_or(ServerSettings {
                wcet_cycles: 0,
                period_ns: 0,
                max_tokens: 0,
            });
            send(&Response::Status(StatusSnapshot {
                model_loaded: s.model_loaded,
                wcet_cycles: d.wcet_cycles,
                period_ns: d.period_ns,
                max_tokens_per_period: d.max_tokens,
                jobs: s.jobs.min(usize::from(u16::MAX)) as u16,
                tokens_total: s.tokens,
                deadline_misses: s.deadline_misses,
                rejected: s.rejected,
            }));
        }
        Request::Infer(_) | Request::Ping { .. } => {}
    }
}

fn poll_job(seq: u64, id: u32, max: u16) {
    let mut jobs = JOBS.lock();
    let Some(i) = jobs.iter().position(|j| j.id == id && !j.stream) else {
        drop(jobs);
        return error(seq, ErrorCode::UnknownId);
    };
    let j = &mut jobs[i];
    // Whole tokens, at most `max` of them (0 = no limit) and at most MAX_CHUNK bytes; a token
    // longer than a chunk goes out in pieces (the first piece counts it).
    let limit = if max == 0 {
        usize::MAX
    } else {
        usize::from(max)
    };
    let (mut n, mut bytes) = (0usize, 0usize);
    while n < limit {
        let Some(&len) = j.lens.front() else { break };
        if bytes + len > MAX_CHUNK {
            if n == 0 {
                bytes = MAX_CHUNK;
                if let Some(l) = j.lens.front_mut() {
                    *l -= MAX_CHUNK;
                }
                n = 1;
            }
            break;
        }
        bytes += len;
        n += 1;
        j.lens.pop_front();
    }
    let text: Vec<u8> = j.text.drain(..bytes).collect();
    let done = j.done.filter(|_| j.text.is_empty());
    if done.is_some() {
        jobs.remove(i);
    }
    drop(jobs);
    send(&Response::Tokens {
        id,
        n: n.min(usize::from(u16::MAX)) as u16,
        text: Bytes::from_slice(&text).unwrap_or_default(),
    });
    if let Some(d) = done {
        send(&Response::Done(d));
    }
}

/// Discards load progress lines (a ring load answers with Ack or Error only).
struct Discard;
impl core::fmt::Write for Discard {
    fn write_str(&mut self, _s: &str) -> core::fmt::Result {
        Ok(())
    }
}

/// Thread-context work of the ring side; called by the scheduler loop on every pass.
pub fn poll() {
    ring_endpoint::poll();
    loop {
        // Pop in its own statement: the IRQ-masking lock must not be held while handling.
        let next = CONTROL.lock().pop_front();
        let Some((seq, req)) = next else { break };
        control(seq, req);
    }
}

/// Installs the handler in the ring endpoint.
pub fn install() {
    ring_endpoint::install(&HANDLER);
}
