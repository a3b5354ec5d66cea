//! The LLM guest's ring service: consumes requests from the control guest, answers `Ping` with
//! `Pong` at once (so `ping` measures the channel, not the LLM), hands every other request to
//! an installed [`RequestHandler`] (the LLM service), and sends responses with back-pressure.
//! Also the hostile-peer diagnostic `ringjunk`.

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::channel::{doorbell, llm};
use guest_rt::shared_ring::hostile::{Hostile, JunkKind, Rng};
use guest_rt::shared_ring::message::ErrorCode;
use guest_rt::shared_ring::{Received, Request, Response};
use guest_rt::shell::{parse_u64, Command, Invocation};
use guest_rt::sync::{self, IrqMutex};
use guest_rt::timer;
use sis_platform::partition::VM_CTL;

pub use guest_rt::channel::llm::{SendFail, Sent};

/// Serves requests other than `Ping`.
pub trait RequestHandler: Sync {
    /// Called from the doorbell interrupt (boot core, IRQs masked) for every accepted request
    /// other than `Ping`, with its ring sequence number (responses name it as `req_seq`). Must
    /// not block or allocate: queue the work and answer later with [`send`]. Returning
    /// `Err(code)` makes the ring service answer `Error { req_seq, code }` at once.
    fn on_request(&self, seq: u64, req: Request) -> Result<(), ErrorCode>;
}

static HANDLER: IrqMutex<Option<&'static dyn RequestHandler>> = IrqMutex::new(None);
/// Responses the service itself could not send (pongs, errors).
static SEND_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Installs the handler of non-`Ping` requests (replacing any previous one). Until one is
/// installed they are answered with `Error { code: Unavailable }`.
#[allow(dead_code)] // called by the LLM service once it is wired to the ring
pub fn install(handler: &'static dyn RequestHandler) {
    *HANDLER.lock() = Some(handler);
}

/// Sends a response (tokens, done, errors) to the control guest. A full ring queues it in this
/// guest (counted as `full` by the ring) and it goes out on the next doorbell, [`poll`] or send;
/// callable from any core and from interrupt handlers.
///
/// # Errors
/// [`SendFail`]: not attached, too large, queue full (dropped and counted), or the control guest
/// is stopped.
pub fn send(resp: &Response) -> Result<Sent, SendFail> {
    llm::send(resp)
}

/// Thread-context upkeep for a service loop: re-attaches after a control-guest restart, sends
/// queued responses, and drains requests a bounded interrupt pass left behind.
#[allow(dead_code)] // installed as the LLM service loop's poll hook once it is wired
pub fn poll() {
    llm::check_attach();
    let _ = llm::flush();
    llm::drain();
}

/// Starts the endpoint on the boot core (before the shell): waits up to 2 s for the control
/// guest's region, and keeps retrying on every doorbell after that.
pub fn start() {
    match llm::start(on_request) {
        Ok(Some(epoch)) => guest_rt::println!("llm: shared ring attached, epoch {epoch}"),
        Ok(None) => guest_rt::println!("llm: shared ring not initialised yet; attaching later"),
        Err(e) => guest_rt::println!("llm: shared ring unavailable: {e}"),
    }
}

fn reply(resp: &Response) {
    if send(resp).is_err() {
        SEND_FAILURES.fetch_add(1, Ordering::Relaxed);
    }
}

fn on_request(m: Received<Request>) {
    let req_seq = m.seq;
    match m.msg {
        Request::Ping { t0 } => reply(&Response::Pong { t0 }),
        req => {
            let handler = *HANDLER.lock();
            let code = match handler {
                Some(h) => h.on_request(req_seq, req).err(),
                None => Some(ErrorCode::Unavailable),
            };
            if let Some(code) = code {
                reply(&Response::Error { req_seq, code });
            }
        }
    }
}

/// The ring commands of the LLM guest.
pub static COMMANDS: [Command; 2] = [
    Command {
        name: "ringjunk",
        help: "ringjunk [N]: hostile peer: N rounds of garbage into the llm->ctl ring (default 16, max 200)",
        run: ringjunk,
    },
    Command {
        name: "ringflood",
        help: "ringflood [N]: back-pressure test: a burst of N pongs to ctl, the first ringful without doorbells (default 1100, max 100000)",
        run: ringflood,
    },
];

const FLOOD_DEFAULT: u64 = 1100;
const FLOOD_MAX: u64 = 100_000;
/// How long `ringflood` waits without progress before giving up.
const FLOOD_STALL_MS: u64 = 2000;

/// Sends `n` stale pongs (t0 = 0..n; the control guest counts them as stale). The first ringful
/// is published without doorbells, as a burst faster than the consumer reacts, so the ring is
/// really full; the rest goes through [`send`], waiting whenever the outbox is full. Exercises
/// back-pressure end to end: full refusals, the outbox, the control guest's space doorbell.
fn ringflood(inv: &mut Invocation<'_, '_>) {
    let n = match inv.args {
        [_] => FLOOD_DEFAULT,
        [_, n] => match parse_u64(n) {
            Some(n) if (1..=FLOOD_MAX).contains(&n) => n,
            _ => {
                let _ = writeln!(inv.out, "ringflood: N must be 1..={FLOOD_MAX}");
                return;
            }
        },
        _ => {
            let _ = writeln!(inv.out, "usage: ringflood [N]");
            return;
        }
    };
    // The silent burst: publish until the ring refuses.
    let mut burst = 0;
    while burst < n {
        match llm::publish_quiet(&Response::Pong { t0: burst }) {
            Ok(_) => burst += 1,
            Err(SendFail::RingFull) => break,
            Err(e) => {
                let _ = writeln!(inv.out, "ringflood: {e}");
                return;
            }
        }
    }
    let _ = llm::ring_peer();
    let stall = timer::frequency() / 1000 * FLOOD_STALL_MS;
    let (mut waits, mut last_progress) = (0u64, timer::counter());
    let mut i = burst;
    while i < n {
        if llm::queued().unwrap_or(0) >= llm::PENDING {
            if timer::counter().wrapping_sub(last_progress) > stall {
                let _ = writeln!(
                    inv.out,
                    "ringflood: stalled after {i} of {n}: no ring space for {FLOOD_STALL_MS} ms"
                );
                return;
            }
            waits += 1;
            let daif = sync::irq_save();
            aarch64_cpu::asm::wfi();
            sync::irq_restore(daif);
            continue;
        }
        match send(&Response::Pong { t0: i }) {
            Ok(_) => {
                i += 1;
                last_progress = timer::counter();
            }
            Err(e) => {
                let _ = writeln!(inv.out, "ringflood: stopped after {i} of {n}: {e}");
                return;
            }
        }
    }
    // Wait until the queue is empty and the control guest has taken everything.
    let t0 = timer::counter();
    loop {
        let _ = llm::flush();
        let queued = llm::queued().unwrap_or(0);
        if let Some((tail, head)) = llm::response_positions() {
            if queued == 0 && tail == head {
                let _ = writeln!(
                    inv.out,
                    "ringflood: {n} responses sent ({burst} in the first burst), waited {waits} times for space; ctl took them all"
                );
                return;
            }
            if timer::counter().wrapping_sub(t0) > stall {
                let _ = writeln!(
                    inv.out,
                    "ringflood: {n} sent but {queued} still queued, ctl at {tail} of {head}"
                );
                return;
            }
        }
        let daif = sync::irq_save();
        aarch64_cpu::asm::wfi();
        sync::irq_restore(daif);
    }
}

const JUNK_DEFAULT: u64 = 16;
const JUNK_MAX: u64 = 200;
/// How long one round waits at most for the control guest to look at the garbage (it normally
/// does within microseconds; the bound matters on a loaded host).
const ROUND_WAIT_US: u64 = 20_000;
/// How long `ringjunk` waits at the end for the control guest to be back in step.
const CATCH_UP_MS: u64 = 500;

fn ringjunk(inv: &mut Invocation<'_, '_>) {
    let n = match inv.args {
        [_] => JUNK_DEFAULT,
        [_, n] => match parse_u64(n) {
            Some(n) if (1..=JUNK_MAX).contains(&n) => n,
            _ => {
                let _ = writeln!(inv.out, "ringjunk: N must be 1..={JUNK_MAX}");
                return;
            }
        },
        _ => {
            let _ = writeln!(inv.out, "usage: ringjunk [N]");
            return;
        }
    };
    let hz = timer::frequency();
    let round_wait = hz / 1_000_000 * ROUND_WAIT_US;
    let mut rng = Rng::new(timer::counter());
    let mut kinds = [0u64; JunkKind::ALL.len()];
    let mut slots = 0u64;
    // The endpoint stays locked throughout (IRQs masked on this core): our own sends wait, and
    // our own doorbell handler never sees the corrupted header.
    let restored = llm::with_producer(|p| {
        let mut h = Hostile::begin(p);
        for _ in 0..n {
            let r = h.round(&mut rng);
            if let Some(i) = JunkKind::ALL.iter().position(|k| *k == r.kind) {
                kinds[i] += 1;
            }
            slots += r.slots;
            let _ = doorbell::ring(VM_CTL);
            // Give the control guest a moment to chew on it.
            let t0 = timer::counter();
            while timer::counter().wrapping_sub(t0) < round_wait {
                let (head, tail) = h.published();
                if head == tail {
                    break;
                }
                guest_rt::sync::spin_yield();
            }
        }
        h.finish()
    });
    let Some(head) = restored else {
        let _ = writeln!(inv.out, "ringjunk: not attached to the shared ring");
        return;
    };
    let _ = write!(inv.out, "ringjunk: {n} rounds, {slots} garbage slots (");
    for (i, k) in JunkKind::ALL.iter().enumerate() {
        let sep = if i + 1 == kinds.len() { "" } else { " " };
        let _ = write!(inv.out, "{} {}{sep}", k.name(), kinds[i]);
    }
    let _ = writeln!(inv.out, ")");
    let _ = writeln!(
        inv.out,
        "ringjunk: header restored, producer resumed at seq {head}"
    );
    // Wake the control guest until its published tail is back in step with our head.
    let wait = hz / 1000 * CATCH_UP_MS;
    let t0 = timer::counter();
    loop {
        let _ = doorbell::ring(VM_CTL);
        match llm::response_positions() {
            Some((tail, _)) if tail == head => {
                let _ = writeln!(inv.out, "ringjunk: ctl back in step at seq {head}");
                return;
            }
            Some((tail, _)) if timer::counter().wrapping_sub(t0) > wait => {
                let _ = writeln!(
                    inv.out,
                    "ringjunk: ctl not back in step after {CATCH_UP_MS} ms (tail {tail}, head {head})"
                );
                return;
            }
            None => {
                let _ = writeln!(inv.out, "ringjunk: ring header unreadable after restore");
                return;
            }
            Some(_) => {}
        }
        // Sleep until a tick or interrupt before looking again.
        let daif = sync::irq_save();
        aarch64_cpu::asm::wfi();
        sync::irq_restore(daif);
    }
}

/// Responses the service itself failed to send (pongs and errors).
#[allow(dead_code)] // for the LLM service's status report
pub fn send_failures() -> u64 {
    SEND_FAILURES.load(Ordering::Relaxed)
}
