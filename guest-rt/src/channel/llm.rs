//! The LLM guest's end: attaches to the region the control guest initialised (again whenever
//! its epoch changes), drains requests, sends responses with back-pressure.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use shared_ring::region;
use shared_ring::{
    ConsumerStats, LlmEnd, Producer, ProducerStats, RawRegion, Received, Request, Response,
};

use super::doorbell::{self, DoorbellError};
pub use super::outbox::Sent;
use super::outbox::{Outbox, Refused};
use super::text::{add_consumer, add_producer, PingCounts, RingReport};
use super::{audit, shm};
use crate::hook::Hook;
use crate::sync::{self, IrqMutex};
use crate::{gic, irq, timer};

/// Responses that wait in this guest for ring space.
pub const PENDING: usize = 64;

/// Receives every accepted request, from the doorbell interrupt (boot core, IRQs masked).
/// Installed as `&(function as RequestFn)`.
pub type RequestFn = fn(Received<Request>);

struct State {
    end: LlmEnd<RawRegion<'static>>,
    outbox: Outbox<Response, PENDING>,
}

static STATE: IrqMutex<Option<State>> = IrqMutex::new(None);
/// Counters of earlier attachments (producer, consumer).
static PAST: IrqMutex<Option<(ProducerStats, ConsumerStats)>> = IrqMutex::new(None);
/// The request function.
static ON_REQUEST: Hook<RequestFn> = Hook::new();

static ATTACHES: AtomicU64 = AtomicU64::new(0);
static HEADER_ERRORS: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static UNHANDLED: AtomicU64 = AtomicU64::new(0);
static PINGS: AtomicU64 = AtomicU64::new(0);
static PONGS: AtomicU64 = AtomicU64::new(0);

/// How long [`start`] waits for the control guest to initialise the region.
const START_WAIT_MS: u64 = 2000;

/// Why the endpoint could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// No shared region in this VM (native boot).
    NoRegion,
    /// The doorbell interrupt could not be enabled.
    Irq(gic::GicError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoRegion => f.write_str("no shared region (native boot)"),
            StartError::Irq(e) => write!(f, "cannot enable the doorbell interrupt: {e:?}"),
        }
    }
}

/// Installs `on_request`, enables the doorbell interrupt on this (the boot) core and attaches,
/// waiting up to 2 s for the control guest to initialise the region. Returns the epoch, or
/// `None` if the region is not initialised yet (every later doorbell retries).
///
/// # Errors
/// [`StartError`].
pub fn start(on_request: &'static RequestFn) -> Result<Option<u64>, StartError> {
    shm::ring_region().ok_or(StartError::NoRegion)?;
    let doorbell_intid = super::channel().ok_or(StartError::NoRegion)?.doorbell;
    ON_REQUEST.set(Some(on_request));
    super::commands::set_role(super::commands::Role::Llm);
    irq::enable(doorbell_intid, &(on_doorbell as irq::Handler)).map_err(StartError::Irq)?;
    let t0 = timer::counter();
    let wait = timer::frequency() / 1000 * START_WAIT_MS;
    loop {
        if let Some(e) = check_attach() {
            return Ok(Some(e));
        }
        if timer::counter().wrapping_sub(t0) > wait {
            return Ok(None);
        }
        let daif = sync::irq_save();
        aarch64_cpu::asm::wfi();
        sync::irq_restore(daif);
    }
}

/// Attaches if not attached, or re-attaches if the control guest re-initialised the region
/// (new epoch). Returns the epoch in use. A header that does not validate right now is counted
/// and the current attachment (if any) is kept.
pub fn check_attach() -> Option<u64> {
    let mem = shm::ring_region()?;
    let mut g = STATE.lock();
    let current = g.as_ref().map(|s| s.end.epoch);
    let epoch = match region::epoch(&mem) {
        Ok(e) => e,
        Err(_) => {
            HEADER_ERRORS.fetch_add(1, Ordering::Relaxed);
            return current;
        }
    };
    if current == Some(epoch) {
        return current;
    }
    match region::attach(mem) {
        Ok(end) => {
            if let Some(old) = g.take() {
                let mut past = PAST.lock();
                let (p, c) = past.unwrap_or_default();
                *past = Some((
                    add_producer(p, old.end.responses.stats()),
                    add_consumer(c, old.end.requests.stats()),
                ));
                // Responses for the old epoch's requests mean nothing in the new one.
                let mut outbox = old.outbox;
                DROPPED.fetch_add(outbox.discard() as u64, Ordering::Relaxed);
            }
            let e = end.epoch;
            *g = Some(State {
                end,
                outbox: Outbox::new(),
            });
            ATTACHES.fetch_add(1, Ordering::Relaxed);
            Some(e)
        }
        Err(_) => {
            HEADER_ERRORS.fetch_add(1, Ordering::Relaxed);
            current
        }
    }
}

fn on_doorbell(_intid: u32) {
    doorbell::count_rx();
    check_attach();
    let _ = flush();
    drain();
}

/// Drains the request ring (at most one ring's worth of slots) into the request function;
/// returns how many slots it looked at.
pub fn drain() -> usize {
    let Some(cap) = STATE.lock().as_ref().map(|s| s.end.requests.capacity()) else {
        return 0;
    };
    let (mut taken, mut rejected) = (0usize, 0u64);
    for _ in 0..=cap {
        // One slot per lock: the request function sends responses.
        let r = match STATE.lock().as_mut() {
            Some(s) => s.end.requests.try_recv(),
            None => break,
        };
        match r {
            Ok(Some(m)) => {
                taken += 1;
                if matches!(m.msg, Request::Ping { .. }) {
                    PINGS.fetch_add(1, Ordering::Relaxed);
                }
                match ON_REQUEST.get() {
                    Some(f) => f(m),
                    None => {
                        UNHANDLED.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(None) => break,
            Err(_) => rejected += 1,
        }
    }
    audit::ring_rejects(rejected);
    taken + rejected as usize
}

/// Why a response was not sent (or not delivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFail {
    /// Not attached to a region (the control guest has not initialised it).
    NotAttached,
    /// The response does not fit a slot (nothing published; counted by the ring).
    TooLarge,
    /// The ring is full and the wait queue too: dropped and counted.
    QueueFull,
    /// [`publish_quiet`] only: the ring is full or responses are queued (nothing published,
    /// nothing queued).
    RingFull,
    /// Published (or queued), but the doorbell was not delivered (the control guest is
    /// stopped; its restart re-initialises the ring and the response is lost).
    NotDelivered(DoorbellError),
}

impl fmt::Display for SendFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFail::NotAttached => f.write_str("not attached to the shared region"),
            SendFail::TooLarge => f.write_str("response too large for a slot"),
            SendFail::QueueFull => f.write_str("response ring and wait queue full: dropped"),
            SendFail::RingFull => f.write_str("response ring full"),
            SendFail::NotDelivered(e) => write!(f, "response not delivered: {e}"),
        }
    }
}

fn count_pong(r: &Response) {
    if matches!(r, Response::Pong { .. }) {
        PONGS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends the queued responses that fit now and rings the control guest if any went out.
///
/// # Errors
/// [`SendFail::NotDelivered`] if responses went out but the doorbell failed.
pub fn flush() -> Result<usize, SendFail> {
    let n = match STATE.lock().as_mut() {
        Some(s) => {
            let before = s.outbox.dropped();
            let n = s.outbox.flush(&mut s.end.responses, count_pong);
            DROPPED.fetch_add(s.outbox.dropped() - before, Ordering::Relaxed);
            n
        }
        None => 0,
    };
    if n > 0 {
        doorbell::ring_peer().map_err(SendFail::NotDelivered)?;
    }
    Ok(n)
}

/// Sends `resp` to the control guest, in order behind any queued responses. A full ring (or a
/// tail the consumer has not repaired yet) queues it; the queue is retried on every doorbell
/// and every later send. Safe from any core and from interrupt handlers.
///
/// # Errors
/// [`SendFail`].
pub fn send(resp: &Response) -> Result<Sent, SendFail> {
    let (outcome, published) = {
        let mut g = STATE.lock();
        let s = g.as_mut().ok_or(SendFail::NotAttached)?;
        let before = s.outbox.dropped();
        let r = s.outbox.send(&mut s.end.responses, resp, count_pong);
        DROPPED.fetch_add(s.outbox.dropped() - before, Ordering::Relaxed);
        r
    };
    if published > 0 {
        doorbell::ring_peer().map_err(SendFail::NotDelivered)?;
    }
    outcome.map_err(|e| match e {
        Refused::TooLarge => SendFail::TooLarge,
        Refused::QueueFull => SendFail::QueueFull,
    })
}

/// Publishes `resp` without ringing the control guest and without queueing: for a burst whose
/// sender rings once at the end ([`ring_peer`]). Keeps order: refused while responses are queued.
///
/// # Errors
/// [`SendFail::NotAttached`], [`SendFail::TooLarge`], or [`SendFail::RingFull`].
pub fn publish_quiet(resp: &Response) -> Result<u64, SendFail> {
    let mut g = STATE.lock();
    let s = g.as_mut().ok_or(SendFail::NotAttached)?;
    if !s.outbox.is_empty() {
        return Err(SendFail::RingFull);
    }
    match s.end.responses.send(resp) {
        Ok(seq) => {
            count_pong(resp);
            Ok(seq)
        }
        Err(shared_ring::SendError::TooLarge) => Err(SendFail::TooLarge),
        Err(_) => Err(SendFail::RingFull),
    }
}

/// Rings the control guest's doorbell (after [`publish_quiet`]).
///
/// # Errors
/// [`SendFail::NotDelivered`].
pub fn ring_peer() -> Result<(), SendFail> {
    doorbell::ring_peer().map_err(SendFail::NotDelivered)
}

/// Runs `f` on the response producer with the endpoint locked (IRQs masked on this core), for
/// diagnostics that must touch the ring itself (`ringjunk`). `None` if not attached.
pub fn with_producer<R>(
    f: impl FnOnce(&mut Producer<Response, RawRegion<'static>>) -> R,
) -> Option<R> {
    STATE.lock().as_mut().map(|s| f(&mut s.end.responses))
}

/// The response ring's published tail (the control guest's read position) and our head, for
/// diagnostics waiting for the consumer to catch up. `None` if not attached.
pub fn response_positions() -> Option<(u64, u64)> {
    let g = STATE.lock();
    let s = g.as_ref()?;
    let mem = shm::ring_region()?;
    let snap = region::snapshot(&mem).ok()?;
    Some((snap.responses.tail, s.end.responses.next_seq()))
}

/// Responses waiting in this guest for ring space (`None` if not attached).
pub fn queued() -> Option<usize> {
    STATE.lock().as_ref().map(|s| s.outbox.len())
}

/// (header errors seen, responses dropped) since boot.
pub fn error_stats() -> (u64, u64) {
    (
        HEADER_ERRORS.load(Ordering::Relaxed),
        DROPPED.load(Ordering::Relaxed),
    )
}

/// What `ring` prints for this end.
pub fn report<'a>(header: &'a str) -> RingReport<'a> {
    let past = PAST.lock().unwrap_or_default();
    let g = STATE.lock();
    let (audit_ok, audit_failed) = audit::stats();
    let mut r = RingReport {
        role: "llm",
        epoch: None,
        attaches: ATTACHES.load(Ordering::Relaxed),
        header,
        out_name: "responses (llm->ctl)",
        out: past.0,
        dropped: DROPPED.load(Ordering::Relaxed),
        in_name: "requests (ctl->llm)",
        inp: past.1,
        unhandled: UNHANDLED.load(Ordering::Relaxed),
        ping: PingCounts {
            pings: PINGS.load(Ordering::Relaxed),
            pongs: PONGS.load(Ordering::Relaxed),
        },
        pinger: false,
        doorbells: doorbell::stats(),
        audit_ok,
        audit_failed,
        ..RingReport::default()
    };
    if let Some(s) = g.as_ref() {
        r.epoch = Some(s.end.epoch);
        r.out = add_producer(past.0, s.end.responses.stats());
        r.inp = add_consumer(past.1, s.end.requests.stats());
        r.queued = s.outbox.len() as u64;
    }
    r
}
