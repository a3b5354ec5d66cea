//! GICv3 CPU-interface system registers (`ICC_*_EL1`) as `tock-registers` registers.
//!
//! Written with their generic `S3_*` encodings so any assembler accepts them. Under the
//! hypervisor the same encodings reach the virtual CPU interface (ICV) directly.

use core::arch::asm;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// System Register Enable.
    pub ICC_SRE_EL1 [
        SRE OFFSET(0) NUMBITS(1) [],
        DFB OFFSET(1) NUMBITS(1) [],
        DIB OFFSET(2) NUMBITS(1) [],
    ],
    /// Priority mask: interrupts with a numerically lower priority than this are signalled.
    pub ICC_PMR_EL1 [
        PRIORITY OFFSET(0) NUMBITS(8) [],
    ],
    /// Group 1 interrupt enable.
    pub ICC_IGRPEN1_EL1 [
        ENABLE OFFSET(0) NUMBITS(1) [],
    ],
    /// Interrupt acknowledge (group 1).
    pub ICC_IAR1_EL1 [
        INTID OFFSET(0) NUMBITS(24) [],
    ],
    /// End of interrupt (group 1).
    pub ICC_EOIR1_EL1 [
        INTID OFFSET(0) NUMBITS(24) [],
    ],
    /// Generate a group 1 SGI (trapped and delivered by the hypervisor).
    pub ICC_SGI1R_EL1 [
        TARGETLIST OFFSET(0) NUMBITS(16) [],
        AFF1 OFFSET(16) NUMBITS(8) [],
        INTID OFFSET(24) NUMBITS(4) [],
    ],
}

macro_rules! sysreg {
    ($name:ident, $long:ident, $enc:literal, read) => {
        #[doc = concat!("`", stringify!($long), "` (", $enc, ").")]
        pub struct $name;
        impl Readable for $name {
            type T = u64;
            type R = $long::Register;
            #[inline]
            fn get(&self) -> u64 {
                let v: u64;
                // SAFETY: reading a GIC CPU-interface register at EL1 has no side effect other
                // than the architected one (IAR acknowledges, which the caller wants).
                unsafe { asm!(concat!("mrs {v}, ", $enc), v = out(reg) v, options(nostack, preserves_flags)) };
                v
            }
        }
    };
    ($name:ident, $long:ident, $enc:literal, write) => {
        #[doc = concat!("`", stringify!($long), "` (", $enc, ").")]
        pub struct $name;
        impl Writeable for $name {
            type T = u64;
            type R = $long::Register;
            #[inline]
            fn set(&self, v: u64) {
                // SAFETY: writes one GIC CPU-interface register of this core, followed by an ISB
                // so the change is visible to the next instruction.
                unsafe { asm!(concat!("msr ", $enc, ", {v}"), "isb", v = in(reg) v, options(nostack, preserves_flags)) };
            }
        }
    };
    ($name:ident, $long:ident, $enc:literal, read_write) => {
        sysreg!($name, $long, $enc, write);
        impl Readable for $name {
            type T = u64;
            type R = $long::Register;
            #[inline]
            fn get(&self) -> u64 {
                let v: u64;
                // SAFETY: reading a configuration register of this core's CPU interface.
                unsafe { asm!(concat!("mrs {v}, ", $enc), v = out(reg) v, options(nostack, preserves_flags)) };
                v
            }
        }
    };
}

sysreg!(SreEl1, ICC_SRE_EL1, "S3_0_C12_C12_5", read_write);
sysreg!(PmrEl1, ICC_PMR_EL1, "S3_0_C4_C6_0", read_write);
sysreg!(Igrpen1El1, ICC_IGRPEN1_EL1, "S3_0_C12_C12_7", read_write);
sysreg!(Iar1El1, ICC_IAR1_EL1, "S3_0_C12_C12_0", read);
sysreg!(Eoir1El1, ICC_EOIR1_EL1, "S3_0_C12_C12_1", write);
sysreg!(Sgi1rEl1, ICC_SGI1R_EL1, "S3_0_C12_C11_5", write);

/// ICC_SRE_EL1.
pub const SRE: SreEl1 = SreEl1;
/// ICC_PMR_EL1.
pub const PMR: PmrEl1 = PmrEl1;
/// ICC_IGRPEN1_EL1.
pub const IGRPEN1: Igrpen1El1 = Igrpen1El1;
/// ICC_IAR1_EL1.
pub const IAR1: Iar1El1 = Iar1El1;
/// ICC_EOIR1_EL1.
pub const EOIR1: Eoir1El1 = Eoir1El1;
/// ICC_SGI1R_EL1.
pub const SGI1R: Sgi1rEl1 = Sgi1rEl1;
