//! GICv3 driver for a guest: distributor (SPIs), this core's redistributor (SGIs/PPIs) and the
//! system-register CPU interface.
//!
//! The register maps are `sis_regs::gic`'s, the ones the hypervisor emulates. Only single
//! loads/stores of the architectural width are used (32-bit; 64-bit for IROUTER; 8-bit for the
//! IPRIORITYR bytes): what the hypervisor's vGIC accepts.

use core::fmt;

use aarch64_cpu::registers::MPIDR_EL1;
use sis_platform::layout::{ipa, irq};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use sis_regs::gic::{gicr, GicdRegs, GicrRegs, GICD_CTLR, GICD_IROUTER, GICR_TYPER_LO, GICR_WAKER};
use sis_regs::icc::{
    ICC_EOIR1_EL1, ICC_IAR1_EL1, ICC_IGRPEN1_EL1, ICC_PMR_EL1, ICC_SGI1R_EL1, ICC_SRE_EL1,
};

/// Redistributors scanned at most before giving up (the Last bit normally stops the scan).
const GICR_MAX_FRAMES: usize = 64;
/// Priority given to every interrupt we enable (middle of the range; all equal, no nesting).
const DEFAULT_PRIORITY: u8 = 0x80;
/// Priority mask: let everything with a priority above 0xf0 through.
const PMR_ALLOW_ALL: u64 = 0xf0;
/// INTIDs from here up are spurious or special (1020-1023).
pub(crate) const SPECIAL_INTID: u32 = 1020;
/// Bounded wait for RWP / ChildrenAsleep.
const POLL_LIMIT: u32 = 10_000_000;

/// Why the GIC could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// No redistributor has this core's affinity.
    NoRedistributor {
        /// This core's MPIDR affinity.
        mpidr: u32,
    },
    /// The redistributor never woke up.
    WakeTimeout,
    /// The distributor never finished a register write.
    RwpTimeout,
    /// An INTID this platform does not have.
    BadIntid(u32),
}

impl fmt::Display for GicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GicError::NoRedistributor { mpidr } => {
                write!(f, "no GIC redistributor for affinity {mpidr:#x}")
            }
            GicError::WakeTimeout => f.write_str("GIC redistributor did not wake up"),
            GicError::RwpTimeout => f.write_str("GIC distributor write never completed"),
            GicError::BadIntid(i) => write!(f, "INTID {i} is beyond the platform's interrupts"),
        }
    }
}

fn gicd() -> &'static GicdRegs {
    // SAFETY: GICD_BASE is the distributor frame, identity-mapped as device memory for the life
    // of the guest; the struct only holds interior-mutable MMIO cells.
    unsafe { &*(ipa::GICD_BASE as *const GicdRegs) }
}

fn gicr_frame(index: usize) -> &'static GicrRegs {
    // SAFETY: the caller only asks for frames up to the one flagged Last, all inside the
    // redistributor region, which is identity-mapped as device memory.
    unsafe { &*((ipa::GICR_BASE as usize + index * gicr::STRIDE as usize) as *const GicrRegs) }
}

/// This core's affinity in GICR_TYPER[63:32] layout (Aff3.Aff2.Aff1.Aff0).
fn my_affinity() -> u32 {
    let m = MPIDR_EL1.get();
    let aff3 = (m >> 32) & 0xff;
    ((aff3 << 24) | (m & 0x00ff_ffff)) as u32
}

fn find_redistributor() -> Result<&'static GicrRegs, GicError> {
    let me = my_affinity();
    for i in 0..GICR_MAX_FRAMES {
        let f = gicr_frame(i);
        if f.typer_hi.get() == me {
            return Ok(f);
        }
        if f.typer_lo.is_set(GICR_TYPER_LO::LAST) {
            break;
        }
    }
    Err(GicError::NoRedistributor { mpidr: me })
}

fn wait_rwp() -> Result<(), GicError> {
    for _ in 0..POLL_LIMIT {
        if !gicd().ctlr.is_set(GICD_CTLR::RWP) {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(GicError::RwpTimeout)
}

/// Enables the distributor (affinity routing, non-secure group 1). Boot core only.
pub(crate) fn init_distributor() -> Result<(), GicError> {
    let d = gicd();
    d.ctlr.write(GICD_CTLR::ARE::SET);
    wait_rwp()?;
    d.ctlr
        .write(GICD_CTLR::ARE::SET + GICD_CTLR::ENABLE_GRP1::SET);
    wait_rwp()
}

/// Wakes this core's redistributor, makes its SGIs/PPIs group 1, and enables the CPU interface.
pub(crate) fn init_this_core() -> Result<(), GicError> {
    let r = find_redistributor()?;
    r.waker.modify(GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
    let mut woke = false;
    for _ in 0..POLL_LIMIT {
        if !r.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {
            woke = true;
            break;
        }
        core::hint::spin_loop();
    }
    if !woke {
        return Err(GicError::WakeTimeout);
    }
    // All 32 private interrupts in group 1; each is enabled individually by enable_ppi.
    r.igroupr0.set(u32::MAX);

    ICC_SRE_EL1.modify(ICC_SRE_EL1::SRE::SET);
    ICC_PMR_EL1.write(ICC_PMR_EL1::PRIORITY.val(PMR_ALLOW_ALL));
    ICC_IGRPEN1_EL1.write(ICC_IGRPEN1_EL1::ENABLE::SET);
    Ok(())
}

/// Enables private interrupt `intid` (< 32) on this core.
pub(crate) fn enable_ppi(intid: u32) -> Result<(), GicError> {
    debug_assert!(intid < 32);
    let r = find_redistributor()?;
    r.ipriorityr[intid as usize].set(DEFAULT_PRIORITY);
    r.isenabler0.set(1 << intid);
    Ok(())
}

/// Sends SGI `intid` (0-15) to core `core` (MPIDR Aff0 < 16).
pub(crate) fn send_sgi(intid: u32, core: usize) {
    debug_assert!(intid < 16 && core < 16);
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
    ICC_SGI1R_EL1.write(
        ICC_SGI1R_EL1::INTID.val(u64::from(intid)) + ICC_SGI1R_EL1::TARGETLIST.val(1 << core),
    );
}

/// Enables shared interrupt `intid` (32..=MAX_SPI) routed to core `core` (MPIDR Aff0).
pub(crate) fn enable_spi(intid: u32, core: usize) {
    assert!(
        (32..=irq::MAX_SPI).contains(&intid),
        "SPI {intid} out of range"
    );
    let d = gicd();
    let word = (intid / 32) as usize;
    let bit = 1u32 << (intid % 32);
    d.igroupr[word].set(d.igroupr[word].get() | bit);
    d.ipriorityr[intid as usize].set(DEFAULT_PRIORITY);
    let aff = MPIDR_EL1.get();
    d.irouter[intid as usize].write(
        GICD_IROUTER::ROUTING_MODE::Targeted
            + GICD_IROUTER::AFF0.val(core as u64)
            + GICD_IROUTER::AFF1.val((aff >> 8) & 0xff)
            + GICD_IROUTER::AFF2.val((aff >> 16) & 0xff)
            + GICD_IROUTER::AFF3.val((aff >> 32) & 0xff),
    );
    d.isenabler[word].set(bit);
}

/// Acknowledges the highest-priority pending interrupt; returns its INTID.
#[inline]
pub(crate) fn acknowledge() -> u32 {
    ICC_IAR1_EL1.read(ICC_IAR1_EL1::INTID) as u32
}

/// Signals end of interrupt (also deactivates it: EOImode is 0).
#[inline]
pub(crate) fn end_of_interrupt(intid: u32) {
    ICC_EOIR1_EL1.write(ICC_EOIR1_EL1::INTID.val(intid as u64));
}
