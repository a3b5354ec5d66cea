//! The hypervisor's own EL2 stage-1 translation: an identity map with 1 GiB blocks, device
//! memory below RAM and normal write-back memory for RAM.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use sis_platform::layout::phys;
use tock_registers::interfaces::{ReadWriteable, Writeable};

use crate::stage2::Table;

/// MAIR index of normal write-back memory.
const ATTR_NORMAL: u64 = 0;
/// MAIR index of Device-nGnRE memory.
const ATTR_DEVICE: u64 = 1;

const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const GIB: u64 = 1 << 30;

static TABLE: spin::Mutex<Table> = spin::Mutex::new(Table::EMPTY);

/// Builds the identity map (core 0, once).
pub fn build() {
    let mut t = TABLE.lock();
    // 0-1 GiB: MMIO.
    t.0[0] = BLOCK | AF | (ATTR_DEVICE << 2) | PXN | UXN;
    // RAM, 1 GiB blocks.
    let mut addr = phys::RAM_BASE;
    while addr < phys::RAM_BASE + phys::RAM_SIZE {
        t.0[(addr / GIB) as usize] = addr | BLOCK | AF | SH_INNER | (ATTR_NORMAL << 2);
        addr += GIB;
    }
}

/// Turns the MMU and caches on for this core.
pub fn enable() {
    let root = &*TABLE.lock() as *const Table as u64;
    MAIR_EL2.write(
        MAIR_EL2::Attr0_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL2::Attr0_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL2::Attr1_Device::nonGathering_nonReordering_EarlyWriteAck,
    );
    TCR_EL2.write(
        TCR_EL2::T0SZ.val(25)
            + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::SH0::Inner
            + TCR_EL2::TG0::KiB_4
            + TCR_EL2::PS::Bits_40,
    );
    TTBR0_EL2.set(root);
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    SCTLR_EL2.modify(SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable);
    barrier::isb(barrier::SY);
}
