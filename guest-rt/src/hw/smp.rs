//! Core identity, the online-core set, and starting secondary cores with PSCI CPU_ON.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::MPIDR_EL1;
use sis_platform::layout::phys::NUM_CORES;
use tock_registers::interfaces::Readable;

use super::{boot, psci, timer};
use crate::hook::Hook;

/// Code a secondary core runs once it is up (IRQs on, timer ticking). Never returns. Passed as
/// `&(function as SecondaryMain)`.
pub type SecondaryMain = fn(usize) -> !;

static ONLINE: AtomicU64 = AtomicU64::new(0);
static MAINS: [Hook<SecondaryMain>; NUM_CORES] = [const { Hook::new() }; NUM_CORES];
/// How long [`start_core`] waits for a core to report online.
const START_TIMEOUT_MS: u64 = 1000;

/// This core's index (MPIDR_EL1.Aff0; under the hypervisor, the physical core number).
#[inline]
pub fn core_id() -> usize {
    (MPIDR_EL1.get() & 0xff) as usize
}

/// Bit `n` set: core `n` finished its bring-up.
pub fn online_mask() -> u64 {
    ONLINE.load(Ordering::Acquire)
}

pub(crate) fn mark_online(core: usize) {
    ONLINE.fetch_or(1 << core, Ordering::AcqRel);
}

/// Why a core could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The core is not in this VM's core mask.
    NotOurs(usize),
    /// The core is already online.
    AlreadyOnline(usize),
    /// PSCI refused.
    Psci(psci::Error),
    /// PSCI accepted but the core did not come online in time.
    Timeout(usize),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NotOurs(c) => write!(f, "core {c} does not belong to this VM"),
            StartError::AlreadyOnline(c) => write!(f, "core {c} is already online"),
            StartError::Psci(e) => write!(f, "PSCI CPU_ON failed: {e:?}"),
            StartError::Timeout(c) => write!(
                f,
                "core {c} did not come online within {START_TIMEOUT_MS} ms"
            ),
        }
    }
}

/// Starts `core`, which brings up its MMU, redistributor and timer, then runs `main(core)`.
/// Waits until the core is online.
pub fn start_core(core: usize, main: &'static SecondaryMain) -> Result<(), StartError> {
    let mask = boot::boot_info().cpu_mask;
    if core >= NUM_CORES || mask & (1 << core) == 0 {
        return Err(StartError::NotOurs(core));
    }
    if online_mask() & (1 << core) != 0 {
        return Err(StartError::AlreadyOnline(core));
    }
    MAINS[core].set(Some(main));
    psci::cpu_on(core as u64, boot::secondary_entry(), core as u64).map_err(StartError::Psci)?;
    let deadline = timer::counter() + timer::frequency() * START_TIMEOUT_MS / 1000;
    while online_mask() & (1 << core) == 0 {
        if timer::counter() > deadline {
            return Err(StartError::Timeout(core));
        }
        super::sync::spin_yield();
    }
    Ok(())
}

pub(crate) fn run_secondary_main(core: usize) -> ! {
    match MAINS.get(core).and_then(Hook::get) {
        Some(main) => main(core),
        None => super::halt_core(),
    }
}

/// The SGI one core sends another to wake it from WFI ([`wake`]). Its handler does nothing:
/// taking the interrupt is the wake-up.
pub const WAKE_SGI: u32 = 2;

/// Lets this core be woken by [`wake`]: enables [`WAKE_SGI`] on it with an empty handler.
pub fn enable_wake() -> Result<(), super::gic::GicError> {
    super::irq::enable(WAKE_SGI, &(woken as super::irq::Handler))
}

/// The wake interrupt's handler: taking the interrupt was the point.
fn woken(_intid: u32) {}

/// Wakes `core` from WFI (it must have called [`enable_wake`]).
pub fn wake(core: usize) {
    if core < NUM_CORES {
        super::gic::send_sgi(WAKE_SGI, core);
    }
}

/// Runs `check` and, if it finds nothing to do, sleeps in WFI until an interrupt (such as a
/// [`wake`]) arrives. IRQs stay masked from the check to the WFI, so a wake sent after the
/// check stays pending and ends the WFI at once instead of being taken, and lost, before it.
pub fn sleep_unless<T>(check: impl FnOnce() -> Option<T>) -> Option<T> {
    use aarch64_cpu::registers::DAIF;
    use tock_registers::interfaces::{Readable, Writeable};
    let daif = DAIF.get();
    // SAFETY: masks IRQs on this core only; DAIF is restored below, and a pending IRQ is taken
    // then.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
    let found = check();
    if found.is_none() {
        aarch64_cpu::asm::wfi();
    }
    DAIF.set(daif);
    found
}
