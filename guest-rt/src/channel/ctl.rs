//! The control guest's end: initialises the region, sends requests, drains responses.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use shared_ring::region::{self, RegionError};
use shared_ring::{CtlEnd, Geometry, RawRegion, Received, Request, Response, SendError};

use super::doorbell::{self, DoorbellError};
use super::text::{PingCounts, RingReport};
use super::{audit, shm};
use crate::sync::{self, IrqMutex};
use crate::{gic, irq, timer};

/// Receives every response other than `Pong` (which belongs to `ping`).
pub trait ResponseHandler: Sync {
    /// Called from the doorbell interrupt on the boot core with IRQs masked, once per accepted
    /// response, in ring order. Must not block or allocate; it may call [`send`].
    fn on_response(&self, response: Received<Response>);
}

static END: IrqMutex<Option<CtlEnd<RawRegion<'static>>>> = IrqMutex::new(None);
static HANDLER: IrqMutex<Option<&'static dyn ResponseHandler>> = IrqMutex::new(None);

static ATTACHES: AtomicU64 = AtomicU64::new(0);
static UNHANDLED: AtomicU64 = AtomicU64::new(0);
static PINGS: AtomicU64 = AtomicU64::new(0);
static PONGS: AtomicU64 = AtomicU64::new(0);
static STALE_PONGS: AtomicU64 = AtomicU64::new(0);
static TIMEOUTS: AtomicU64 = AtomicU64::new(0);
static SPACE_DOORBELLS: AtomicU64 = AtomicU64::new(0);
/// The response ring's `full` counter as the LLM guest last published it.
static PEER_FULL_SEEN: AtomicU64 = AtomicU64::new(0);

/// `t0` of the ping being waited for (`NO_PING` when none).
static WAITING: AtomicU64 = AtomicU64::new(NO_PING);
/// `t0` of the last matching pong, and the counter when it was taken from the ring.
static PONG_T0: AtomicU64 = AtomicU64::new(NO_PING);
static PONG_T1: AtomicU64 = AtomicU64::new(0);
const NO_PING: u64 = u64::MAX;

/// Why the endpoint could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// No shared region in this VM (native boot).
    NoRegion,
    /// The region could not be initialised.
    Region(RegionError),
    /// The doorbell interrupt could not be enabled.
    Irq(gic::GicError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoRegion => f.write_str("no shared region (native boot)"),
            StartError::Region(e) => write!(f, "cannot initialise the shared region: {e:?}"),
            StartError::Irq(e) => write!(f, "cannot enable the doorbell interrupt: {e:?}"),
        }
    }
}

/// Initialises the shared region (a new epoch if it held one), enables the doorbell interrupt on
/// this (the boot) core and rings the LLM guest so that it attaches. Returns the epoch.
///
/// # Errors
/// [`StartError`]; the endpoint then stays down and [`send`] reports it.
pub fn start() -> Result<u64, StartError> {
    let mem = shm::ring_region().ok_or(StartError::NoRegion)?;
    let doorbell_intid = super::channel().ok_or(StartError::NoRegion)?.doorbell;
    let end = region::init(mem, &Geometry::DEFAULT).map_err(StartError::Region)?;
    let epoch = end.epoch;
    *END.lock() = Some(end);
    ATTACHES.fetch_add(1, Ordering::Relaxed);
    super::commands::set_role(super::commands::Role::Ctl);
    irq::enable(doorbell_intid, &(on_doorbell as irq::Handler)).map_err(StartError::Irq)?;
    // A stopped LLM guest attaches by itself when it boots.
    let _ = doorbell::ring_peer();
    Ok(epoch)
}

/// Installs the handler of non-`Pong` responses (replacing any previous one).
pub fn set_response_handler(handler: &'static dyn ResponseHandler) {
    *HANDLER.lock() = Some(handler);
}

/// Why a request was not sent (or not delivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFail {
    /// The endpoint is not started.
    NotStarted,
    /// The ring refused the message (nothing published).
    Ring(SendError),
    /// Published as `seq`, but the doorbell was not delivered (e.g. the LLM guest is stopped).
    NotDelivered {
        /// Sequence number of the published request.
        seq: u64,
        /// Why.
        why: DoorbellError,
    },
}

impl fmt::Display for SendFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFail::NotStarted => f.write_str("channel not started"),
            SendFail::Ring(SendError::Full) => f.write_str("request ring full"),
            SendFail::Ring(SendError::TooLarge) => f.write_str("request too large for a slot"),
            SendFail::Ring(SendError::CorruptTail) => {
                f.write_str("request ring corrupt (consumer tail impossible)")
            }
            SendFail::NotDelivered { seq, why } => write!(f, "request {seq} published but {why}"),
        }
    }
}

/// Publishes `req` on the request ring and rings the LLM guest. Returns its sequence number.
///
/// # Errors
/// [`SendFail`].
pub fn send(req: &Request) -> Result<u64, SendFail> {
    let seq = {
        let mut g = END.lock();
        let end = g.as_mut().ok_or(SendFail::NotStarted)?;
        end.requests.send(req).map_err(SendFail::Ring)?
    };
    if matches!(req, Request::Ping { .. }) {
        PINGS.fetch_add(1, Ordering::Relaxed);
    }
    doorbell::ring_peer().map_err(|why| SendFail::NotDelivered { seq, why })?;
    Ok(seq)
}

fn on_doorbell(_intid: u32) {
    doorbell::count_rx();
    drain();
}

/// Drains the response ring (at most one ring's worth of slots) and dispatches what it took;
/// returns how many slots it looked at. Called from the doorbell interrupt; threads may call it
/// too (e.g. to pick up responses left by a bounded pass).
pub fn drain() -> usize {
    let Some(cap) = END.lock().as_ref().map(|e| e.responses.capacity()) else {
        return 0;
    };
    let (mut taken, mut rejected) = (0usize, 0u64);
    for _ in 0..=cap {
        // One slot per lock, so that a handler may send while we drain.
        let r = match END.lock().as_mut() {
            Some(end) => end.responses.try_recv(),
            None => break,
        };
        match r {
            Ok(Some(m)) => {
                taken += 1;
                dispatch(m);
            }
            Ok(None) => break,
            Err(_) => rejected += 1,
        }
    }
    audit::ring_rejects(rejected);
    if taken > 0 || rejected > 0 {
        signal_space();
    }
    taken + rejected as usize
}

/// Rings the LLM guest if it found the response ring full since we last looked: slots are free
/// now and its queued responses can go.
fn signal_space() {
    let Some(full) = END.lock().as_ref().map(|e| e.responses.peer_stats().full) else {
        return;
    };
    if PEER_FULL_SEEN.swap(full, Ordering::Relaxed) != full {
        SPACE_DOORBELLS.fetch_add(1, Ordering::Relaxed);
        let _ = doorbell::ring_peer();
    }
}

fn dispatch(m: Received<Response>) {
    if let Response::Pong { t0 } = m.msg {
        PONGS.fetch_add(1, Ordering::Relaxed);
        if t0 != NO_PING && WAITING.load(Ordering::Acquire) == t0 {
            PONG_T1.store(timer::counter(), Ordering::Relaxed);
            PONG_T0.store(t0, Ordering::Release);
        } else {
            STALE_PONGS.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    let handler = *HANDLER.lock();
    match handler {
        Some(h) => h.on_response(m),
        None => {
            UNHANDLED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Why one ping got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingError {
    /// The ping could not be sent or delivered.
    Send(SendFail),
    /// No pong within the timeout.
    Timeout,
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingError::Send(e) => write!(f, "{e}"),
            PingError::Timeout => f.write_str("timed out"),
        }
    }
}

/// Sends one ping and waits (sleeping in WFI) for its pong, at most `timeout` counter ticks.
/// Returns the round trip in counter ticks (virtual counter, from before the send until the
/// doorbell handler took the pong from the ring). Call from thread context on the boot core.
///
/// # Errors
/// [`PingError`]; a timeout is counted, and a pong that arrives later is counted as stale.
pub fn ping_once(timeout: u64) -> Result<u64, PingError> {
    let t0 = timer::counter();
    WAITING.store(t0, Ordering::Release);
    if let Err(e) = send(&Request::Ping { t0 }) {
        WAITING.store(NO_PING, Ordering::Release);
        return Err(PingError::Send(e));
    }
    loop {
        if PONG_T0.load(Ordering::Acquire) == t0 {
            WAITING.store(NO_PING, Ordering::Release);
            return Ok(PONG_T1.load(Ordering::Relaxed).wrapping_sub(t0));
        }
        if timer::counter().wrapping_sub(t0) > timeout {
            WAITING.store(NO_PING, Ordering::Release);
            TIMEOUTS.fetch_add(1, Ordering::Relaxed);
            return Err(PingError::Timeout);
        }
        // Sleep until the doorbell (or a timer tick); WFI wakes on a pending IRQ while masked.
        let daif = sync::irq_save();
        if PONG_T0.load(Ordering::Acquire) != t0 {
            aarch64_cpu::asm::wfi();
        }
        sync::irq_restore(daif);
    }
}

/// (timeouts, stale pongs, space doorbells) since boot.
pub fn ping_stats() -> (u64, u64, u64) {
    (
        TIMEOUTS.load(Ordering::Relaxed),
        STALE_PONGS.load(Ordering::Relaxed),
        SPACE_DOORBELLS.load(Ordering::Relaxed),
    )
}

/// What `ring` prints for this end.
pub fn report<'a>(header: &'a str) -> RingReport<'a> {
    let g = END.lock();
    let (audit_ok, audit_failed) = audit::stats();
    let mut r = RingReport {
        role: "ctl",
        epoch: None,
        attaches: ATTACHES.load(Ordering::Relaxed),
        header,
        out_name: "requests (ctl->llm)",
        in_name: "responses (llm->ctl)",
        unhandled: UNHANDLED.load(Ordering::Relaxed),
        ping: PingCounts {
            pings: PINGS.load(Ordering::Relaxed),
            pongs: PONGS.load(Ordering::Relaxed),
        },
        pinger: true,
        doorbells: doorbell::stats(),
        audit_ok,
        audit_failed,
        ..RingReport::default()
    };
    if let Some(end) = g.as_ref() {
        r.epoch = Some(end.epoch);
        r.out = end.requests.stats();
        r.inp = end.responses.stats();
    }
    r
}
