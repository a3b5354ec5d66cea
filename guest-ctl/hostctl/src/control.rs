//! The host control loop: bytes from the host → frame decoder → auth → a reply for every
//! delimited frame, in frame order, each allow and deny audited once.
//!
//! Pure logic (host tested). The kernel glue (`hostctl`) feeds it the bytes of the virtio
//! console port and gives it three outlets: the host ([`HostOut`]), the audit log
//! ([`AuditOut`]) and the LLM partition ([`LlmLink`]).
//!
//! Ordering: a frame forwarded to the LLM partition is answered when its response arrives,
//! later frames may be answered at once; so every reply takes a slot in a FIFO and lines leave
//! only from its head. A forwarded frame whose response does not come within
//! [`LLM_TIMEOUT_MS`] is answered `ERR 0x06`; if the FIFO fills up, its oldest waiting frame is
//! answered `ERR 0x09` (counted as backpressure). A late response is dropped and counted.

use shared_ring::audit::{AuditEntry, Op, STATUS_OK, STATUS_REJECT};
use sis_frame::auth::{Authenticator, Decision};
use sis_frame::codec::Version;
use sis_frame::codec::{Command, Decoder, Event, Request};
use sis_frame::reply::{write_err, write_refusal, write_rejected, ErrorCode, ReplayCache};

use crate::latency::Latency;

/// Longest reply line the FIFO holds.
pub const LINE_MAX: usize = 1024;
/// Reply slots (frames answered but not yet sent, or waiting for the LLM partition).
pub const SLOTS: usize = 64;
/// A forwarded frame gets `ERR 0x06` if the LLM partition has not answered by then.
pub const LLM_TIMEOUT_MS: u64 = 1500;
/// The same for `0x10` load: the LLM partition acknowledges a load once the model is parsed
/// and mapped, which takes about a second for SmolLM2 under emulation.
pub const LOAD_TIMEOUT_MS: u64 = 10_000;
/// The same for `0x11` infer: the LLM partition acknowledges an inference once it has admitted
/// it (prompt tokenized and checked against the context), which waits for the step a running
/// job is in.
pub const INFER_TIMEOUT_MS: u64 = 10_000;
/// Replies of v1 requests kept for retries (sent again with the same token and `seq` because
/// the reply was lost): entries, and the longest line kept.
pub const REPLAY_SLOTS: usize = 16;
/// See [`REPLAY_SLOTS`].
pub const REPLAY_LINE: usize = 256;
/// A partial frame older than this when more bytes arrive is abandoned (no reply: it was never
/// complete), so a frame the host gave up on cannot swallow its next one.
pub const ABANDON_MS: u64 = 500;

/// Where reply lines go (the virtio-console port).
pub trait HostOut {
    /// Sends one line; false if it had to be dropped (queue full).
    fn send_line(&mut self, line: &[u8]) -> bool;
}

/// Where audit records go (the hypervisor's log).
pub trait AuditOut {
    /// Appends one record; false if the append failed.
    fn append(&mut self, entry: &AuditEntry) -> bool;
}

/// Ticket of a request forwarded to the LLM partition, returned by [`LlmLink::forward`].
pub type Ticket = u64;

/// What became of an allowed request handed to the LLM link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Sent; the reply comes later through [`Control::llm_reply`] with this ticket.
    Wait(Ticket),
    /// Answered at once with the first `n` bytes written to the line buffer (e.g. a poll
    /// served from tokens already received).
    Line(usize),
    /// Answer `ERR code` now (e.g. `Unavailable` while the partition is stopped).
    Err(ErrorCode),
}

/// The LLM partition as the control loop sees it.
pub trait LlmLink {
    /// Handles an allowed request; `line` is a reply buffer for [`Forwarded::Line`].
    fn forward(&mut self, req: &Request<'_>, now_ms: u64, line: &mut [u8]) -> Forwarded;
}

/// An [`LlmLink`] for when no LLM service answers: every request is `ERR 0x06`.
#[cfg(test)]
pub struct NoLlm;

#[cfg(test)]
impl LlmLink for NoLlm {
    fn forward(&mut self, _req: &Request<'_>, _now_ms: u64, _line: &mut [u8]) -> Forwarded {
        Forwarded::Err(ErrorCode::Unavailable)
    }
}

/// Counters of the control loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlStats {
    /// Frames delimited (each gets exactly one reply).
    pub frames_rx: u64,
    /// Reply lines handed to the host outlet.
    pub replies_tx: u64,
    /// `OK` replies.
    pub ok: u64,
    /// `ERR` replies, by code (index = code).
    pub err: [u64; 16],
    /// Frames refused by auth (bad token, missing right, rate limited).
    pub auth_failures: u64,
    /// Reply lines the host outlet dropped (queue full).
    pub tx_dropped: u64,
    /// Waiting frames answered `ERR 0x09` because the reply FIFO was full.
    pub fifo_busy: u64,
    /// Forwarded frames answered `ERR 0x06` after [`LLM_TIMEOUT_MS`].
    pub llm_timeouts: u64,
    /// LLM responses that arrived for no waiting frame (late or unknown).
    pub llm_orphans: u64,
    /// Frames forwarded to the LLM partition.
    pub forwarded: u64,
    /// Audit records appended.
    pub audit_ok: u64,
    /// Audit appends that failed.
    pub audit_failed: u64,
    /// Records by op: allow, deny.
    pub audit_allow: u64,
    /// See `audit_allow`.
    pub audit_deny: u64,
    /// Partial frames abandoned after an idle gap.
    pub abandoned: u64,
    /// Reply lines that did not fit [`LINE_MAX`] (answered `ERR 0x0a` instead).
    pub line_overflow: u64,
    /// v1 retries answered from the replay cache (not run again).
    pub replayed: u64,
    /// Extra lines (`STREAM`/`END`) dropped: host queue full, or no room behind the replies.
    pub extra_dropped: u64,
}

#[derive(Clone, Copy)]
enum SlotState {
    Free,
    Waiting {
        ticket: Ticket,
        deadline_ms: u64,
    },
    Ready {
        len: usize,
    },
    /// A line that is not a frame's reply (a `STREAM`/`END` line) queued behind replies.
    Extra {
        len: usize,
    },
}

#[derive(Clone, Copy)]
struct Slot {
    state: SlotState,
    t0_us: u64,
    /// (token, v1 seq) of an allowed request whose reply may be replayed to a retry.
    key: Option<(u64, u32)>,
    line: [u8; LINE_MAX],
}

/// Reply slots in frame order; lines leave from the head.
struct Fifo {
    slots: [Slot; SLOTS],
    head: usize,
    count: usize,
    replay: ReplayCache<REPLAY_SLOTS, REPLAY_LINE>,
}

/// The control loop's state.
pub struct Control {
    decoder: Decoder,
    auth: Option<Authenticator>,
    fifo: Fifo,
    last_rx_ms: u64,
    stats: ControlStats,
    latency: Latency,
    clock_us: fn() -> u64,
}

/// The time, as the caller's clock sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds.
    pub ms: u64,
    /// Monotonic microseconds (for latency).
    pub us: u64,
}

/// Audit `extra` word of a control-plane record: command byte, reply error code (0 = OK or
/// forwarded) and the frame's number since boot.
pub fn audit_extra(cmd: u8, code: u8, frame_no: u64) -> u64 {
    u64::from(cmd) | u64::from(code) << 8 | frame_no << 16
}

impl Control {
    /// A loop with `auth` (`None`: no secrets, every valid frame is refused `ERR 0x05`);
    /// `clock_us` (monotonic microseconds) stamps each reply as it leaves, for the latency.
    pub const fn new(auth: Option<Authenticator>, clock_us: fn() -> u64) -> Self {
        Control {
            decoder: Decoder::new(),
            auth,
            fifo: Fifo {
                slots: [Slot {
                    state: SlotState::Free,
                    t0_us: 0,
                    key: None,
                    line: [0; LINE_MAX],
                }; SLOTS],
                head: 0,
                count: 0,
                replay: ReplayCache::new(),
            },
            last_rx_ms: 0,
            stats: ControlStats {
                frames_rx: 0,
                replies_tx: 0,
                ok: 0,
                err: [0; 16],
                auth_failures: 0,
                tx_dropped: 0,
                fifo_busy: 0,
                llm_timeouts: 0,
                llm_orphans: 0,
                forwarded: 0,
                audit_ok: 0,
                audit_failed: 0,
                audit_allow: 0,
                audit_deny: 0,
                abandoned: 0,
                line_overflow: 0,
                replayed: 0,
                extra_dropped: 0,
            },
            latency: Latency::new(),
            clock_us,
        }
    }

    /// The authenticator (for the token shell commands).
    pub fn auth_mut(&mut self) -> Option<&mut Authenticator> {
        self.auth.as_mut()
    }

    /// The authenticator, if secrets were drawn.
    pub fn auth(&self) -> Option<&Authenticator> {
        self.auth.as_ref()
    }

    /// Installs the authenticator (secrets drawn at boot).
    pub fn set_auth(&mut self, auth: Authenticator) {
        self.auth = Some(auth);
    }

    /// Counters.
    pub fn stats(&self) -> ControlStats {
        self.stats
    }

    /// Decoder counters.
    pub fn decoder_stats(&self) -> sis_frame::codec::DecoderStats {
        self.decoder.stats()
    }

    /// Round-trip latency (frame delimited → reply handed to the host), microseconds.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    /// Frames waiting for a reply slot to leave.
    pub fn pending(&self) -> usize {
        self.fifo.count
    }

    /// The host connection changed: a partial frame of the old connection is dropped.
    pub fn host_changed(&mut self) {
        if self.decoder.abandon_partial() > 0 {
            self.stats.abandoned += 1;
        }
    }

    /// Feeds bytes from the host; every frame they complete is answered (or queued behind
    /// earlier ones).
    pub fn on_bytes(
        &mut self,
        mut input: &[u8],
        now: Now,
        host: &mut dyn HostOut,
        audit: &mut dyn AuditOut,
        llm: &mut dyn LlmLink,
    ) {
        if self.decoder.pending_bytes() > 0 && now.ms.saturating_sub(self.last_rx_ms) > ABANDON_MS {
            self.host_changed();
        }
        self.last_rx_ms = now.ms;
        while !input.is_empty() {
            let (used, ev) = self.decoder.feed(input);
            input = &input[used..];
            let Some(ev) = ev else { continue };
            self.stats.frames_rx += 1;
            let frame_no = self.stats.frames_rx;
            let slot = self
                .fifo
                .take_slot(host, &mut self.stats, &mut self.latency, self.clock_us);
            let mut line = [0u8; LINE_MAX];
            let timeout_ms = match ev {
                Event::Request(Request {
                    command: Command::LlmLoad { .. },
                    ..
                }) => LOAD_TIMEOUT_MS,
                Event::Request(Request {
                    command: Command::LlmInferStart(_),
                    ..
                }) => INFER_TIMEOUT_MS,
                _ => LLM_TIMEOUT_MS,
            };
            let key = match ev {
                Event::Request(r) if r.version == Version::V1 && r.seq != 0 => {
                    Some((r.token, r.seq))
                }
                _ => None,
            };
            let (outcome, cacheable) = answer(
                ev,
                &mut self.auth,
                frame_no,
                now.ms,
                &mut line,
                audit,
                llm,
                &mut self.stats,
                &mut self.fifo.replay,
            );
            let s = &mut self.fifo.slots[slot];
            s.t0_us = now.us;
            // Only the reply of an allowed request run now is remembered for retries.
            s.key = key.filter(|_| cacheable);
            match outcome {
                Answer::Line(n) => {
                    s.line[..n].copy_from_slice(&line[..n]);
                    s.state = SlotState::Ready { len: n };
                }
                Answer::Wait(ticket) => {
                    self.stats.forwarded += 1;
                    s.state = SlotState::Waiting {
                        ticket,
                        deadline_ms: now.ms + timeout_ms,
                    };
                }
            }
            self.fifo
                .drain(host, &mut self.stats, &mut self.latency, self.clock_us);
        }
    }

    /// The LLM partition answered `ticket` with `line` (a complete reply line with its `\n`).
    /// Returns false if no frame waits for it (late after a timeout, or unknown).
    pub fn llm_reply(&mut self, ticket: Ticket, line: &[u8], host: &mut dyn HostOut) -> bool {
        let f = &mut self.fifo;
        let found = (0..f.count).map(|k| (f.head + k) % SLOTS).find(
            |&i| matches!(f.slots[i].state, SlotState::Waiting { ticket: t, .. } if t == ticket),
        );
        let Some(i) = found else {
            self.stats.llm_orphans += 1;
            return false;
        };
        let n = if line.len() <= LINE_MAX {
            f.slots[i].line[..line.len()].copy_from_slice(line);
            line.len()
        } else {
            self.stats.line_overflow += 1;
            err_line(&mut f.slots[i].line, ErrorCode::Internal)
        };
        f.slots[i].state = SlotState::Ready { len: n };
        f.drain(host, &mut self.stats, &mut self.latency, self.clock_us);
        true
    }

    /// Sends a line that is not a frame's reply (`STREAM`/`END`): at once if no reply is
    /// pending, else behind the pending replies, so it never overtakes the `OK id=N` of its
    /// inference. Returns false (counted) if it had to be dropped.
    pub fn send_extra(&mut self, line: &[u8], host: &mut dyn HostOut) -> bool {
        let f = &mut self.fifo;
        if f.count == 0 {
            let ok = host.send_line(line);
            if !ok {
                self.stats.extra_dropped += 1;
            }
            return ok;
        }
        if f.count == SLOTS || line.len() > LINE_MAX {
            self.stats.extra_dropped += 1;
            return false;
        }
        let i = (f.head + f.count) % SLOTS;
        f.count += 1;
        f.slots[i].line[..line.len()].copy_from_slice(line);
        f.slots[i].key = None;
        f.slots[i].state = SlotState::Extra { len: line.len() };
        true
    }

    /// Answers `ERR 0x06` for forwarded frames past their deadline, or for all of them when
    /// `llm_down` (the partition stopped). Call periodically.
    pub fn tick(&mut self, now: Now, llm_down: bool, host: &mut dyn HostOut) {
        let f = &mut self.fifo;
        let mut expired = false;
        for k in 0..f.count {
            let i = (f.head + k) % SLOTS;
            if let SlotState::Waiting { deadline_ms, .. } = f.slots[i].state {
                if llm_down || now.ms >= deadline_ms {
                    let n = err_line(&mut f.slots[i].line, ErrorCode::Unavailable);
                    f.slots[i].state = SlotState::Ready { len: n };
                    self.stats.llm_timeouts += 1;
                    expired = true;
                }
            }
        }
        if expired {
            f.drain(host, &mut self.stats, &mut self.latency, self.clock_us);
        }
    }
}

impl Fifo {
    /// Reserves the slot at the tail of the FIFO; if it is full, the oldest waiting frame is
    /// answered `ERR 0x09` to make room.
    fn take_slot(
        &mut self,
        host: &mut dyn HostOut,
        stats: &mut ControlStats,
        latency: &mut Latency,
        clock_us: fn() -> u64,
    ) -> usize {
        if self.count == SLOTS {
            // The head must be waiting (ready lines are drained at once), so give it up.
            let h = self.head;
            let n = err_line(&mut self.slots[h].line, ErrorCode::Busy);
            self.slots[h].state = SlotState::Ready { len: n };
            stats.fifo_busy += 1;
            self.drain(host, stats, latency, clock_us);
        }
        let i = (self.head + self.count) % SLOTS;
        self.count += 1;
        i
    }

    /// Sends ready lines from the head of the FIFO.
    fn drain(
        &mut self,
        host: &mut dyn HostOut,
        stats: &mut ControlStats,
        latency: &mut Latency,
        clock_us: fn() -> u64,
    ) {
        while self.count > 0 {
            let h = self.head;
            let len = match self.slots[h].state {
                SlotState::Ready { len } => len,
                SlotState::Extra { len } => {
                    if !host.send_line(&self.slots[h].line[..len]) {
                        stats.extra_dropped += 1;
                    }
                    self.slots[h].state = SlotState::Free;
                    self.head = (h + 1) % SLOTS;
                    self.count -= 1;
                    continue;
                }
                _ => break,
            };
            let line = &self.slots[h].line[..len];
            if line.starts_with(b"OK") {
                stats.ok += 1;
            } else if let Some(code) = err_code(line) {
                stats.err[usize::from(code) & 15] += 1;
            }
            if host.send_line(line) {
                stats.replies_tx += 1;
            } else {
                stats.tx_dropped += 1;
            }
            if let Some((token, seq)) = self.slots[h].key.take() {
                // Transient refusals are not replayed: a retry should try again.
                let transient = [
                    ErrorCode::Unavailable,
                    ErrorCode::RateLimited,
                    ErrorCode::Busy,
                ]
                .iter()
                .any(|c| err_code(line) == Some(*c as u8));
                if !transient {
                    self.replay.store(token, seq, line);
                }
            }
            latency.record(clock_us().saturating_sub(self.slots[h].t0_us));
            self.slots[h].state = SlotState::Free;
            self.head = (h + 1) % SLOTS;
            self.count -= 1;
        }
    }
}

enum Answer {
    Line(usize),
    Wait(Ticket),
}

fn err_line(out: &mut [u8], code: ErrorCode) -> usize {
    write_err(out, code, &[]).unwrap_or(0)
}

/// The code of an `ERR 0xNN` line.
fn err_code(line: &[u8]) -> Option<u8> {
    let hex = line.strip_prefix(b"ERR 0x")?.get(..2)?;
    let s = core::str::from_utf8(hex).ok()?;
    u8::from_str_radix(s, 16).ok()
}

fn command_fields(cmd: &Command<'_>) -> (u32, u32, u64) {
    match cmd {
        Command::LlmLoad { wcet_cycles } => (0, 0, wcet_cycles.unwrap_or(0)),
        Command::LlmInferStart(p) => (p.prompt.len() as u32, u32::from(p.max_tokens), 0),
        Command::LlmInferPoll { infer_id, .. } | Command::LlmCancel { infer_id } => {
            (0, *infer_id, 0)
        }
    }
}

/// Answers one delimited frame and audits it. The flag says whether the reply may be kept for
/// retries: only for an allowed request that was run now (not a refusal, not a replay).
#[allow(clippy::too_many_arguments)]
fn answer(
    ev: Event<'_>,
    auth: &mut Option<Authenticator>,
    frame_no: u64,
    now_ms: u64,
    line: &mut [u8; LINE_MAX],
    audit: &mut dyn AuditOut,
    llm: &mut dyn LlmLink,
    stats: &mut ControlStats,
    replay: &mut ReplayCache<REPLAY_SLOTS, REPLAY_LINE>,
) -> (Answer, bool) {
    let mut record = |op: Op, status: u16, cmd: u8, code: u8, f: (u32, u32, u64)| {
        let entry = AuditEntry {
            op: op as u16,
            status,
            prompt_len: f.0,
            tokens: f.1,
            wcet_cycles: f.2,
            period_ns: 0,
            extra: audit_extra(cmd, code, frame_no),
        };
        if audit.append(&entry) {
            stats.audit_ok += 1;
        } else {
            stats.audit_failed += 1;
        }
        if op == Op::CtlAllow {
            stats.audit_allow += 1;
        } else {
            stats.audit_deny += 1;
        }
    };
    match ev {
        Event::Rejected(r) => {
            let n = write_rejected(line, &r).unwrap_or(0);
            record(
                Op::CtlDeny,
                STATUS_REJECT,
                r.cmd,
                r.error.code() as u8,
                (0, 0, 0),
            );
            (Answer::Line(n), false)
        }
        Event::Request(req) => {
            let cmd = req.command.code() as u8;
            let fields = command_fields(&req.command);
            let decision = match auth.as_mut() {
                Some(a) => a.check(req.token, req.command.requirement(), now_ms),
                None => Decision::BadToken,
            };
            if let Some(code) = decision.error_code() {
                stats.auth_failures += 1;
                let n = write_refusal(line, &decision)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| err_line(line, code));
                record(Op::CtlDeny, STATUS_REJECT, cmd, code as u8, fields);
                return (Answer::Line(n), false);
            }
            if req.version == Version::V1 {
                if let Some(cached) = replay.lookup(req.token, req.seq) {
                    let n = cached.len().min(LINE_MAX);
                    line[..n].copy_from_slice(&cached[..n]);
                    stats.replayed += 1;
                    record(Op::CtlAllow, STATUS_OK, cmd, 0, fields);
                    return (Answer::Line(n), false);
                }
            }
            match llm.forward(&req, now_ms, line) {
                Forwarded::Wait(ticket) => {
                    record(Op::CtlAllow, STATUS_OK, cmd, 0, fields);
                    (Answer::Wait(ticket), true)
                }
                Forwarded::Line(n) => {
                    record(Op::CtlAllow, STATUS_OK, cmd, 0, fields);
                    (Answer::Line(n.min(LINE_MAX)), true)
                }
                Forwarded::Err(code) => {
                    record(Op::CtlAllow, STATUS_OK, cmd, code as u8, fields);
                    (Answer::Line(err_line(line, code)), true)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
