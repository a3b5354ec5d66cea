//! Interrupt handler registry and the IRQ dispatch called from the exception vectors.

use core::sync::atomic::{AtomicU64, Ordering};

use sis_platform::layout::irq::MAX_SPI;

use super::gic;
use crate::hook::Hook;

/// An interrupt handler; gets the INTID. Runs with IRQs masked and must not block or allocate.
/// Registered as `&(function as Handler)`.
pub type Handler = fn(u32);

const SLOTS: usize = MAX_SPI as usize + 1;

/// Handler per INTID.
static HANDLERS: [Hook<Handler>; SLOTS] = [const { Hook::new() }; SLOTS];
/// Interrupts with no handler (acknowledged and dropped).
static UNHANDLED: AtomicU64 = AtomicU64::new(0);
/// Spurious acknowledges (INTID 1020-1023).
static SPURIOUS: AtomicU64 = AtomicU64::new(0);

/// Installs `handler` for `intid`, replacing any previous one.
///
/// # Panics
/// If `intid` is beyond the highest INTID the platform has.
pub fn register(intid: u32, handler: &'static Handler) {
    assert!((intid as usize) < SLOTS, "INTID {intid} out of range");
    HANDLERS[intid as usize].set(Some(handler));
}

/// Installs `handler` for `intid` and enables the interrupt: a private one (< 32) on the
/// calling core, a shared one routed to the calling core.
pub fn enable(intid: u32, handler: &'static Handler) -> Result<(), gic::GicError> {
    if intid > MAX_SPI {
        return Err(gic::GicError::BadIntid(intid));
    }
    register(intid, handler);
    if intid < 32 {
        gic::enable_ppi(intid)
    } else {
        gic::enable_spi(intid, super::smp::core_id());
        Ok(())
    }
}

/// (interrupts without a handler, spurious acknowledges) since boot.
pub fn stats() -> (u64, u64) {
    (
        UNHANDLED.load(Ordering::Relaxed),
        SPURIOUS.load(Ordering::Relaxed),
    )
}

/// Handles one IRQ exception: acknowledge, run the handler, end of interrupt.
pub(crate) fn dispatch() {
    let intid = gic::acknowledge();
    if intid >= gic::SPECIAL_INTID {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    match HANDLERS.get(intid as usize).and_then(Hook::get) {
        Some(handler) => handler(intid),
        None => {
            UNHANDLED.fetch_add(1, Ordering::Relaxed);
        }
    }
    gic::end_of_interrupt(intid);
}
