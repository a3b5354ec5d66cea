//! Turns the EL1 MMU on with the identity map built by [`crate::pagetable`].

use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MAIR_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use sis_platform::layout::ipa;

use crate::pagetable::{self, Image, ENTRIES, L1_BLOCK, L2_BLOCK, RAM_L1_INDEX, VA_BITS};

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; ENTRIES]>);

// SAFETY: the tables are written by the boot core only (before the MMU is on and before any
// other core starts, and later by `map_ram` which runs before secondaries start); everyone else
// only reads them through the table walker.
unsafe impl Sync for Table {}

impl Table {
    const fn new() -> Self {
        Table(UnsafeCell::new([0; ENTRIES]))
    }

    fn pa(&self) -> u64 {
        self.0.get() as u64
    }
}

/// Most level-3 tables: the image (text to stacks) may span this many 2 MiB blocks from RAM base.
pub(crate) const MAX_L3: usize = 8;

static L1: Table = Table::new();
static L2_LOW: Table = Table::new();
static L2_RAM: Table = Table::new();
static L3: [Table; MAX_L3] = [const { Table::new() }; MAX_L3];

/// Number of level-3 tables in use (set by `build_tables`).
static L3_USED: AtomicUsize = AtomicUsize::new(0);

/// The image is larger than the level-3 tables can describe.
#[derive(Debug, Clone, Copy)]
pub struct ImageTooLarge {
    /// 2 MiB blocks the image needs.
    pub blocks: usize,
}

impl fmt::Display for ImageTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "image spans {} 2 MiB blocks, the page tables hold {MAX_L3}",
            self.blocks
        )
    }
}

/// Builds the tables for RAM of `ram_size` bytes at RAM base holding `image`. Boot core, MMU
/// off, no atomics (exclusive accesses need the MMU on); then [`enable_this_core`].
pub(crate) fn build_tables(ram_size: u64, image: &Image) -> Result<usize, ImageTooLarge> {
    let n = image.l3_tables();
    if n > MAX_L3 {
        return Err(ImageTooLarge { blocks: n });
    }
    let mut l3_pas = [0u64; MAX_L3];
    for (i, t) in L3.iter().enumerate().take(n) {
        l3_pas[i] = t.pa();
        // SAFETY: boot core, no other core running yet, nothing else references the tables.
        pagetable::fill_l3(unsafe { &mut *t.0.get() }, i, image);
    }
    // SAFETY: as above.
    unsafe {
        pagetable::fill_low(&mut *L2_LOW.0.get());
        let l2 = &mut *L2_RAM.0.get();
        for (i, e) in l2.iter_mut().enumerate() {
            *e = pagetable::ram_l2_entry(i, &l3_pas[..n], ram_size);
        }
        pagetable::fill_top(&mut *L1.0.get(), L2_LOW.pa(), L2_RAM.pa(), ram_size);
    }
    Ok(n)
}

/// Records how many level-3 tables `build_tables` used (call once the MMU is on).
pub(crate) fn set_l3_used(n: usize) {
    L3_USED.store(n, Ordering::Relaxed);
}

/// Replaces one live descriptor mapping `va` with break-before-make.
///
/// # Safety
/// Single writer (boot core, before secondaries start); `e` is an entry of the live tables.
unsafe fn replace(e: *mut u64, want: u64, va: u64) {
    // SAFETY: forwarded to the caller; the entry is invalidated and its TLB entries flushed
    // before the new one is written.
    unsafe {
        if e.read_volatile() == want {
            return;
        }
        e.write_volatile(0);
        core::arch::asm!(
            "dsb ishst",
            "tlbi vaae1is, {page}",
            "dsb ish",
            "isb",
            page = in(reg) va >> 12,
            options(nostack, preserves_flags)
        );
        e.write_volatile(want);
    }
}

/// Re-maps RAM once its real size is known (after the MMU is on, before other cores start).
pub(crate) fn map_ram(ram_size: u64) {
    let n = L3_USED.load(Ordering::Relaxed);
    let l2 = L2_RAM.0.get();
    for i in n..ENTRIES {
        let va = ipa::RAM_BASE + i as u64 * L2_BLOCK;
        // SAFETY: boot core before secondaries start; entry `i` of the live RAM level-2 table.
        unsafe {
            replace(
                &raw mut (*l2)[i],
                pagetable::ram_l2_entry(i, &[], ram_size),
                va,
            )
        };
    }
    let l1 = L1.0.get();
    for i in (RAM_L1_INDEX + 1)..ENTRIES {
        // SAFETY: as above, for the level-1 blocks above the RAM GiB.
        unsafe {
            replace(
                &raw mut (*l1)[i],
                pagetable::top_entry(i, ram_size),
                i as u64 * L1_BLOCK,
            )
        };
    }
    barrier::dsb(barrier::ISHST);
    barrier::isb(barrier::SY);
}

/// Level-1 index of the executable alias window [`exec_alias`] maps (the top GiB of the VA space,
/// which nothing else uses).
const ALIAS_L1_INDEX: usize = ENTRIES - 1;
static ALIAS: spin::Once<u64> = spin::Once::new();

/// Maps the first GiB of the guest-physical space (model, shared ring, audit log, devices) a
/// second time, at the top of the VA space, as read-only **executable** normal memory, and
/// returns the alias base: what an attacker at EL1 would do to run code from a shared region.
/// Only `execprobe` uses it; the hypervisor's stage-2 must refuse the instruction fetch.
pub(crate) fn exec_alias() -> u64 {
    *ALIAS.call_once(|| {
        let va = ALIAS_L1_INDEX as u64 * L1_BLOCK;
        let l1 = L1.0.get();
        // SAFETY: entry ALIAS_L1_INDEX of the live level-1 table; written once (under the Once)
        // and used by nothing else; the replacement is break-before-make with a TLB flush.
        unsafe {
            replace(
                &raw mut (*l1)[ALIAS_L1_INDEX],
                pagetable::block(0, pagetable::Kind::Code),
                va,
            )
        };
        barrier::dsb(barrier::ISH);
        barrier::isb(barrier::SY);
        va
    })
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
    TTBR0_EL1.set_baddr(L1.pa());
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
