//! EL1 virtual timer at [`TICK_HZ`] on every core, counting ticks from its interrupt.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0};
use sis_platform::layout::{irq, phys::NUM_CORES};
use tock_registers::interfaces::{Readable, Writeable};

use super::{gic, irq::Handler, smp};
use crate::hook::Hook;

/// Timer interrupts per second.
pub const TICK_HZ: u64 = 100;

/// Tick interrupts taken, per core.
static TICKS: [AtomicU64; NUM_CORES] = [const { AtomicU64::new(0) }; NUM_CORES];
/// Ticks whose deadline had already passed when reprogramming (the core was held up), per core.
static LATE: [AtomicU64; NUM_CORES] = [const { AtomicU64::new(0) }; NUM_CORES];
/// Counter value when the boot core started its timer.
static BOOT_COUNT: AtomicU64 = AtomicU64::new(0);

/// Called from the timer interrupt on every core after counting the tick; gets the core index.
/// Runs with IRQs masked: keep it short, no locks held by thread code, no allocation.
/// Installed as `&(function as TickHook)`.
pub type TickHook = fn(usize);
static TICK_HOOK: Hook<TickHook> = Hook::new();

/// Installs (or with `None` removes) the per-tick hook (e.g. scheduler budget enforcement).
pub fn set_tick_hook(hook: Option<&'static TickHook>) {
    TICK_HOOK.set(hook);
}

/// Counter frequency (CNTFRQ_EL0).
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Current virtual counter value.
pub fn counter() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTVCT_EL0.get()
}

/// Counter ticks since the boot core started its timer.
pub fn uptime_counts() -> u64 {
    counter().wrapping_sub(BOOT_COUNT.load(Ordering::Relaxed))
}

fn interval() -> u64 {
    (frequency() / TICK_HZ).max(1)
}

/// Tick count of `core`.
pub fn ticks(core: usize) -> u64 {
    TICKS.get(core).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// Address of `core`'s tick counter (for assembly that waits on ticks).
pub(crate) fn ticks_ptr(core: usize) -> *const u64 {
    TICKS[core].as_ptr()
}

/// Late ticks of `core` (deadline already past at reprogramming).
pub fn late_ticks(core: usize) -> u64 {
    LATE.get(core).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// Starts the periodic tick on this core. Call after the GIC is up on this core.
pub(crate) fn init_this_core(boot: bool) -> Result<(), gic::GicError> {
    if boot {
        BOOT_COUNT.store(counter(), Ordering::Relaxed);
        super::irq::register(irq::VTIMER, &(on_tick as Handler));
    }
    CNTV_CVAL_EL0.set(counter() + interval());
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    gic::enable_ppi(irq::VTIMER)
}

/// Timer interrupt: count, then set the next deadline one interval after the previous one
/// (no drift); if that is already past, restart from now and count the lateness.
fn on_tick(_intid: u32) {
    let core = smp::core_id();
    if let Some(t) = TICKS.get(core) {
        t.fetch_add(1, Ordering::Relaxed);
    }
    super::diag::on_tick(core);
    crate::channel::on_tick(core);
    if let Some(hook) = TICK_HOOK.get() {
        hook(core);
    }
    let step = interval();
    let now = counter();
    let mut next = CNTV_CVAL_EL0.get().wrapping_add(step);
    if next <= now {
        if let Some(l) = LATE.get(core) {
            l.fetch_add(1, Ordering::Relaxed);
        }
        next = now + step;
    }
    CNTV_CVAL_EL0.set(next);
}
