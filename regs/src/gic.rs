//! The GICv3 distributor and redistributor register maps (Arm IHI 0069, chapter 12): offsets,
//! the fields SIS uses and the register blocks. The hypervisor drives the physical GIC and
//! emulates one per VM from these definitions; the guests drive their emulated one.
//!
//! Only the registers SIS touches or emulates by name are listed; the blocks cover the whole
//! architectural range of each array (1020 INTIDs), so an index that the hardware has is an
//! index the block has.

use core::mem::offset_of;

use tock_registers::register_structs;

use crate::mmio::{Mmio32, Mmio64, Mmio8};

/// INTIDs the architecture numbers below the special range (1020-1023).
pub const MAX_INTIDS: usize = 1020;

/// Distributor register offsets from `GICD_BASE`.
pub mod gicd {
    /// Control.
    pub const CTLR: u64 = 0x0000;
    /// Interrupt controller type.
    pub const TYPER: u64 = 0x0004;
    /// Implementer identification.
    pub const IIDR: u64 = 0x0008;
    /// Interrupt group, one bit per INTID.
    pub const IGROUPR: u64 = 0x0080;
    /// Interrupt set-enable.
    pub const ISENABLER: u64 = 0x0100;
    /// Interrupt clear-enable.
    pub const ICENABLER: u64 = 0x0180;
    /// Interrupt set-pending.
    pub const ISPENDR: u64 = 0x0200;
    /// Interrupt clear-pending.
    pub const ICPENDR: u64 = 0x0280;
    /// Interrupt set-active.
    pub const ISACTIVER: u64 = 0x0300;
    /// Interrupt clear-active.
    pub const ICACTIVER: u64 = 0x0380;
    /// End of the clear-active array.
    pub const ICACTIVER_END: u64 = 0x0400;
    /// Interrupt priority, one byte per INTID.
    pub const IPRIORITYR: u64 = 0x0400;
    /// End of `GICD_ITARGETSR<n>` (RAZ/WI with affinity routing), byte-accessible like
    /// IPRIORITYR, which it follows.
    pub const ITARGETSR_END: u64 = 0x0C00;
    /// Interrupt configuration, two bits per INTID.
    pub const ICFGR: u64 = 0x0C00;
    /// End of the configuration array.
    pub const ICFGR_END: u64 = 0x0D00;
    /// `GICD_CPENDSGIR<n>` and `GICD_SPENDSGIR<n>` (RAZ/WI with affinity routing): byte-accessible.
    pub const SGI_PEND: u64 = 0x0F10;
    /// End of the SGI pending registers.
    pub const SGI_PEND_END: u64 = 0x0F30;
    /// Interrupt routing, one 64-bit register per INTID (SPIs only).
    pub const IROUTER: u64 = 0x6000;
    /// End of `GICD_IROUTER<1019>`.
    pub const IROUTER_END: u64 = 0x7FE0;
    /// Peripheral ID2 (architecture revision).
    pub const PIDR2: u64 = 0xFFE8;
    /// Size of the distributor frame.
    pub const SIZE: u64 = 0x1_0000;
}

/// Redistributor register offsets from one core's `RD_base` (its `SGI_base` frame follows at
/// +64 KiB).
pub mod gicr {
    /// Control.
    pub const CTLR: u64 = 0x0000;
    /// Implementer identification.
    pub const IIDR: u64 = 0x0004;
    /// Redistributor type (64 bits: affinity in the upper half).
    pub const TYPER: u64 = 0x0008;
    /// Upper half of `GICR_TYPER` (the affinity value).
    pub const TYPER_HI: u64 = 0x000C;
    /// Power management.
    pub const WAKER: u64 = 0x0014;
    /// 64-bit LPI registers (SETLPIR, CLRLPIR, PROPBASER, PENDBASER, INVLPIR, INVALLR).
    pub const LPI_REGS: [u64; 6] = [0x0040, 0x0048, 0x0070, 0x0078, 0x00A0, 0x00B0];
    /// Peripheral ID2 (architecture revision).
    pub const PIDR2: u64 = 0xFFE8;
    /// The SGI_base frame.
    pub const SGI: u64 = 0x1_0000;
    /// SGI/PPI group.
    pub const IGROUPR0: u64 = SGI + 0x0080;
    /// SGI/PPI set-enable.
    pub const ISENABLER0: u64 = SGI + 0x0100;
    /// SGI/PPI clear-enable.
    pub const ICENABLER0: u64 = SGI + 0x0180;
    /// SGI/PPI set-pending.
    pub const ISPENDR0: u64 = SGI + 0x0200;
    /// SGI/PPI clear-pending.
    pub const ICPENDR0: u64 = SGI + 0x0280;
    /// SGI/PPI set-active.
    pub const ISACTIVER0: u64 = SGI + 0x0300;
    /// SGI/PPI clear-active.
    pub const ICACTIVER0: u64 = SGI + 0x0380;
    /// SGI/PPI priorities, one byte each.
    pub const IPRIORITYR: u64 = SGI + 0x0400;
    /// End of the SGI/PPI priorities.
    pub const IPRIORITYR_END: u64 = IPRIORITYR + 32;
    /// SGI configuration.
    pub const ICFGR0: u64 = SGI + 0x0C00;
    /// PPI configuration.
    pub const ICFGR1: u64 = SGI + 0x0C04;
    /// Size of one core's frame pair (RD_base + SGI_base).
    pub const STRIDE: u64 = 0x2_0000;
}

pub use self::fields::*;

// tock-registers gives each register an undocumented `Register` type (and value enums).
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;

    register_bitfields! {u32,
        /// Distributor control (affinity routing enabled, single security state as QEMU runs it).
        pub GICD_CTLR [
            /// Enable Group 0 interrupts.
            ENABLE_GRP0 OFFSET(0) NUMBITS(1) [],
            /// Enable Group 1 interrupts.
            ENABLE_GRP1 OFFSET(1) NUMBITS(1) [],
            /// Affinity routing enable.
            ARE OFFSET(4) NUMBITS(1) [],
            /// Disable security (one security state).
            DS OFFSET(6) NUMBITS(1) [],
            /// Register write pending.
            RWP OFFSET(31) NUMBITS(1) [],
        ],
        /// Lower half of the redistributor type register.
        pub GICR_TYPER_LO [
            /// This is the last redistributor of the region.
            LAST OFFSET(4) NUMBITS(1) [],
        ],
        /// Redistributor power management.
        pub GICR_WAKER [
            /// The core is asleep as far as the redistributor is concerned.
            PROCESSOR_SLEEP OFFSET(1) NUMBITS(1) [],
            /// The redistributor's interface to the core is quiescent.
            CHILDREN_ASLEEP OFFSET(2) NUMBITS(1) [],
        ],
    }

    register_bitfields! {u64,
        /// Routing of one SPI.
        pub GICD_IROUTER [
            /// Affinity level 0 of the target.
            AFF0 OFFSET(0) NUMBITS(8) [],
            /// Affinity level 1.
            AFF1 OFFSET(8) NUMBITS(8) [],
            /// Affinity level 2.
            AFF2 OFFSET(16) NUMBITS(8) [],
            /// 1 = any participating core; SIS always names one core.
            ROUTING_MODE OFFSET(31) NUMBITS(1) [Targeted = 0],
            /// Affinity level 3.
            AFF3 OFFSET(32) NUMBITS(8) [],
        ],
    }
}

register_structs! {
    /// The distributor.
    pub GicdRegs {
        /// Control.
        (0x0000 => pub ctlr: Mmio32<GICD_CTLR::Register>),
        /// Interrupt controller type.
        (0x0004 => pub typer: Mmio32),
        (0x0008 => _r0),
        /// Interrupt group.
        (0x0080 => pub igroupr: [Mmio32; 32]),
        /// Set-enable.
        (0x0100 => pub isenabler: [Mmio32; 32]),
        /// Clear-enable.
        (0x0180 => pub icenabler: [Mmio32; 32]),
        (0x0200 => _r1),
        /// Clear-pending.
        (0x0280 => pub icpendr: [Mmio32; 32]),
        (0x0300 => _r2),
        /// Clear-active.
        (0x0380 => pub icactiver: [Mmio32; 32]),
        /// Priority, one byte per INTID.
        (0x0400 => pub ipriorityr: [Mmio8; MAX_INTIDS]),
        (0x07FC => _r3),
        /// Configuration, two bits per INTID (bit 1 of each pair: edge-triggered).
        (0x0C00 => pub icfgr: [Mmio32; 64]),
        (0x0D00 => _r4),
        /// Routing, one register per INTID (SPIs only: entries 0-31 are reserved).
        (0x6000 => pub irouter: [Mmio64<GICD_IROUTER::Register>; MAX_INTIDS]),
        (0x7FE0 => _r5),
        (0x1_0000 => @END),
    }
}

register_structs! {
    /// One core's redistributor: the RD_base frame, then the SGI_base frame.
    pub GicrRegs {
        (0x00000 => _r0),
        /// Type, lower half.
        (0x00008 => pub typer_lo: Mmio32<GICR_TYPER_LO::Register>),
        /// Type, upper half: the core's affinity (Aff3.Aff2.Aff1.Aff0).
        (0x0000C => pub typer_hi: Mmio32),
        (0x00010 => _r1),
        /// Power management.
        (0x00014 => pub waker: Mmio32<GICR_WAKER::Register>),
        (0x00018 => _r2),
        /// SGI/PPI group.
        (0x10080 => pub igroupr0: Mmio32),
        (0x10084 => _r3),
        /// SGI/PPI set-enable.
        (0x10100 => pub isenabler0: Mmio32),
        (0x10104 => _r4),
        /// SGI/PPI clear-enable.
        (0x10180 => pub icenabler0: Mmio32),
        (0x10184 => _r5),
        /// SGI/PPI priorities.
        (0x10400 => pub ipriorityr: [Mmio8; 32]),
        (0x10420 => _r6),
        (0x20000 => @END),
    }
}

// The offsets the emulation decodes are the register blocks'.
const _: () = {
    assert!(offset_of!(GicdRegs, ctlr) == gicd::CTLR as usize);
    assert!(offset_of!(GicdRegs, typer) == gicd::TYPER as usize);
    assert!(offset_of!(GicdRegs, igroupr) == gicd::IGROUPR as usize);
    assert!(offset_of!(GicdRegs, isenabler) == gicd::ISENABLER as usize);
    assert!(offset_of!(GicdRegs, icenabler) == gicd::ICENABLER as usize);
    assert!(offset_of!(GicdRegs, icpendr) == gicd::ICPENDR as usize);
    assert!(offset_of!(GicdRegs, icactiver) == gicd::ICACTIVER as usize);
    assert!(offset_of!(GicdRegs, ipriorityr) == gicd::IPRIORITYR as usize);
    assert!(offset_of!(GicdRegs, icfgr) == gicd::ICFGR as usize);
    assert!(gicd::ICFGR + 64 * 4 == gicd::ICFGR_END);
    assert!(offset_of!(GicdRegs, irouter) == gicd::IROUTER as usize);
    assert!(gicd::IROUTER + 8 * MAX_INTIDS as u64 == gicd::IROUTER_END);
    assert!(core::mem::size_of::<GicdRegs>() == gicd::SIZE as usize);
    assert!(offset_of!(GicrRegs, typer_lo) == gicr::TYPER as usize);
    assert!(offset_of!(GicrRegs, typer_hi) == gicr::TYPER_HI as usize);
    assert!(offset_of!(GicrRegs, waker) == gicr::WAKER as usize);
    assert!(offset_of!(GicrRegs, igroupr0) == gicr::IGROUPR0 as usize);
    assert!(offset_of!(GicrRegs, isenabler0) == gicr::ISENABLER0 as usize);
    assert!(offset_of!(GicrRegs, icenabler0) == gicr::ICENABLER0 as usize);
    assert!(offset_of!(GicrRegs, ipriorityr) == gicr::IPRIORITYR as usize);
    assert!(core::mem::size_of::<GicrRegs>() == gicr::STRIDE as usize);
};
