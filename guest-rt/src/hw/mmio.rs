//! MMIO register cells for `tock-registers` that always compile to one plain load or store.
//!
//! The hypervisor emulates the GIC distributor, redistributors and the PL011 by decoding the
//! data-abort syndrome, which is only valid for single loads/stores without writeback. Plain
//! `read_volatile` leaves the addressing mode to the compiler, so these cells use inline
//! assembly with a bare base register instead.

use core::arch::asm;
use core::cell::UnsafeCell;
use core::marker::PhantomData;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::RegisterLongName;

/// A 32-bit MMIO register accessed with single `ldr w`/`str w` instructions.
#[repr(transparent)]
pub struct Mmio32<R: RegisterLongName = ()> {
    cell: UnsafeCell<u32>,
    _reg: PhantomData<R>,
}

/// A 64-bit MMIO register accessed with single `ldr x`/`str x` instructions.
#[repr(transparent)]
pub struct Mmio64<R: RegisterLongName = ()> {
    cell: UnsafeCell<u64>,
    _reg: PhantomData<R>,
}

impl<R: RegisterLongName> Readable for Mmio32<R> {
    type T = u32;
    type R = R;

    #[inline]
    fn get(&self) -> u32 {
        let v: u32;
        // SAFETY: `self` is a device register inside a mapped MMIO frame (the only way to get a
        // reference is through a register block placed at a device address); a 32-bit aligned
        // load has no other effect than the device's read side effect.
        unsafe {
            asm!("ldr {v:w}, [{a}]", a = in(reg) self.cell.get(), v = out(reg) v, options(nostack, preserves_flags))
        };
        v
    }
}

impl<R: RegisterLongName> Writeable for Mmio32<R> {
    type T = u32;
    type R = R;

    #[inline]
    fn set(&self, value: u32) {
        // SAFETY: as for `get`; the store targets this register only.
        unsafe {
            asm!("str {v:w}, [{a}]", a = in(reg) self.cell.get(), v = in(reg) value, options(nostack, preserves_flags))
        };
    }
}

impl<R: RegisterLongName> Readable for Mmio64<R> {
    type T = u64;
    type R = R;

    #[inline]
    fn get(&self) -> u64 {
        let v: u64;
        // SAFETY: as for `Mmio32::get`, with a 64-bit aligned register.
        unsafe {
            asm!("ldr {v}, [{a}]", a = in(reg) self.cell.get(), v = out(reg) v, options(nostack, preserves_flags))
        };
        v
    }
}

impl<R: RegisterLongName> Writeable for Mmio64<R> {
    type T = u64;
    type R = R;

    #[inline]
    fn set(&self, value: u64) {
        // SAFETY: as for `Mmio32::set`, with a 64-bit aligned register.
        unsafe {
            asm!("str {v}, [{a}]", a = in(reg) self.cell.get(), v = in(reg) value, options(nostack, preserves_flags))
        };
    }
}

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
