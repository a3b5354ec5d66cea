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

use hypervisor::routing::spi_core;
use sis_platform::partition::SYSTEM;
use sis_regs::gic::{GicdRegs, GicrRegs, GICD_CTLR, GICR_WAKER};
use sis_regs::icc::{
    ICC_CTLR_EL1, ICC_DIR_EL1, ICC_EOIR1_EL1, ICC_IAR1_EL1, ICC_IGRPEN1_EL1, ICC_PMR_EL1,
    ICC_SGI1R_EL1,
};

/// Priority of every interrupt the hypervisor takes.
const PRIORITY: u8 = 0x80;
/// INTIDs at or above this are special (spurious).
pub const SPURIOUS: u32 = 1020;

fn gicd() -> &'static GicdRegs {
    // SAFETY: GICD_BASE is the distributor's MMIO frame, identity-mapped as device memory for
    // the hypervisor's whole life; the register struct matches its layout.
    unsafe { &*(phys::GICD_BASE as *const GicdRegs) }
}

const _: () = assert!(phys::GICR_STRIDE == sis_regs::gic::gicr::STRIDE);

fn gicr(core: usize) -> &'static GicrRegs {
    // SAFETY: QEMU places one redistributor frame pair per core at GICR_BASE + core * stride,
    // identity-mapped as device memory; the struct matches the RD_base + SGI_base layout.
    unsafe { &*((phys::GICR_BASE + core as u64 * phys::GICR_STRIDE) as *const GicrRegs) }
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
        .write(GICD_CTLR::ARE::SET + GICD_CTLR::ENABLE_GRP1::SET + GICD_CTLR::ENABLE_GRP0::SET);
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
    let rd = gicr(core);
    rd.waker.modify(GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
    while rd.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {}
    rd.igroupr0.set(u32::MAX);
    for intid in [irq::SGI_KICK, irq::MAINTENANCE, irq::VTIMER, irq::HYP_TIMER] {
        rd.ipriorityr[intid as usize].set(PRIORITY);
    }
    rd.isenabler0.set(
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
