//! The LLM guest's ring diagnostics: `ringjunk` (a hostile peer writing garbage into the
//! llm->ctl ring) and `ringflood` (a burst of responses that fills the ring, for back-pressure).

use guest_rt::channel::{doorbell, llm};
use guest_rt::shared_ring::hostile::{Hostile, JunkKind, Rng};
use guest_rt::shared_ring::Response;
use guest_rt::shell::{parse_u64, Command, Invocation};
use guest_rt::sync;
use guest_rt::timer;

use crate::ring_endpoint::{send, SendFail};

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
            let _ = doorbell::ring_peer();
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
        let _ = doorbell::ring_peer();
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
