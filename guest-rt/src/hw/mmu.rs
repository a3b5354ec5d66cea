//! Turns the EL1 MMU on with the identity map built by [`crate::pagetable`].

use core::cell::UnsafeCell;

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MAIR_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use crate::pagetable::{self, ENTRIES, L1_BLOCK, VA_BITS};

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; ENTRIES]>);

// SAFETY: the tables are written by the boot core only (before the MMU is on and before any
// other core starts, and later by `map_ram` which runs before secondaries start); everyone else
// only reads them through the table walker.
unsafe impl Sync for Table {}

static L1: Table = Table(UnsafeCell::new([0; ENTRIES]));
static L2_LOW: Table = Table(UnsafeCell::new([0; ENTRIES]));

/// Builds the tables with RAM `[ram_base, ram_base + ram_size)`. Boot core, MMU off; then
/// [`enable_this_core`].
pub(crate) fn build_tables(ram_base: u64, ram_size: u64) {
    // SAFETY: boot core, no other core running yet, nothing else references the tables.
    unsafe {
        pagetable::fill_low(&mut *L2_LOW.0.get());
        pagetable::fill_top(&mut *L1.0.get(), L2_LOW.0.get() as u64, ram_base, ram_size);
    }
}

/// Re-maps RAM once its real size is known (after the MMU is on, before other cores start).
/// Entries that change type go through break-before-make.
pub(crate) fn map_ram(ram_base: u64, ram_size: u64) {
    let l1 = L1.0.get();
    for i in 1..ENTRIES {
        let pa = i as u64 * L1_BLOCK;
        let want = pagetable::block(pa, pagetable::high_kind(pa, ram_base, ram_size));
        // SAFETY: single writer (boot core before secondaries start); the entry is invalidated
        // and its TLB entries flushed before the new one is written.
        unsafe {
            let e = &raw mut (*l1)[i];
            if e.read_volatile() == want {
                continue;
            }
            e.write_volatile(0);
            core::arch::asm!(
                "dsb ishst",
                "tlbi vaae1is, {page}",
                "dsb ish",
                "isb",
                page = in(reg) pa >> 12,
                options(nostack, preserves_flags)
            );
            e.write_volatile(want);
        }
    }
    barrier::dsb(barrier::ISHST);
    barrier::isb(barrier::SY);
}

/// Programs MAIR/TCR/TTBR0 and turns on the MMU and caches on this core (tables already built).
pub(crate) fn enable_this_core() {
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
    );
    // Output size: what the CPU implements (the TCR.IPS encoding equals ID_AA64MMFR0.PARange).
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(64 - VA_BITS)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD0::EnableTTBR0Walks
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::IPS.val(pa_range),
    );
    TTBR0_EL1.set_baddr(L1.0.get() as u64);
    barrier::dsb(barrier::ISH);
    // SAFETY: drops any stale TLB entries of this core before translation starts.
    unsafe { core::arch::asm!("tlbi vmalle1", "dsb nsh", options(nostack, preserves_flags)) };
    barrier::isb(barrier::SY);
    SCTLR_EL1.modify(
        SCTLR_EL1::M::Enable
            + SCTLR_EL1::C::Cacheable
            + SCTLR_EL1::I::Cacheable
            + SCTLR_EL1::A::Disable,
    );
    barrier::isb(barrier::SY);
}
