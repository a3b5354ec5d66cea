//! Guest RAM maintenance at VM start: zeroing the whole partition (nothing of a previous run
//! survives) and cleaning it to the point of coherency (a guest that starts with its MMU and
//! caches off sees what the hypervisor wrote, and no stale line of the previous run is left to
//! be written back over it later).

use aarch64_cpu::asm::barrier;
use tock_registers::interfaces::Readable;

use super::sysreg::{CTR, CTR_EL0, DCZID, DCZID_EL0};

/// Zeroes `[pa, pa + len)` with `dc zva` (whole blocks, the fastest zeroing the architecture
/// offers), or plain stores where `dc zva` is prohibited or the range is not block-aligned.
///
/// # Safety
/// The range must be RAM the hypervisor maps writable that nothing else uses meanwhile (a stopped
/// VM's partition).
pub unsafe fn zero(pa: u64, len: u64) {
    let block = 4u64 << DCZID_EL0.read(DCZID::BS);
    let zva = DCZID_EL0.read(DCZID::DZP) == 0;
    let start = if zva {
        pa.next_multiple_of(block)
    } else {
        pa + len
    };
    let end = if zva {
        (pa + len) & !(block - 1)
    } else {
        pa + len
    };
    let (head, tail) = if start < end {
        (start - pa, pa + len - end)
    } else {
        (len, 0)
    };
    // SAFETY: inside the caller's range.
    unsafe { core::ptr::write_bytes(pa as *mut u8, 0, head as usize) };
    let mut a = start;
    while a < end {
        // SAFETY: `a` is a block-aligned address inside the caller's range; `dc zva` writes
        // zeros to exactly that block.
        unsafe {
            core::arch::asm!("dc zva, {a}", a = in(reg) a, options(nostack, preserves_flags))
        };
        a += block;
    }
    if start < end {
        // SAFETY: inside the caller's range.
        unsafe { core::ptr::write_bytes(end as *mut u8, 0, tail as usize) };
    }
    barrier::dsb(barrier::ISH);
}

/// Cleans and invalidates the data-cache lines of `[start, start + len)` to the point of
/// coherency, then invalidates the instruction caches.
pub fn clean(start: u64, len: u64) {
    let line = 4u64 << CTR_EL0.read(CTR::DminLine);
    let mut a = start & !(line - 1);
    while a < start + len {
        // SAFETY: cache maintenance by VA on memory the hypervisor maps; no memory is changed.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) a, options(nostack)) };
        a += line;
    }
    barrier::dsb(barrier::ISH);
    // SAFETY: invalidating instruction caches has no effect on memory.
    unsafe { core::arch::asm!("ic ialluis", options(nostack)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
}
