//! Single plain loads and stores at any guest-physical address (`peek`, `poke`). Register
//! blocks use the cells of `sis_regs::mmio`.

use core::arch::asm;

/// Reads one u64 at any guest-physical address with a single plain load (used by `peek`).
///
/// # Safety
/// `addr` must be 8-byte aligned. The access may fault (and under the hypervisor stop the VM);
/// that is the caller's intent.
pub unsafe fn read_u64(addr: u64) -> u64 {
    let v: u64;
    // SAFETY: forwarded to the caller.
    unsafe {
        asm!("ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack, preserves_flags))
    };
    v
}

/// Writes one u64 at any guest-physical address with a single plain store (used by `poke`).
///
/// # Safety
/// `addr` must be 8-byte aligned. The store may fault, or corrupt anything at that address;
/// that is the caller's intent.
pub unsafe fn write_u64(addr: u64, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe {
        asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack, preserves_flags))
    };
}
