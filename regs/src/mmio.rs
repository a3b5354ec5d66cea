//! MMIO register cells for `tock-registers` that always compile to one plain load or store.
//!
//! The hypervisor emulates the GIC distributor, redistributors, the PL011 and the PCI
//! configuration view by decoding the data-abort syndrome, which is only valid for single
//! loads/stores without writeback. Plain `read_volatile` leaves the addressing mode to the
//! compiler, so on aarch64 these cells use inline assembly with a bare base register instead
//! (elsewhere, where no SIS code touches a device, a volatile access).

use core::cell::UnsafeCell;
use core::marker::PhantomData;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::RegisterLongName;

macro_rules! mmio_cell {
    ($(#[$doc:meta])* $name:ident, $t:ty, $ldr:literal, $str:literal) => {
        $(#[$doc])*
        #[repr(transparent)]
        pub struct $name<R: RegisterLongName = ()> {
            cell: UnsafeCell<$t>,
            _reg: PhantomData<R>,
        }

        impl<R: RegisterLongName> Readable for $name<R> {
            type T = $t;
            type R = R;

            #[inline]
            fn get(&self) -> $t {
                let p = self.cell.get();
                #[cfg(target_arch = "aarch64")]
                {
                    let v: $t;
                    // SAFETY: `self` is a device register inside a mapped MMIO frame (the only
                    // way to get a reference is through a register block placed at a device
                    // address); an aligned load has no effect but the device's read side effect.
                    unsafe {
                        core::arch::asm!($ldr, a = in(reg) p, v = out(reg) v, options(nostack, preserves_flags))
                    };
                    v
                }
                #[cfg(not(target_arch = "aarch64"))]
                // SAFETY: as above; a volatile load of the aligned register.
                unsafe {
                    p.read_volatile()
                }
            }
        }

        impl<R: RegisterLongName> Writeable for $name<R> {
            type T = $t;
            type R = R;

            #[inline]
            fn set(&self, value: $t) {
                let p = self.cell.get();
                #[cfg(target_arch = "aarch64")]
                // SAFETY: as for `get`; the store targets this register only.
                unsafe {
                    core::arch::asm!($str, a = in(reg) p, v = in(reg) value, options(nostack, preserves_flags))
                };
                #[cfg(not(target_arch = "aarch64"))]
                // SAFETY: as for `get`; a volatile store to this register only.
                unsafe {
                    p.write_volatile(value)
                };
            }
        }
    };
}

mmio_cell!(
    /// An 8-bit MMIO register accessed with single `ldrb`/`strb` instructions (the GIC's
    /// byte-per-interrupt priority registers).
    Mmio8, u8, "ldrb {v:w}, [{a}]", "strb {v:w}, [{a}]"
);
mmio_cell!(
    /// A 32-bit MMIO register accessed with single `ldr w`/`str w` instructions.
    Mmio32, u32, "ldr {v:w}, [{a}]", "str {v:w}, [{a}]"
);
mmio_cell!(
    /// A 64-bit MMIO register accessed with single `ldr x`/`str x` instructions.
    Mmio64, u64, "ldr {v}, [{a}]", "str {v}, [{a}]"
);
