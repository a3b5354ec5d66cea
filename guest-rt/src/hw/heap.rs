//! The global allocator: a first-fit free list over the RAM after the image, behind an
//! IRQ-masking lock (so no core can deadlock against its own interrupt handler).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use linked_list_allocator::Heap;

use super::sync::IrqMutex;

struct GuestHeap(IrqMutex<Heap>);

static FAILURES: AtomicU64 = AtomicU64::new(0);

// SAFETY: allocation and deallocation are delegated to `linked_list_allocator::Heap` under a
// lock; the heap region is RAM owned by this guest and used for nothing else.
unsafe impl GlobalAlloc for GuestHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.0.lock().allocate_first_fit(layout) {
            Ok(p) => p.as_ptr(),
            Err(()) => {
                FAILURES.fetch_add(1, Ordering::Relaxed);
                core::ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with this `layout` (GlobalAlloc contract).
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static HEAP: GuestHeap = GuestHeap(IrqMutex::new(Heap::empty()));

/// Gives the allocator `[start, end)`, rounded inwards to 4 KiB.
pub(crate) fn init(start: u64, end: u64) {
    let start = start.next_multiple_of(4096);
    let end = end & !4095;
    if end <= start {
        return;
    }
    // SAFETY: called once on the boot core; the range is this guest's RAM after the image and
    // stacks, which nothing else uses.
    unsafe { HEAP.0.lock().init(start as *mut u8, (end - start) as usize) };
}

/// Heap usage snapshot.
#[derive(Debug, Clone, Copy)]
pub struct HeapStats {
    /// Bytes managed.
    pub size: usize,
    /// Bytes allocated.
    pub used: usize,
    /// Allocations refused for lack of memory.
    pub failures: u64,
}

/// Current heap usage.
pub fn stats() -> HeapStats {
    let h = HEAP.0.lock();
    HeapStats {
        size: h.size(),
        used: h.used(),
        failures: FAILURES.load(Ordering::Relaxed),
    }
}
