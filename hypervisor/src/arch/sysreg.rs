//! System registers that `aarch64-cpu` does not define (PMU, debug, the trace trap in CPTR_EL2,
//! list-register status, cache geometry), declared the same way (tock-registers bitfields +
//! `Readable`/`Writeable` over `mrs`/`msr`). The GICv3 CPU interface, which the guests use too,
//! is in `sis_regs::icc`.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// CPTR_EL2 (non-VHE layout).
    pub CPTR [
        /// Trap CPACR_EL1 accesses.
        TCPAC OFFSET(31) NUMBITS(1) [],
        /// Trap trace-unit system register accesses.
        TTA OFFSET(20) NUMBITS(1) [],
        /// Trap FP/SIMD.
        TFP OFFSET(10) NUMBITS(1) [],
        /// RES1 bits [13:12] and [9:0].
        RES1 OFFSET(0) NUMBITS(14) []
    ],
    /// DCZID_EL0.
    pub DCZID [
        /// `dc zva` prohibited.
        DZP OFFSET(4) NUMBITS(1) [],
        /// log2 of the block size in 4-byte words.
        BS OFFSET(0) NUMBITS(4) []
    ],
    /// CTR_EL0.
    pub CTR [
        /// log2 of the smallest data-cache line in 4-byte words.
        DminLine OFFSET(16) NUMBITS(4) []
    ],
    /// PMCR_EL0.
    pub PMCR [
        /// Number of event counters.
        N OFFSET(11) NUMBITS(5) [],
        /// Reset the cycle counter.
        C OFFSET(2) NUMBITS(1) [],
        /// Reset the event counters.
        P OFFSET(1) NUMBITS(1) [],
        /// Enable.
        E OFFSET(0) NUMBITS(1) []
    ]
}

macro_rules! sysreg {
    ($(#[$doc:meta])* $name:ident, $asm:literal, $fields:ty, rw) => {
        sysreg!(@struct $(#[$doc])* $name);
        sysreg!(@read $name, $asm, $fields);
        sysreg!(@write $name, $asm, $fields);
    };
    ($(#[$doc:meta])* $name:ident, $asm:literal, $fields:ty, r) => {
        sysreg!(@struct $(#[$doc])* $name);
        sysreg!(@read $name, $asm, $fields);
    };
    ($(#[$doc:meta])* $name:ident, $asm:literal, $fields:ty, w) => {
        sysreg!(@struct $(#[$doc])* $name);
        sysreg!(@write $name, $asm, $fields);
    };
    (@struct $(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[allow(non_camel_case_types)]
        pub struct $name;
    };
    (@read $name:ident, $asm:literal, $fields:ty) => {
        impl Readable for $name {
            type T = u64;
            type R = $fields;
            #[inline]
            fn get(&self) -> u64 {
                let value: u64;
                // SAFETY: reading a system register at EL2 has no memory effects.
                unsafe {
                    core::arch::asm!(concat!("mrs {}, ", $asm), out(reg) value,
                        options(nomem, nostack))
                };
                value
            }
        }
    };
    (@write $name:ident, $asm:literal, $fields:ty) => {
        impl Writeable for $name {
            type T = u64;
            type R = $fields;
            #[inline]
            fn set(&self, value: u64) {
                // SAFETY: writing one of these system registers at EL2 changes no memory and
                // nothing the hypervisor relies on (each is a guest-visible or trap control).
                unsafe {
                    core::arch::asm!(concat!("msr ", $asm, ", {}"), in(reg) value,
                        options(nomem, nostack))
                };
            }
        }
    };
}

sysreg!(
    /// List registers that hold no interrupt (bit set = free).
    ICH_ELRSR_EL2, "ich_elrsr_el2", (), r);
sysreg!(
    /// Architectural feature trap register (EL2).
    CPTR_EL2, "cptr_el2", CPTR::Register, rw);
sysreg!(
    /// PMU control.
    PMCR_EL0, "pmcr_el0", PMCR::Register, rw);
sysreg!(
    /// PMU counter enable clear (write 1s).
    PMCNTENCLR_EL0, "pmcntenclr_el0", (), w);
sysreg!(
    /// PMU overflow interrupt enable clear (write 1s).
    PMINTENCLR_EL1, "pmintenclr_el1", (), w);
sysreg!(
    /// PMU overflow status clear (write 1s).
    PMOVSCLR_EL0, "pmovsclr_el0", (), w);
sysreg!(
    /// PMU EL0 access enables.
    PMUSERENR_EL0, "pmuserenr_el0", (), w);
sysreg!(
    /// PMU counter selection.
    PMSELR_EL0, "pmselr_el0", (), w);
sysreg!(
    /// PMU selected event type.
    PMXEVTYPER_EL0, "pmxevtyper_el0", (), w);
sysreg!(
    /// PMU selected event counter.
    PMXEVCNTR_EL0, "pmxevcntr_el0", (), w);
sysreg!(
    /// PMU cycle counter filter.
    PMCCFILTR_EL0, "pmccfiltr_el0", (), w);
sysreg!(
    /// Debug comms channel interrupt enable.
    MDCCINT_EL1, "mdccint_el1", (), w);
sysreg!(
    /// Data cache zero ID: the `dc zva` block size.
    DCZID_EL0, "dczid_el0", DCZID::Register, r);
sysreg!(
    /// Cache type: the smallest data-cache line.
    CTR_EL0, "ctr_el0", CTR::Register, r);
