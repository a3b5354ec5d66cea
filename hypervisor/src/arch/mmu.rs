//! The hypervisor's own EL2 stage-1 translation: the W^X identity map of `el2map.rs` (text RX,
//! rodata R, data/bss/stacks/tables RW+XN, guest RAM and MMIO XN), checked after it is built,
//! with SCTLR_EL2.WXN as a hardware backstop (a writable page is never executable).

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use sis_platform::layout::phys;
use tock_registers::interfaces::{ReadWriteable, Writeable};

use hypervisor::el2map::{self, Layout, Summary};
use hypervisor::stage2::{Stage2, Table};

/// Tables: the root, a level-2 table per GiB mapped, level-3 tables at section boundaries.
const TABLES: usize = 8;
static POOL: spin::Mutex<[Table; TABLES]> = spin::Mutex::new([Table::EMPTY; TABLES]);
static ROOT: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" {
    static __text_end: u8;
    static __rodata_end: u8;
}

fn layout() -> Layout {
    Layout {
        text: phys::HV_LOAD,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        ram_end: phys::RAM_BASE + phys::RAM_SIZE,
    }
}

/// Builds the identity map and checks it is W^X (core 0, once, MMU off). A map that is not is a
/// build error of the hypervisor: it panics.
pub fn build() -> Summary {
    let mut pool = POOL.lock();
    let mut s1 = Stage2::new(&mut pool[..]);
    let layout = layout();
    if let Err(e) = el2map::build(&mut s1, &layout) {
        panic!("EL2 map: {e:?}");
    }
    let summary = match el2map::check(&s1, &layout) {
        Ok(s) => s,
        Err(v) => panic!("EL2 map is not W^X: {v:?}"),
    };
    ROOT.store(s1.root_addr(), Ordering::Release);
    summary
}

/// Turns the MMU and caches on for this core, with WXN.
pub fn enable() {
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
    TTBR0_EL2.set(ROOT.load(Ordering::Acquire));
    barrier::dsb(barrier::ISH);
    // SAFETY: drops any stale EL2 TLB entries of this core before translation starts.
    unsafe { core::arch::asm!("tlbi alle2", "dsb nsh", options(nostack)) };
    barrier::isb(barrier::SY);
    SCTLR_EL2.modify(
        SCTLR_EL2::M::Enable
            + SCTLR_EL2::C::Cacheable
            + SCTLR_EL2::I::Cacheable
            + SCTLR_EL2::WXN::Enable,
    );
    barrier::isb(barrier::SY);
}
