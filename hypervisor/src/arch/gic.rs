//! The physical GICv3: distributor, redistributors and the EL2 CPU interface.
//!
//! No firmware sets the GIC up, so the hypervisor enables affinity routing, wakes each core's
//! redistributor and uses Group 1 throughout. `EOImode = 1`: the hypervisor drops priority with
//! EOIR and deactivates with DIR, except for interrupts forwarded to a guest with the list
//! register HW bit, which the guest's EOI deactivates.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ICC_SRE_EL2, ICH_HCR_EL2};
use sis_platform::layout::{irq, phys};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

use hypervisor::routing::spi_core;
use sis_platform::partition::SYSTEM;
use sis_regs::icc::{
    ICC_CTLR_EL1, ICC_DIR_EL1, ICC_EOIR1_EL1, ICC_IAR1_EL1, ICC_IGRPEN1_EL1, ICC_PMR_EL1,
    ICC_SGI1R_EL1,
};

register_bitfields! {u32,
    GICD_CTLR [
        EnableGrp0 OFFSET(0) NUMBITS(1) [],
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        ARE OFFSET(4) NUMBITS(1) [],
        RWP OFFSET(31) NUMBITS(1) []
    ],
    GICR_WAKER [
        ProcessorSleep OFFSET(1) NUMBITS(1) [],
        ChildrenAsleep OFFSET(2) NUMBITS(1) []
    ]
}

register_structs! {
    GicdRegs {
        (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _r0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _r1),
        (0x0280 => icpendr: [ReadWrite<u32>; 32]),
        (0x0300 => _r3),
        (0x0380 => icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x0800 => _r2),
        (0x0C00 => icfgr: [ReadWrite<u32>; 64]),
        (0x0D00 => _r4),
        (0x6000 => irouter: [ReadWrite<u64>; 1024]),
        (0x8000 => @END),
    },
    GicrRdRegs {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => iidr: ReadOnly<u32>),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => _r0),
        (0x0014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0018 => @END),
    },
    GicrSgiRegs {
        (0x0000 => _r0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _r1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _r2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _r3),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 32]),
        (0x0420 => @END),
    }
}

/// Priority of every interrupt the hypervisor takes.
const PRIORITY: u8 = 0x80;
/// INTIDs at or above this are special (spurious).
pub const SPURIOUS: u32 = 1020;

fn gicd() -> &'static GicdRegs {
    // SAFETY: GICD_BASE is the distributor's MMIO frame, identity-mapped as device memory for
    // the hypervisor's whole life; the register struct matches its layout.
    unsafe { &*(phys::GICD_BASE as *const GicdRegs) }
}

fn gicr_rd(core: usize) -> &'static GicrRdRegs {
    // SAFETY: QEMU places one redistributor per core at GICR_BASE + core * stride; identity
    // mapped device memory; struct matches the RD_base layout.
    unsafe { &*((phys::GICR_BASE + core as u64 * phys::GICR_STRIDE) as *const GicrRdRegs) }
}

fn gicr_sgi(core: usize) -> &'static GicrSgiRegs {
    // SAFETY: as for `gicr_rd`; the SGI_base frame follows RD_base by 64 KiB.
    unsafe {
        &*((phys::GICR_BASE + core as u64 * phys::GICR_STRIDE + 0x1_0000) as *const GicrSgiRegs)
    }
}

/// Distributor setup (core 0, once): affinity routing, everything Group 1, SPIs disabled.
pub fn init_distributor() {
    let d = gicd();
    d.ctlr.set(0);
    while d.ctlr.is_set(GICD_CTLR::RWP) {}
    let lines = ((d.typer.get() & 0x1F) as usize + 1) * 32;
    for w in 1..(lines / 32).min(32) {
        d.icenabler[w].set(u32::MAX);
        d.igroupr[w].set(u32::MAX);
    }
    d.ctlr
        .write(GICD_CTLR::ARE::SET + GICD_CTLR::EnableGrp1::SET + GICD_CTLR::EnableGrp0::SET);
    while d.ctlr.is_set(GICD_CTLR::RWP) {}
}

/// Routes SPI `intid` where the partition table says (`hypervisor::routing::spi_core`: the
/// work core, or the owning VM's boot core) and enables it.
pub fn enable_spi(intid: u32) {
    // Every caller passes an interrupt the table routes; anything else goes to the work core.
    let core = spi_core(&SYSTEM, intid).unwrap_or(SYSTEM.work_core);
    let d = gicd();
    let i = intid as usize;
    d.ipriorityr[i].set(PRIORITY);
    d.irouter[i].set(core as u64);
    d.isenabler[i / 32].set(1 << (i % 32));
}

/// Disables SPI `intid` and clears its pending and active state: a line that stays asserted
/// (a stopped VM's device) can no longer interrupt anyone.
pub fn quiet_spi(intid: u32) {
    let d = gicd();
    let (w, bit) = (intid as usize / 32, 1 << (intid % 32));
    d.icenabler[w].set(bit);
    while d.ctlr.is_set(GICD_CTLR::RWP) {}
    d.icpendr[w].set(bit);
    d.icactiver[w].set(bit);
}

/// Configures SPI `intid` as edge-triggered (call before enabling it).
pub fn set_edge(intid: u32) {
    let d = gicd();
    let (w, shift) = (intid as usize / 16, 2 * (intid % 16) + 1);
    d.icfgr[w].set(d.icfgr[w].get() | 1 << shift);
}

/// Per-core setup: wake the redistributor, enable the hypervisor's PPIs/SGIs, and the EL2 CPU
/// interface with split EOI, and the virtual CPU interface for the guest.
pub fn init_cpu(core: usize) {
    let rd = gicr_rd(core);
    rd.waker.modify(GICR_WAKER::ProcessorSleep::CLEAR);
    while rd.waker.is_set(GICR_WAKER::ChildrenAsleep) {}
    let sgi = gicr_sgi(core);
    sgi.igroupr0.set(u32::MAX);
    for intid in [irq::SGI_KICK, irq::MAINTENANCE, irq::VTIMER, irq::HYP_TIMER] {
        sgi.ipriorityr[intid as usize].set(PRIORITY);
    }
    sgi.isenabler0.set(
        (1 << irq::SGI_KICK) | (1 << irq::MAINTENANCE) | (1 << irq::VTIMER) | (1 << irq::HYP_TIMER),
    );

    ICC_SRE_EL2.write(
        ICC_SRE_EL2::SRE::SET
            + ICC_SRE_EL2::ENABLE::SET
            + ICC_SRE_EL2::DIB::SET
            + ICC_SRE_EL2::DFB::SET,
    );
    barrier::isb(barrier::SY);
    ICC_PMR_EL1.write(ICC_PMR_EL1::PRIORITY.val(0xFF));
    ICC_CTLR_EL1.modify(ICC_CTLR_EL1::EOIMODE::SET);
    ICC_IGRPEN1_EL1.write(ICC_IGRPEN1_EL1::ENABLE::SET);
    ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
    barrier::isb(barrier::SY);
}

/// Acknowledges the highest-priority pending interrupt (`>= SPURIOUS` if none).
pub fn ack() -> u32 {
    ICC_IAR1_EL1.read(ICC_IAR1_EL1::INTID) as u32
}

/// Priority drop.
pub fn eoi(intid: u32) {
    ICC_EOIR1_EL1.write(ICC_EOIR1_EL1::INTID.val(u64::from(intid)));
}

/// Deactivation (for interrupts not forwarded with the HW bit).
pub fn deactivate(intid: u32) {
    ICC_DIR_EL1.write(ICC_DIR_EL1::INTID.val(u64::from(intid)));
}

/// Sends SGI `intid` to physical core `core` (Aff0).
pub fn send_sgi(core: usize, intid: u32) {
    barrier::dsb(barrier::ISHST);
    ICC_SGI1R_EL1.write(
        ICC_SGI1R_EL1::INTID.val(u64::from(intid)) + ICC_SGI1R_EL1::TARGETLIST.val(1 << core),
    );
}
