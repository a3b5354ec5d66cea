//! A spin lock that also masks IRQs on this core while held, so an interrupt handler on the
//! same core can never spin on a lock its interrupted code holds.

use core::arch::asm;
use core::ops::{Deref, DerefMut};

/// Masks IRQs and returns the previous DAIF value.
#[inline]
pub fn irq_save() -> u64 {
    let daif: u64;
    // SAFETY: reading DAIF and setting its I bit only changes this core's interrupt mask.
    unsafe {
        asm!("mrs {d}, daif", "msr daifset, #2", d = out(reg) daif, options(nostack, preserves_flags))
    };
    daif
}

/// Restores a DAIF value from [`irq_save`].
#[inline]
pub fn irq_restore(daif: u64) {
    // SAFETY: writes back this core's own earlier interrupt mask.
    unsafe { asm!("msr daif, {d}", d = in(reg) daif, options(nostack, preserves_flags)) };
}

/// Unmasks IRQs on this core.
#[inline]
pub fn irq_enable() {
    // SAFETY: clears this core's IRQ mask; handlers are installed before anyone calls this.
    unsafe { asm!("msr daifclr, #2", options(nostack, preserves_flags)) };
}

/// Busy-wait hint for a loop that waits on another core: `yield`, not Rust's `spin_loop`
/// (an ISB on aarch64). An emulator that runs all vCPUs round-robin on one host thread (QEMU
/// with `-icount`) switches to the next vCPU on `yield`, so the core being waited for gets to
/// run at once instead of after the emulator's time slice; elsewhere it costs nothing.
#[inline]
pub fn spin_yield() {
    // SAFETY: a hint instruction; no memory, register or flag effects.
    unsafe { asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// A mutex usable from thread and interrupt context on any core.
pub struct IrqMutex<T> {
    inner: spin::Mutex<T>,
}

/// Guard of an [`IrqMutex`]; restores the interrupt mask when dropped.
pub struct IrqGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    daif: u64,
}

impl<T> IrqMutex<T> {
    /// A new unlocked mutex.
    pub const fn new(value: T) -> Self {
        IrqMutex {
            inner: spin::Mutex::new(value),
        }
    }

    /// Masks IRQs, then spins until the lock is free.
    pub fn lock(&self) -> IrqGuard<'_, T> {
        let daif = irq_save();
        IrqGuard {
            guard: Some(self.inner.lock()),
            daif,
        }
    }

    /// Takes the lock if it is free right now.
    pub fn try_lock(&self) -> Option<IrqGuard<'_, T>> {
        let daif = irq_save();
        match self.inner.try_lock() {
            Some(g) => Some(IrqGuard {
                guard: Some(g),
                daif,
            }),
            None => {
                irq_restore(daif);
                None
            }
        }
    }
}

impl<T> Deref for IrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard is only emptied in drop")
    }
}

impl<T> DerefMut for IrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard is only emptied in drop")
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        // Release the lock before unmasking, so an IRQ taken right away can lock it.
        self.guard = None;
        irq_restore(self.daif);
    }
}
