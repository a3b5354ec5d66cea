//! DMA memory and device addresses for the virtio PCI devices.
//!
//! The devices sit behind the SMMU, which the hypervisor programs so that a device address is
//! this VM's guest-physical address and reaches its RAM and nothing else. Stage 1 is the
//! identity, so a buffer's address is what the device is given; every buffer must still lie
//! inside guest RAM (anything else would fault in the SMMU and stop the VM).
//!
//! DMA pages come from a static pool in `.bss` (inside the image, so inside RAM), handed out by a
//! bump allocator: the drivers allocate their queues and buffers once at boot and keep them.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Pages in the DMA pool.
pub const POOL_PAGES: usize = 96;

#[repr(C, align(4096))]
struct Pool([u8; POOL_PAGES * PAGE_SIZE]);

/// The pool. Only ever reached through raw pointers handed out once each.
static mut POOL: Pool = Pool([0; POOL_PAGES * PAGE_SIZE]);
/// Pages handed out so far.
static NEXT_PAGE: AtomicUsize = AtomicUsize::new(0);
/// Allocations refused because the pool was exhausted.
static EXHAUSTED: AtomicU64 = AtomicU64::new(0);

/// Guest-physical RAM window.
static RAM_BASE: AtomicU64 = AtomicU64::new(0);
static RAM_END: AtomicU64 = AtomicU64::new(0);

/// Device addresses the next buffer shared in each direction is given instead of its own
/// (0: none). Only the `dmaattack` debug command sets them: it plays a compromised driver that
/// points its devices at memory it does not own, which the platform must contain.
static REDIRECT_TO_DEVICE: AtomicU64 = AtomicU64::new(0);
static REDIRECT_FROM_DEVICE: AtomicU64 = AtomicU64::new(0);

fn redirect_slot(direction: BufferDirection) -> &'static AtomicU64 {
    match direction {
        BufferDirection::DriverToDevice => &REDIRECT_TO_DEVICE,
        BufferDirection::DeviceToDriver | BufferDirection::Both => &REDIRECT_FROM_DEVICE,
    }
}

/// Hands the next buffer shared in `direction` to the device at `addr` (once).
pub fn redirect_next(direction: BufferDirection, addr: u64) {
    redirect_slot(direction).store(addr, Ordering::Release);
}

/// Cancels redirections not used yet.
pub fn clear_redirects() {
    REDIRECT_TO_DEVICE.store(0, Ordering::Release);
    REDIRECT_FROM_DEVICE.store(0, Ordering::Release);
}

/// Records the RAM window from the boot info. Call before any driver starts.
pub fn init(info: &sis_platform::BootInfo) {
    RAM_BASE.store(info.ram_base, Ordering::Relaxed);
    RAM_END.store(info.ram_base + info.ram_size, Ordering::Release);
}

/// (pages used, pages in the pool, refused allocations).
pub fn stats() -> (usize, usize, u64) {
    (
        NEXT_PAGE.load(Ordering::Relaxed),
        POOL_PAGES,
        EXHAUSTED.load(Ordering::Relaxed),
    )
}

/// The device address of guest address `va`: its guest-physical address (stage 1 is the
/// identity), which the SMMU translates into this VM's RAM.
///
/// # Panics
/// If `[va, va + len)` is not inside guest RAM: handing a device such an address would let it
/// DMA into memory that is not ours, so it is a bug to stop on.
pub fn to_device(va: u64, len: usize) -> PhysAddr {
    let end = RAM_END.load(Ordering::Acquire);
    let base = RAM_BASE.load(Ordering::Relaxed);
    let last = va.checked_add(len as u64);
    assert!(
        va >= base && last.is_some_and(|l| l <= end),
        "DMA buffer {va:#x}+{len:#x} outside guest RAM {base:#x}..{end:#x}"
    );
    va
}

/// Takes `pages` zeroed, page-aligned pages from the pool for good; `None` when exhausted.
pub fn alloc_pages(pages: usize) -> Option<NonNull<u8>> {
    let mut cur = NEXT_PAGE.load(Ordering::Relaxed);
    loop {
        let next = cur.checked_add(pages).filter(|&n| n <= POOL_PAGES);
        let Some(next) = next else {
            EXHAUSTED.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        match NEXT_PAGE.compare_exchange(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break,
            Err(seen) => cur = seen,
        }
    }
    // SAFETY: only the address of the static is taken (no reference); the range
    // [cur, cur + pages) pages was reserved above by this call alone, so the pointer handed out
    // aliases nothing else. The pool is zero-initialised `.bss` and pages are never reused.
    let base = unsafe {
        core::ptr::addr_of_mut!(POOL)
            .cast::<u8>()
            .add(cur * PAGE_SIZE)
    };
    NonNull::new(base)
}

/// A byte buffer of `len` bytes carved from the pool, kept for the life of the system.
pub fn alloc_buffer(len: usize) -> Option<&'static mut [u8]> {
    let pages = len.div_ceil(PAGE_SIZE).max(1);
    let p = alloc_pages(pages)?;
    // SAFETY: `alloc_pages` returned `pages` whole, zeroed pages owned by nobody else, valid for
    // the rest of the program; `len` is within them.
    Some(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) })
}

/// The [`Hal`] of guest-ctl's virtio drivers.
pub struct CtlHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned pages that nothing else aliases (pool pages
// are handed out once); `share` gives the device the guest-physical address of live buffers
// inside guest RAM (checked by `to_device`), which the SMMU maps; nothing needs copying back.
unsafe impl Hal for CtlHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match alloc_pages(pages) {
            Some(p) => (to_device(p.as_ptr() as u64, pages * PAGE_SIZE), p),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Pool pages are never reused: the drivers keep their queues for the life of the system.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // BARs are mapped at their guest-physical address, which stage 1 maps one to one.
        NonNull::new(paddr as *mut u8).expect("MMIO address is not null")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        match redirect_slot(direction).swap(0, Ordering::AcqRel) {
            0 => {}
            addr => return addr,
        }
        to_device(buffer.as_ptr().cast::<u8>() as u64, buffer.len())
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
