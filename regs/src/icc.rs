//! The GICv3 CPU interface's system registers (`ICC_*_EL1`): fields for all, and on aarch64
//! accessors in the style of `aarch64-cpu` (`ICC_PMR_EL1.write(ICC_PMR_EL1::PRIORITY.val(..))`).
//!
//! The hypervisor uses them at EL2 for the physical CPU interface; a guest uses the same
//! encodings at EL1, where the hypervisor's `ICH_HCR_EL2.En` makes them reach the virtual CPU
//! interface (ICV) directly, except `ICC_SGI1R_EL1` writes, which trap to the hypervisor (it
//! decodes them with [`ICC_SGI1R_EL1`]'s fields). The accessors use the generic `S3_*`
//! encodings, so any assembler takes them, and every write is followed by an ISB so the next
//! instruction sees its effect.

/// `(op0, op1, CRn, CRm, op2)` of `ICC_SGI1R_EL1`, as a trapped MSR reports it.
pub const SGI1R_ENCODING: (u64, u64, u64, u64, u64) = (3, 0, 12, 11, 5);

pub use self::fields::*;

// tock-registers gives each register an undocumented `Register` type (and value enums).
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;

    register_bitfields! {u64,
        /// System register enable.
        pub ICC_SRE_EL1 [
            /// Use the system-register interface.
            SRE OFFSET(0) NUMBITS(1) [],
            /// Disable FIQ bypass.
            DFB OFFSET(1) NUMBITS(1) [],
            /// Disable IRQ bypass.
            DIB OFFSET(2) NUMBITS(1) [],
        ],
        /// Priority mask: interrupts with a numerically lower priority are signalled.
        pub ICC_PMR_EL1 [
            /// The mask.
            PRIORITY OFFSET(0) NUMBITS(8) [],
        ],
        /// Group 1 interrupt enable.
        pub ICC_IGRPEN1_EL1 [
            /// Group 1 interrupts are signalled.
            ENABLE OFFSET(0) NUMBITS(1) [],
        ],
        /// Control.
        pub ICC_CTLR_EL1 [
            /// 1: EOIR drops the priority only, DIR deactivates.
            EOIMODE OFFSET(1) NUMBITS(1) [],
        ],
        /// Interrupt acknowledge (Group 1).
        pub ICC_IAR1_EL1 [
            /// The acknowledged INTID (1020-1023: special, none pending).
            INTID OFFSET(0) NUMBITS(24) [],
        ],
        /// End of interrupt (Group 1).
        pub ICC_EOIR1_EL1 [
            /// The INTID whose priority drops (and, with EOImode 0, which is deactivated).
            INTID OFFSET(0) NUMBITS(24) [],
        ],
        /// Deactivate interrupt.
        pub ICC_DIR_EL1 [
            /// The INTID to deactivate.
            INTID OFFSET(0) NUMBITS(24) [],
        ],
        /// Generate a Group 1 SGI.
        pub ICC_SGI1R_EL1 [
            /// One bit per target with Aff0 = bit number.
            TARGETLIST OFFSET(0) NUMBITS(16) [],
            /// Aff1 of the targets.
            AFF1 OFFSET(16) NUMBITS(8) [],
            /// The SGI.
            INTID OFFSET(24) NUMBITS(4) [],
            /// Aff2 of the targets.
            AFF2 OFFSET(32) NUMBITS(8) [],
            /// Routing mode: 1 = every PE but this one.
            IRM OFFSET(40) NUMBITS(1) [],
            /// Aff3 of the targets.
            AFF3 OFFSET(48) NUMBITS(8) [],
        ],
    }
}

#[cfg(target_arch = "aarch64")]
pub use access::*;

#[cfg(target_arch = "aarch64")]
mod access {
    use tock_registers::interfaces::{Readable, Writeable};

    macro_rules! icc_reg {
        ($ty:ident, $name:ident, $enc:literal, read_write) => {
            icc_reg!($ty, $name, $enc, read);
            icc_reg!(@write $ty, $name, $enc);
        };
        ($ty:ident, $name:ident, $enc:literal, write) => {
            icc_reg!(@struct $ty, $name, $enc);
            icc_reg!(@write $ty, $name, $enc);
        };
        ($ty:ident, $name:ident, $enc:literal, read) => {
            icc_reg!(@struct $ty, $name, $enc);
            impl Readable for $ty {
                type T = u64;
                type R = super::$name::Register;
                #[inline]
                fn get(&self) -> u64 {
                    let v: u64;
                    // SAFETY: reading a GIC CPU-interface register of this core has no effect
                    // other than the architected one (IAR acknowledges, which the caller wants).
                    unsafe {
                        core::arch::asm!(concat!("mrs {v}, ", $enc), v = out(reg) v, options(nostack, preserves_flags))
                    };
                    v
                }
            }
        };
        (@struct $ty:ident, $name:ident, $enc:literal) => {
            #[doc = concat!("`", stringify!($name), "` (", $enc, ").")]
            pub struct $ty;

            #[doc = concat!("`", stringify!($name), "`.")]
            pub const $name: $ty = $ty;
        };
        (@write $ty:ident, $name:ident, $enc:literal) => {
            impl Writeable for $ty {
                type T = u64;
                type R = super::$name::Register;
                #[inline]
                fn set(&self, v: u64) {
                    // SAFETY: writes one GIC CPU-interface register of this core, then an ISB
                    // so the change is visible to the next instruction; no memory is touched.
                    unsafe {
                        core::arch::asm!(concat!("msr ", $enc, ", {v}"), "isb", v = in(reg) v, options(nostack, preserves_flags))
                    };
                }
            }
        };
    }

    icc_reg!(IccSreEl1, ICC_SRE_EL1, "S3_0_C12_C12_5", read_write);
    icc_reg!(IccPmrEl1, ICC_PMR_EL1, "S3_0_C4_C6_0", read_write);
    icc_reg!(IccIgrpen1El1, ICC_IGRPEN1_EL1, "S3_0_C12_C12_7", read_write);
    icc_reg!(IccCtlrEl1, ICC_CTLR_EL1, "S3_0_C12_C12_4", read_write);
    icc_reg!(IccIar1El1, ICC_IAR1_EL1, "S3_0_C12_C12_0", read);
    icc_reg!(IccEoir1El1, ICC_EOIR1_EL1, "S3_0_C12_C12_1", write);
    icc_reg!(IccDirEl1, ICC_DIR_EL1, "S3_0_C12_C11_1", write);
    icc_reg!(IccSgi1rEl1, ICC_SGI1R_EL1, "S3_0_C12_C11_5", write);
}
